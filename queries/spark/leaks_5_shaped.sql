-- Leaks, stage 5 of 6: the cheap shape tests, on steps and :blocks block medians (growth,
-- largest step, two largest steps, drawdown, bend as shares of growth); only series that pass
-- them (or are too short for them) get the pairwise statistics of stage 6. Reads
-- leak_series_points (stage 4) and leak_grown (stage 3).
-- :blocks           INT            blocks whose medians smooth a series
-- :min_points       INT            shortest series given a trend test
-- :min_growth       BIGINT         floor: growth of the block medians, bytes
-- :min_up_share     DOUBLE         share of steps that do not decrease
-- :max_step_share   DOUBLE         largest block-median step, as a share of growth
-- :max_two_steps    DOUBLE         two largest block-median steps together, as a share of growth
-- :max_drawdown     DOUBLE         largest fall of the block medians, as a share of growth
-- :max_bend         DOUBLE         farthest block median from the line joining the first and
--                                  the last, as a share of growth, for a series that also
--                                  falls ...
-- :max_wander_fall  DOUBLE         ... more than this share of growth (a staircase never falls)
with

steps as (
    select
        sid,
        count(*) as steps,
        avg(case when bytes >= prev then 1 else 0 end) as up_share,
        avg(case when bytes = prev then 1 else 0 end) as flat_share
    from (
        select
            sid,
            bytes,
            lag(bytes) over (partition by sid order by pos) as prev
        from leak_series_points
    ) as stepped
    where prev is not null
    group by sid
),

block_medians as (
    select
        p.sid,
        floor(p.pos * least(:blocks, g.n) / g.n) as block,
        median(p.bytes) as bytes
    from leak_series_points as p
    inner join leak_grown as g on p.sid = g.sid
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

-- the steps between block medians, largest first, for the sum of the two largest
block_steps as (
    select
        sid,
        bytes - prev as step,
        row_number() over (partition by sid order by bytes - prev desc) as step_rank
    from shaped_blocks
    where prev is not null
),

two_steps as (
    select
        sid,
        sum(step) as two_largest_steps
    from block_steps
    where step_rank <= 2
    group by sid
),

block_shape as (
    select
        b.sid,
        max(b.last_bytes) - max(b.first_bytes) as growth,
        max(b.bytes - b.prev) as largest_step,
        max(t.two_largest_steps) as two_largest_steps,
        max(b.peak - b.bytes) as drawdown,
        max(
            abs(
                b.bytes - b.first_bytes
                - try_divide((b.last_bytes - b.first_bytes) * b.block, b.last_block)
            )
        ) as bend
    from shaped_blocks as b
    left join two_steps as t on b.sid = t.sid
    group by b.sid
),

-- the cheap shape tests first: only series that pass them (or are too short for them) get
-- the pairwise statistics
shaped as (
    select
        g.*,
        coalesce(st.steps, 0) as steps,
        coalesce(st.up_share, 0) as up_share,
        coalesce(st.flat_share, 0) as flat_share,
        b.growth as block_growth,
        b.largest_step,
        try_divide(b.largest_step, nullif(b.growth, 0)) as step_share,
        try_divide(b.drawdown, nullif(b.growth, 0)) as drawdown_share,
        try_divide(b.bend, nullif(b.growth, 0)) as bend_share,
        case
            when g.n < :min_points then 'too few points'
            when b.growth < :min_growth then 'growth below floor'
            when st.up_share < :min_up_share then 'falls as often as it rises'
            when
                try_divide(b.largest_step, b.growth) > :max_step_share
                or try_divide(b.two_largest_steps, b.growth) > :max_two_steps
                then 'one or two steps'
            when try_divide(b.drawdown, b.growth) > :max_drawdown
                then 'falls back (sawtooth or freed)'
            when
                try_divide(b.bend, b.growth) > :max_bend
                and try_divide(b.drawdown, b.growth) > :max_wander_fall
                then 'wanders (strays from a line and falls back)'
        end as shape_verdict
    from leak_grown as g
    left join steps as st on g.sid = st.sid
    left join block_shape as b on g.sid = b.sid
)

select *
from shaped
