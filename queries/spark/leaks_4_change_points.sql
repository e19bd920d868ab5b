-- Leaks, stage 4 of 7, continued: each series' change point, when it has one: its largest
-- fall from one point to the next, when it is a free beyond 5 noise sds (1.4826 MAD of the
-- steps, about the median step) and leaves at least half of the points, and :min_points,
-- after it, in a series of :short_hours or more. The series after it is judged on its own
-- too: a hump freed, then a leak. Half, and the hours: a sawtooth's last tooth, after its last
-- fall, is as straight as a leak, and a short window can hold a whole tooth. Reads
-- leak_whole_points and leak_grown (stage 3).
-- :min_points       INT            shortest series given a trend test
-- :short_hours      DOUBLE         shortest series given a change point
with

stepped as (
    select
        sid,
        pos,
        bytes - lag(bytes) over (partition by sid order by pos) as step
    from leak_whole_points
),

centred as (
    select
        sid,
        pos,
        step,
        median(step) over (partition by sid) as median_step
    from stepped
    where step is not null
),

falls as (
    select
        sid,
        min_by(pos, step) as at_pos,
        min(step) as fall,
        any_value(median_step) as median_step,
        median(abs(step - median_step)) as step_mad
    from centred
    group by sid
)

select
    f.sid,
    f.at_pos,
    -f.fall as fell,
    p.taken_at as fell_at,
    p.bytes as bytes_after
from falls as f
inner join leak_grown as g on f.sid = g.sid
inner join leak_whole_points as p on f.sid = p.sid and f.at_pos = p.pos
where
    f.fall < 0
    and f.fall - f.median_step < -5 * 1.4826 * f.step_mad
    and g.n - f.at_pos >= greatest(:min_points, g.n / 2)
    and g.hours >= :short_hours
