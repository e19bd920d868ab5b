-- Leaks, stage 5 of 7: the cheap shape tests, on steps and :blocks block medians (growth,
-- drawdown beyond the noise); only series that pass them (or are
-- too short for them) get the pairwise statistics of stage 6. Reads leak_series_points
-- (stage 4) and leak_series (stage 4).
-- :blocks           INT            blocks whose medians smooth a series
-- :min_points       INT            shortest series given a trend test
-- :min_up_share     DOUBLE         share of steps that do not decrease
-- :max_drawdown     DOUBLE         largest fall of the block medians, as a share of growth
with

stepped as (
    select
        sid,
        bytes - prev as step,
        prev - prev2 as prev_step,
        bytes >= prev as up
    from (
        select
            sid,
            bytes,
            lag(bytes) over by_pos as prev,
            lag(bytes, 2) over by_pos as prev2
        from leak_series_points
        window by_pos as (partition by sid order by pos)
    ) as lagged
    where prev is not null
),

median_steps as (
    select
        sid,
        median(step) as median_step,
        avg(step) as mean_step
    from stepped
    group by sid
),

-- the median absolute deviation of the point-to-point steps: the noise of the series (a
-- leak's or a staircase's jitter; a random walk's own steps)
steps as (
    select
        s.sid,
        count(*) as steps,
        avg(case when s.up then 1 else 0 end) as up_share,
        median(abs(s.step - m.median_step)) as step_mad,
        any_value(m.median_step) as median_step,
        -- the correlation of each step with the one before: about -0.5 for stationary jitter,
        -- about 0 for a random walk (none when the steps of the pairs are all equal)
        case
            when
                stddev_pop(s.step) filter (where s.prev_step is not null) > 0
                and stddev_pop(s.prev_step) > 0
                then corr(s.step, s.prev_step)
        end as step_lag1,
        -- the skewness of the steps: about 0 for a random walk's (symmetric), positive for a
        -- staircase's (jitter, and now and then a step up)
        case
            when stddev_pop(s.step) > 0
                then avg(pow(s.step - m.mean_step, 3)) / pow(stddev_pop(s.step), 3)
        end as step_skew
    from stepped as s
    inner join median_steps as m on s.sid = m.sid
    group by s.sid
),

block_medians as (
    select
        p.sid,
        floor(p.pos * least(:blocks, g.n) / g.n) as block,
        median(p.bytes) as bytes
    from leak_series_points as p
    inner join leak_series as g on p.sid = g.sid
    group by p.sid, floor(p.pos * least(:blocks, g.n) / g.n)
),

shaped_blocks as (
    select
        sid,
        block,
        bytes,
        lag(bytes) over by_block as prev,
        max(bytes) over (
            partition by sid order by block
            rows between unbounded preceding and current row
        ) as peak,
        first_value(bytes) over whole as first_bytes,
        last_value(bytes) over whole as last_bytes,
        max(block) over whole as last_block
    from block_medians
    window
        by_block as (partition by sid order by block),
        whole as (
            partition by sid order by block
            rows between unbounded preceding and unbounded following
        )
),

block_shape as (
    select
        sid,
        max(last_bytes) - max(first_bytes) as growth,
        max(last_bytes) as end_level,
        max(peak - bytes) as drawdown,
        -- growth in the window's last half: a fill that stopped holds none of it
        max(last_bytes) - max(case when block = floor(last_block / 2) then bytes end)
            as late_growth
    from shaped_blocks
    group by sid
),

-- the cheap shape tests first: only series that pass them (or are too short for them) get
-- the pairwise statistics. The largest fall of the block medians counts beyond their noise:
-- a fall between two medians of m points of noise σ has sd √2 · 1.2533 σ / √m, with
-- σ = 1.4826 MAD / √2 of the steps; three of those are noise
shaped as (
    select
        g.*,
        coalesce(st.steps, 0) as steps,
        coalesce(st.up_share, 0) as up_share,
        st.step_mad,
        st.median_step,
        st.step_lag1,
        st.step_skew,
        b.growth as block_growth,
        b.end_level,
        try_divide(b.late_growth, nullif(b.growth, 0)) as late_share,
        try_divide(
            greatest(
                b.drawdown - 3 * 1.2533 * 1.4826 * st.step_mad / sqrt(g.n / least(:blocks, g.n)),
                0
            ),
            nullif(b.growth, 0)
        ) as drawdown_share
    from leak_series as g
    left join steps as st on g.sid = st.sid
    left join block_shape as b on g.sid = b.sid
)

select
    *,
    case
        when n < :min_points then 'too few points'
        when block_growth < growth_floor then 'growth below floor'
        when up_share < :min_up_share then 'falls as often as it rises'
        when drawdown_share > :max_drawdown then 'falls back (sawtooth or freed)'
    end as shape_verdict
from shaped
