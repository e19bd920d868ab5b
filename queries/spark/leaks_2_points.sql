-- Leaks, stage 2 of 7: the points of each candidate group and epoch, and the unbroken
-- stretches they fall in (a group's series breaks where its rows vanish: a module unloaded
-- is not a free). Reads leak_tag_series (stage 1) and leak_keys (stage 0).
with

-- a group grows by no more than the sum of its members' ranges: most groups stop here
candidate_keys as (
    select
        k.key,
        t.epoch
    from leak_tag_series as t
    inner join leak_keys as k on t.tag_id = k.tag_id
    group by k.key, t.epoch
    having sum(t.max_bytes - t.min_bytes) >= max(t.growth_floor)
),

candidate_series as (
    select
        k.key,
        t.epoch,
        t.points
    from leak_tag_series as t
    inner join leak_keys as k on t.tag_id = k.tag_id
    left semi join candidate_keys as c on k.key = c.key and t.epoch = c.epoch
),

member_points as (
    select
        c.key,
        c.epoch,
        point.idx,
        point.taken_at,
        point.bytes
    from candidate_series as c
        lateral view explode(c.points) exploded as point
),

points as (
    select
        key,
        epoch,
        idx,
        taken_at,
        cast(sum(bytes) as bigint) as bytes,
        count(*) as row_count
    from member_points
    group by key, epoch, idx, taken_at
),

-- a point is complete when all of the group's rows are there; runs of complete points are
-- the unbroken stretches (gaps and islands over the epoch's point numbers). As in DuckDB,
-- whose QUALIFY filters after the select's window functions, the numbering counts every point.
complete as (
    select
        key,
        epoch,
        idx,
        taken_at,
        bytes,
        stretch,
        row_count as members
    from (
        select
            key,
            epoch,
            idx,
            taken_at,
            bytes,
            row_count,
            idx - row_number() over (partition by key, epoch order by idx) as stretch,
            max(row_count) over (partition by key, epoch) as most_rows
        from points
    ) as numbered
    where row_count = most_rows
)

select *
from complete
