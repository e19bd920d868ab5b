-- Leaks, stage 4 of 7, continued: the series of few steps extended back into their epoch
-- (queries/leaks.sql: extended): numbered 2⁴⁰ past their window's series, when every earlier
-- point holds all of the group's rows (the same series). Reads leak_earlier_points and
-- leak_grown (stage 3).
select
    p.sid,
    p.sid + shiftleft(cast(1 as bigint), 40) as ext_sid,
    count(*) as n_before,
    min_by(p.bytes, p.idx) as first_bytes,
    min(p.taken_at) as first_at
from leak_earlier_points as p
inner join leak_grown as g on p.sid = g.sid
group by p.sid, g.members
having count(*) = max(p.of_points) and min(case when p.row_count = g.members then 1 else 0 end) = 1
