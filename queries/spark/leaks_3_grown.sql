-- Leaks, stage 3 of 7: each unbroken stretch as a series, kept when its range reaches the
-- floors (most stop here, before any pairwise work). Reads leak_points (stage 2) and the
-- growth floor of each epoch from leak_picked (stage 0).
-- :min_size         BIGINT         keep a series whose largest value is at least this, or NULL
-- :max_size         BIGINT         keep a series whose smallest value is at most this, or NULL
-- :nonzero          BOOLEAN        keep only series that are not all zero
-- :min_rate         DOUBLE         floor: Theil–Sen slope and end-to-end rate, bytes per hour
with

-- the growth floor of each epoch, from stage 0
epoch_floors as (
    select
        epoch,
        max(growth_floor) as growth_floor
    from leak_picked
    group by epoch
),

stretches as (
    select
        key,
        epoch,
        stretch,
        dense_rank() over (partition by key, epoch order by stretch) as part,
        count(*) over (partition by key, epoch) as parts,
        count(*) as n,
        min_by(bytes, idx) as first_bytes,
        max_by(bytes, idx) as last_bytes,
        min(taken_at) as first_at,
        max(taken_at) as last_at,
        min(bytes) as min_bytes,
        max(bytes) as max_bytes,
        max(members) as members
    from leak_points
    group by key, epoch, stretch
),

-- floors on the range first (a series cannot grow by more than it spans): most series stop
-- here, before any pairwise work. The range, not last - first: under jitter of several MiB a
-- leak's end points can sit below the floor while its trend does not
grown as (
    select
        s.key,
        s.epoch,
        s.stretch,
        s.part,
        s.parts,
        s.n,
        s.first_bytes,
        s.last_bytes,
        s.first_at,
        s.last_at,
        (unix_micros(s.last_at) - unix_micros(s.first_at)) / 3.6e9 as hours,
        f.growth_floor,
        s.members,
        dense_rank() over (order by s.key, s.epoch, s.stretch) as sid
    from stretches as s
    inner join epoch_floors as f on s.epoch = f.epoch
    where
        s.max_bytes - s.min_bytes >= f.growth_floor
        and (s.max_bytes - s.min_bytes)
        / greatest((unix_micros(s.last_at) - unix_micros(s.first_at)) / 3.6e9, 1e-9)
        >= :min_rate
        and (:min_size is null or s.max_bytes >= :min_size)
        and (:max_size is null or s.min_bytes <= :max_size)
        and (not :nonzero or s.max_bytes != 0 or s.min_bytes != 0)
)

select *
from grown
