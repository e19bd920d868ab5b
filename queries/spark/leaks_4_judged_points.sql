-- Leaks, stage 4 of 7, continued: the points of every series judged, the parts after a change
-- point numbered from 0 again. Reads leak_whole_points and leak_change_points.
select
    sid,
    pos,
    hour,
    bytes
from leak_whole_points
union all
select
    -p.sid as sid,
    p.pos - c.at_pos as pos,
    p.hour,
    p.bytes
from leak_whole_points as p
inner join leak_change_points as c on p.sid = c.sid and p.pos >= c.at_pos
