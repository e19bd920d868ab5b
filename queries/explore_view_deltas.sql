-- View: per-epoch deltas: each call site's row minus its previous row in the same epoch (tag
-- identity is tag_id and occurrence), over snapshots taken with profiling on. A site's first
-- row in an epoch has nothing to subtract and is left out; contiguous is false when the site
-- was absent from the epoch's snapshots in between (its module was unloaded, then loaded).
create or replace view deltas as
with

counting_snapshots as (
    select
        snapshot_id,
        row_number() over (partition by epoch order by taken_at, snapshot_id) as seq
    from window_snapshots(null, null, null, null, null)
    where counting
),

steps as (
    select
        s.*,
        c.seq,
        lag(s.snapshot_id) over site as previous_snapshot_id,
        lag(s.taken_at) over site as previous_at,
        lag(s.bytes) over site as previous_bytes,
        lag(s.calls) over site as previous_calls,
        lag(c.seq) over site as previous_seq
    from series as s
    inner join counting_snapshots as c on s.snapshot_id = c.snapshot_id
    window site as (
        partition by s.epoch, s.tag_id, s.occurrence
        order by s.taken_at, s.snapshot_id
    )
)

select
    snapshot_id,
    taken_at,
    previous_snapshot_id,
    previous_at,
    host,
    boot_id,
    kernel,
    epoch,
    tag_id,
    occurrence,
    file,
    line,
    module,
    function,
    call_site,
    bytes,
    bytes - previous_bytes as delta_bytes,
    (signed_calls(calls) - signed_calls(previous_calls))::bigint as delta_calls,
    epoch_us(taken_at - previous_at) / 1e6 as elapsed_s,
    case
        when taken_at > previous_at
            then (bytes - previous_bytes) / (epoch_us(taken_at - previous_at) / 3.6e9)
    end as bytes_per_hour,
    seq = previous_seq + 1 as contiguous
from steps
where previous_snapshot_id is not null
