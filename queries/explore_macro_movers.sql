-- Table macro: the call sites whose live bytes moved between two times, per host; each side is
-- the host's newest snapshot at or before that time. Duplicate keys are summed, as diff does.
-- status is 'new' or 'vanished' for a site present on one side only (a vanished row is not a
-- free: its module may have been unloaded); same_epoch is false when the two snapshots are in
-- different epochs (a reboot, profiling off in between). Largest |delta_bytes| first, ties
-- broken by host and tag_id. Reads the store's views, so it exists only with a store.
create or replace macro movers(from_time, to_time) as table
with

from_snapshots as (
    select
        snapshot_id,
        host,
        taken_at,
        epoch
    from window_snapshots(null, null, from_time, null, null)
    qualify row_number() over (
        partition by host order by taken_at desc, snapshot_id desc
    ) = 1
),

to_snapshots as (
    select
        snapshot_id,
        host,
        taken_at,
        epoch
    from window_snapshots(null, null, to_time, null, null)
    qualify row_number() over (
        partition by host order by taken_at desc, snapshot_id desc
    ) = 1
),

from_tags as (
    select
        s.host,
        s.tag_id,
        sum(s.bytes)::bigint as bytes,
        sum(signed_calls(s.calls))::bigint as calls
    from samples as s
    semi join from_snapshots as f on s.snapshot_id = f.snapshot_id and s.host = f.host
    group by s.host, s.tag_id
),

to_tags as (
    select
        s.host,
        s.tag_id,
        sum(s.bytes)::bigint as bytes,
        sum(signed_calls(s.calls))::bigint as calls
    from samples as s
    semi join to_snapshots as t on s.snapshot_id = t.snapshot_id and s.host = t.host
    group by s.host, s.tag_id
),

moved as (
    select
        coalesce(b.host, a.host) as host,
        coalesce(b.tag_id, a.tag_id) as tag_id,
        case
            when b.tag_id is null then 'new'
            when a.tag_id is null then 'vanished'
            else ''
        end as status,
        coalesce(b.bytes, 0) as bytes_before,
        coalesce(a.bytes, 0) as bytes_after,
        coalesce(a.calls, 0) - coalesce(b.calls, 0) as delta_calls
    from from_tags as b
    full outer join to_tags as a on b.host = a.host and b.tag_id = a.tag_id
)

select
    m.host,
    m.tag_id,
    call_site(t.file, t.line, t.module, t.function) as call_site,
    m.status,
    m.bytes_before,
    m.bytes_after,
    m.bytes_after - m.bytes_before as delta_bytes,
    m.delta_calls,
    case
        when ts.taken_at > fs.taken_at
            then (m.bytes_after - m.bytes_before) / (epoch_us(ts.taken_at - fs.taken_at) / 3.6e9)
    end as bytes_per_hour,
    fs.taken_at as from_at,
    ts.taken_at as to_at,
    fs.epoch = ts.epoch as same_epoch
from moved as m
inner join from_snapshots as fs on m.host = fs.host
inner join to_snapshots as ts on m.host = ts.host
left join tags as t on m.tag_id = t.tag_id
where m.bytes_after != m.bytes_before or m.delta_calls != 0
order by abs(delta_bytes) desc, m.host asc, m.tag_id asc
