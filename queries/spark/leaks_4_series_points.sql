-- Leaks, stage 4 of 7: the points of the series that grew, numbered from 0, time in hours.
-- Reads leak_points (stage 2) and leak_grown (stage 3).
with

whole_points as (
    select
        g.sid,
        row_number() over (partition by g.sid order by c.idx) - 1 as pos,
        c.taken_at,
        unix_micros(c.taken_at) / 3.6e9 as hour,
        c.bytes
    from leak_points as c
    inner join leak_grown as g on c.key = g.key and c.epoch = g.epoch and c.stretch = g.stretch
)

select *
from whole_points
