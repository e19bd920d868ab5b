-- Table macro: the snapshots of a store window that an analysis reads, at most max_points per
-- epoch (NULL: all), evenly spaced in time: the first snapshot of each of max_points - 1 equal
-- time buckets, and the last alone in the last, so each epoch's first and last snapshots are
-- always among them and the cost of an analysis does not grow with the number of snapshots.
-- The buckets are counted in whole numbers: in doubles, n evenly spaced snapshots (n no more
-- than max_points) could put two in one bucket and read n - 1. idx numbers them within their
-- epoch, from 1. Only counting snapshots (profiling on); reads window_snapshots.
create or replace macro window_snapshots_picked(
    host_pattern, since_at, until_at, since_back_s, until_back_s, max_points
) as table
with

counting_snapshots as (
    select
        snapshot_id,
        taken_at,
        host,
        boot,
        date,
        epoch
    from window_snapshots(host_pattern, since_at, until_at, since_back_s, until_back_s)
    where counting
),

epoch_spans as (
    select
        epoch,
        min(taken_at) as first_at,
        max(taken_at) as last_at
    from counting_snapshots
    group by epoch
),

picked as (
    select
        c.snapshot_id,
        c.taken_at,
        c.host,
        c.boot,
        c.date,
        c.epoch
    from counting_snapshots as c
    inner join epoch_spans as e on c.epoch = e.epoch
    qualify max_points is null or row_number() over (
        partition by
            c.epoch,
            epoch_us(c.taken_at - e.first_at)::hugeint
            * (max_points - 1)
            // greatest(epoch_us(e.last_at - e.first_at), 1)
        order by c.taken_at, c.snapshot_id
    ) = 1
)

select
    *,
    row_number() over (partition by epoch order by taken_at, snapshot_id) as idx
from picked
