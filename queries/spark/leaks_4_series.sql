-- Leaks, stage 4 of 7, continued: the series judged: every one that grew, after its change
-- point the part of one that has one (sid negated; tail_of names the whole), and one of few
-- steps extended back into its epoch (extended_of names the window's). Reads leak_grown
-- (stage 3), leak_change_points and leak_extended.
select
    *,
    cast(null as bigint) as tail_of,
    cast(null as bigint) as fell,
    cast(null as timestamp) as fell_at,
    cast(null as bigint) as extended_of
from leak_grown
union all
select
    g.key,
    g.epoch,
    g.stretch,
    g.part,
    g.parts,
    g.n - c.at_pos as n,
    c.bytes_after as first_bytes,
    g.last_bytes,
    c.fell_at as first_at,
    g.last_at,
    (unix_micros(g.last_at) - unix_micros(c.fell_at)) / 3.6e9 as hours,
    g.growth_floor,
    g.members,
    -g.sid as sid,
    g.sid as tail_of,
    c.fell,
    c.fell_at,
    cast(null as bigint) as extended_of
from leak_grown as g
inner join leak_change_points as c on g.sid = c.sid
union all
select
    g.key,
    g.epoch,
    g.stretch,
    g.part,
    g.parts,
    g.n + x.n_before as n,
    x.first_bytes,
    g.last_bytes,
    x.first_at,
    g.last_at,
    (unix_micros(g.last_at) - unix_micros(x.first_at)) / 3.6e9 as hours,
    g.growth_floor,
    g.members,
    x.ext_sid as sid,
    cast(null as bigint) as tail_of,
    cast(null as bigint) as fell,
    cast(null as timestamp) as fell_at,
    g.sid as extended_of
from leak_grown as g
inner join leak_extended as x on g.sid = x.sid
