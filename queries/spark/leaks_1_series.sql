-- Leaks, stage 1 of 7 (queries/leaks.sql for Spark, in stages that the runner materializes:
-- Spark inlines every common table expression where it is used, and the plan of the whole
-- query in one statement is too large to optimise). One pass over the samples of the window's
-- picked snapshots (at most :max_points per epoch, evenly spaced in time); per tag and
-- epoch, its range and its points. Reads leak_picked (stage 0).
-- :accurate         BOOLEAN        keep only accurate rows (true), inaccurate ones, or NULL
-- :by               STRING         tag | function | file | module | dir
with

-- one pass over the samples: per tag and epoch, its range and its points
tag_series as (
    select
        s.tag_id,
        p.epoch,
        min(s.bytes) as min_bytes,
        max(s.bytes) as max_bytes,
        collect_list(named_struct('idx', p.idx, 'taken_at', p.taken_at, 'bytes', s.bytes))
            as points,
        max(p.growth_floor) as growth_floor
    from samples as s
    inner join leak_picked as p on s.snapshot_id = p.snapshot_id
    where :accurate is null or s.accurate = :accurate
    group by s.tag_id, p.epoch
    -- by tag, a tag is its own group: drop the flat ones now rather than carry their points
    having :by != 'tag' or max(s.bytes) - min(s.bytes) >= max(p.growth_floor)
)

select *
from tag_series
