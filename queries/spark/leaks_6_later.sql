-- Leaks, stage 6 of 7: the rest of each epoch's boot after it (after a window that ends
-- before the epoch does, --until, and after a stretch of profiling off that ends it), where
-- growth given back later in the same boot is not a leak: per group judged by the shape tests,
-- its lowest level there, the least of :blocks block medians over the snapshots of the same
-- host and boot after the epoch's last one in the window, among those picked per epoch over the
-- whole store (leak_later_picked). Reads leak_later_picked and leak_keys (stage 0),
-- window_snapshots, samples and leak_shaped (stage 5).
-- :accurate         BOOLEAN        keep only accurate rows (true), inaccurate ones, or NULL
-- :blocks           INT            blocks whose medians smooth a series
with

window_ends as (
    select
        epoch,
        any_value(host) as host,
        any_value(boot) as boot,
        max(case when counting then taken_at end) as last_at
    from window_snapshots
    group by epoch
),

later_picked as (
    select
        l.snapshot_id,
        e.epoch,
        row_number() over (partition by e.epoch order by l.taken_at, l.snapshot_id) as idx
    from leak_later_picked as l
    inner join window_ends as e
        on l.host = e.host and l.boot = e.boot and l.taken_at > e.last_at
),

later_points as (
    select
        k.key,
        l.epoch,
        l.idx,
        sum(s.bytes) as bytes
    from samples as s
    inner join later_picked as l on s.snapshot_id = l.snapshot_id
    inner join leak_keys as k on s.tag_id = k.tag_id
    left semi join leak_shaped as t
        on k.key = t.key and l.epoch = t.epoch and t.shape_verdict is null
    where :accurate is null or s.accurate = :accurate
    group by k.key, l.epoch, l.idx
),

later_blocks as (
    select
        key,
        epoch,
        median(bytes) as bytes,
        any_value(n) / least(:blocks, any_value(n)) as per_block
    from (
        select
            *,
            count(*) over (partition by key, epoch) as n
        from later_points
    ) as counted
    group by key, epoch, floor((idx - 1) * least(:blocks, n) / n)
)

select
    key,
    epoch,
    min(bytes) as low_bytes,
    any_value(per_block) as per_block
from later_blocks
group by key, epoch
