-- Leaks, stage 4 of 7, continued: the points of every series judged, the parts after a change
-- point numbered from 0 again, an extended series' earlier points before its window's. Reads
-- leak_whole_points, leak_change_points, leak_earlier_points and leak_extended.
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
union all
select
    x.ext_sid as sid,
    p.idx + x.n_before - 1 as pos,
    unix_micros(p.taken_at) / 3.6e9 as hour,
    p.bytes
from leak_earlier_points as p
inner join leak_extended as x on p.sid = x.sid
union all
select
    x.ext_sid as sid,
    p.pos + x.n_before as pos,
    p.hour,
    p.bytes
from leak_whole_points as p
inner join leak_extended as x on p.sid = x.sid
