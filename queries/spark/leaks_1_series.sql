-- Leaks, stage 1 of 6 (queries/leaks.sql for Spark, in stages that the runner materializes:
-- Spark inlines every common table expression where it is used, and the plan of the whole
-- query in one statement is too large to optimise). One pass over the samples of the window:
-- each epoch read at no more than :max_points snapshots, evenly spaced in time; per tag and
-- epoch, its range and its points. Reads window_snapshots (window_snapshots.sql).
-- :accurate         BOOLEAN        keep only accurate rows (true), inaccurate ones, or NULL
-- :by               STRING         tag | function | file | module | dir
-- :max_points       INT            snapshots read per epoch (at least 2)
-- :min_growth       BIGINT         floor: growth of the block medians, bytes
with

counting_snapshots as (
    select
        snapshot_id,
        taken_at,
        host,
        date,
        epoch
    from window_snapshots
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
        c.date,
        c.epoch,
        floor(
            (unix_micros(c.taken_at) - unix_micros(e.first_at))
            / greatest(unix_micros(e.last_at) - unix_micros(e.first_at), 1)
            * (:max_points - 1)
        ) as bucket
    from counting_snapshots as c
    inner join epoch_spans as e on c.epoch = e.epoch
),

first_in_bucket as (
    select
        snapshot_id,
        taken_at,
        host,
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
),

-- one pass over the samples: per tag and epoch, its range and its points
tag_series as (
    select
        s.tag_id,
        p.epoch,
        min(s.bytes) as min_bytes,
        max(s.bytes) as max_bytes,
        collect_list(named_struct('idx', p.idx, 'taken_at', p.taken_at, 'bytes', s.bytes))
            as points
    from samples as s
    inner join picked as p on s.snapshot_id = p.snapshot_id
    where :accurate is null or s.accurate = :accurate
    group by s.tag_id, p.epoch
    -- by tag, a tag is its own group: drop the flat ones now rather than carry their points
    having :by != 'tag' or max(s.bytes) - min(s.bytes) >= :min_growth
)

select *
from tag_series
