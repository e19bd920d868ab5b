-- Table macro: the snapshots of a store window that an analysis reads, at most max_points per
-- epoch (NULL: all), evenly spaced in time: one snapshot of each of max_points - 1 equal time
-- buckets, and the last alone in the last, so each epoch's first and last snapshots are
-- always among them and the cost of an analysis does not grow with the number of snapshots.
-- In an epoch whose buckets are at least two minutes wide, a bucket's snapshot is its first
-- that is the first of its two-minute slot in the epoch (slot_first), or its first when it
-- has none: compaction keeps those snapshots' samples in row groups of their own, which a
-- read of a few snapshots can keep alone (the thin snapshots, allocsnap/store/thin.py,
-- marked per host and compacted file, which agree with slot_first but where a slot holds the
-- end of one epoch and the start of the next). Narrower buckets mostly hold none, and their
-- first snapshot is read.
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
        date,
        epoch,
        row_number() over (
            partition by epoch, epoch_us(taken_at) // 120000000
            order by taken_at, snapshot_id
        ) = 1 as slot_first
    from window_snapshots(host_pattern, since_at, until_at, since_back_s, until_back_s)
    where counting
),

epoch_spans as (
    select
        epoch,
        min(taken_at) as first_at,
        max(taken_at) as last_at,
        -- buckets at least a slot wide: pick slot_first snapshots
        epoch_us(max(taken_at) - min(taken_at)) >= 120000000::bigint * (max_points - 1)
            as by_slot
    from counting_snapshots
    group by epoch
),

picked as (
    select
        c.snapshot_id,
        c.taken_at,
        c.host,
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
        order by not (e.by_slot and c.slot_first), c.taken_at, c.snapshot_id
    ) = 1
)

select
    *,
    row_number() over (partition by epoch order by taken_at, snapshot_id) as idx
from picked
