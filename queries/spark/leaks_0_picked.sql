-- Leaks, stage 0 (three times): the snapshots that leaks reads, at most :max_points per epoch,
-- evenly spaced in time (the first of each of :max_points equal time buckets; the epoch's first
-- and last snapshots included), numbered by idx within their epoch. Run over window_snapshots
-- for the window (leak_picked), over store_snapshots, the same hosts' whole store, for the
-- rest of each epoch's boot after it (leak_later_picked, stage 6), and over
-- earlier_snapshots, the look-back before a window that starts after its epochs
-- (leak_earlier_picked, stage 4).
-- :max_points       INT            snapshots read per epoch (at least 2)
-- :min_growth       BIGINT         floor: growth of the block medians, bytes, in a window of an
--                                  epoch that spans at least :min_growth / :min_rate hours
-- :min_rate         DOUBLE         floor, bytes per hour: a shorter span's growth floor is
--                                  :min_rate × its hours (growth_floor)
-- :source           STRING         window | store | earlier: the snapshots view read
with

chosen as (
    select *
    from window_snapshots
    where :source = 'window'
    union all
    select *
    from store_snapshots
    where :source = 'store'
    union all
    select *
    from earlier_snapshots
    where :source = 'earlier'
),

counting_snapshots as (
    select
        snapshot_id,
        taken_at,
        host,
        boot,
        date,
        epoch
    from chosen
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

-- the first snapshot of each of :max_points equal time buckets per epoch (the epoch's first
-- and last snapshots included)
bucketed as (
    select
        c.snapshot_id,
        c.taken_at,
        c.host,
        c.boot,
        c.date,
        c.epoch,
        -- in whole numbers: in doubles, n evenly spaced snapshots (n <= :max_points) can put
        -- two in one bucket
        cast(unix_micros(c.taken_at) - unix_micros(e.first_at) as decimal(38, 0))
        * (:max_points - 1)
        div greatest(unix_micros(e.last_at) - unix_micros(e.first_at), 1) as bucket
    from counting_snapshots as c
    inner join epoch_spans as e on c.epoch = e.epoch
),

first_in_bucket as (
    select
        snapshot_id,
        taken_at,
        host,
        boot,
        date,
        epoch
    from (
        select
            *,
            row_number() over (
                partition by epoch, bucket order by taken_at, snapshot_id
            ) as in_bucket
        from bucketed
    ) as numbered
    where in_bucket = 1
),

picked as (
    select
        *,
        row_number() over (partition by epoch order by taken_at, snapshot_id) as idx
    from first_in_bucket
)

-- per epoch, the growth floor: :min_growth, or what :min_rate adds up to over a shorter span of
-- the epoch (a fast leak seen for an hour is still a leak)
select
    p.*,
    least(
        :min_growth, :min_rate * (unix_micros(e.last_at) - unix_micros(e.first_at)) / 3.6e9
    ) as growth_floor
from picked as p
inner join epoch_spans as e on p.epoch = e.epoch
