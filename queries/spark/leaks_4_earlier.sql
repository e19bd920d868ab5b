-- Leaks, stage 4 of 7, continued: the earlier points of each series whose steps in the window
-- are too few to tell a staircase from level shifts (its effective steps, as stages 5 and 7
-- count them, under :min_steps, past the growth floor and the share of steps up) and that
-- starts at its window's first point, in an epoch that began before the window (--since):
-- its group's values at the snapshots picked in the look-back before the window
-- (leak_earlier_picked), in the epoch of the window's first snapshot as a window from there
-- names it (lookback_snapshots), before that snapshot; numbered up to 0. of_points is the
-- number of those snapshots in the epoch, rows the group's rows at the point (queries/leaks.sql:
-- few_steps, earlier_points). Reads leak_picked, leak_earlier_picked (stage 0), leak_keys,
-- leak_grown (stage 3), leak_whole_points, lookback_snapshots and samples.
-- :accurate         BOOLEAN        keep only accurate rows (true), inaccurate ones, or NULL
-- :blocks           INT            blocks whose medians smooth a series
-- :min_steps        DOUBLE         effective number of steps of a staircase
-- :min_up_share     DOUBLE         share of steps that do not decrease
-- :since_given      BOOLEAN        the window has a start (--since)
with

-- per window epoch: its first snapshot, and its epoch as a window from the look-back names it
window_firsts as (
    select
        p.epoch,
        s.epoch as lookback_epoch,
        p.taken_at as first_at
    from leak_picked as p
    inner join lookback_snapshots as s on p.snapshot_id = s.snapshot_id
    where p.idx = 1 and :since_given
),

earlier_picked as (
    select
        l.snapshot_id,
        e.epoch,
        row_number() over (partition by e.epoch order by l.taken_at, l.snapshot_id)
        - count(*) over (partition by e.epoch) as idx,
        count(*) over (partition by e.epoch) as of_points,
        l.taken_at
    from leak_earlier_picked as l
    inner join window_firsts as e on l.epoch = e.lookback_epoch and l.taken_at < e.first_at
),

window_steps as (
    select
        sid,
        pos,
        step,
        median(step) over (partition by sid) as median_step
    from (
        select
            sid,
            pos,
            bytes - lag(bytes) over (partition by sid order by pos) as step
        from leak_whole_points
    ) as stepped
    where step is not null
),

window_noise as (
    select
        sid,
        any_value(median_step) as median_step,
        median(abs(step - median_step)) as step_mad
    from window_steps
    group by sid
),

block_growth as (
    select
        p.sid,
        median(
            case
                when floor(p.pos * least(:blocks, w.n) / w.n) = least(:blocks, w.n) - 1
                    then p.bytes
            end
        )
        - median(case when floor(p.pos * least(:blocks, w.n) / w.n) = 0 then p.bytes end)
            as growth
    from leak_whole_points as p
    inner join leak_grown as w on p.sid = w.sid
    group by p.sid
),

few_steps as (
    select g.sid
    from leak_grown as g
    inner join window_firsts as e on g.epoch = e.epoch and g.first_at = e.first_at
    inner join window_noise as f on g.sid = f.sid
    inner join block_growth as b on g.sid = b.sid
    inner join window_steps as s on g.sid = s.sid
    where g.part = 1
    group by g.sid, g.n, g.growth_floor, b.growth, f.median_step, f.step_mad
    having
        b.growth >= g.growth_floor
        and avg(case when s.step >= 0 then 1 else 0 end) >= :min_up_share
        and least(
            try_divide(
                pow(b.growth, 2),
                sum(
                    case
                        when s.step - f.median_step > 3 * 1.4826 * f.step_mad
                            then pow(s.step - f.median_step, 2)
                    end
                )
            ),
            g.n - 1
        )
        < :min_steps
),

few_steps_tags as (
    select
        g.sid,
        g.epoch,
        k.tag_id
    from leak_grown as g
    left semi join few_steps as j on g.sid = j.sid
    inner join leak_keys as k on g.key = k.key
)

select
    t.sid,
    p.idx,
    p.taken_at,
    max(p.of_points) as of_points,
    cast(sum(s.bytes) as bigint) as bytes,
    count(*) as row_count
from samples as s
inner join earlier_picked as p on s.snapshot_id = p.snapshot_id
inner join few_steps_tags as t on s.tag_id = t.tag_id and p.epoch = t.epoch
where :accurate is null or s.accurate = :accurate
group by t.sid, p.idx, p.taken_at
