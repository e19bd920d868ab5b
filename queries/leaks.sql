-- Leak candidates of a store window: per group and epoch, a robust trend verdict
-- (docs/analyses.md).
-- Each epoch is read at no more than $max_points snapshots, evenly spaced in time, so the cost
-- does not grow with the number of snapshots. A group's series breaks where its rows vanish
-- (a module unloaded: not a free); each unbroken stretch is a series of its own.
-- Every series that grew past the floors end to end is returned, with its verdict: 'leak', or
-- why not. Statistics: Mann–Kendall S, variance with ties, z and one-sided confidence; the
-- Theil–Sen slope; the share of non-decreasing steps; and, on $blocks block medians, the
-- growth, the largest single step and the largest fall back (drawdown), as shares of growth.
-- Every epoch is one host's (column host; by host, the key is the host): a series never sums
-- two hosts. hosts and leaking_hosts say on how many hosts, and which, the key leaks.
-- Leaks first, steepest first, then key, epoch and start.
-- $host            VARCHAR      hosts: a regular expression over the whole name, or NULL for all
-- $since_at        TIMESTAMPTZ  window start, or NULL
-- $until_at        TIMESTAMPTZ  window end, or NULL
-- $since_back      DOUBLE       window start in seconds before the newest snapshot, or NULL
-- $until_back      DOUBLE       window end in seconds before the newest snapshot, or NULL
-- $tag_ids         BIGINT[]     tags kept by the tag filters, or NULL for all
-- $accurate        BOOLEAN      keep only accurate rows (true), inaccurate ones (false), or NULL
-- $by              VARCHAR      tag | function | file | module | dir | host
-- $depth           INTEGER      directories kept by dir
-- $min_size        BIGINT       keep a series whose largest value is at least this, or NULL
-- $max_size        BIGINT       keep a series whose smallest value is at most this, or NULL
-- $nonzero         BOOLEAN      keep only series that are not all zero
-- $max_points      INTEGER      snapshots read per epoch (at least 2)
-- $blocks          INTEGER      blocks whose medians smooth a series
-- $min_points      INTEGER      shortest series given a trend test
-- $min_growth      BIGINT       floor: growth of the block medians, bytes
-- $min_rate        DOUBLE       floor: Theil–Sen slope and end-to-end rate, bytes per hour
-- $min_confidence  DOUBLE       Mann–Kendall confidence that the series increases
-- $min_up_share    DOUBLE       share of steps that do not decrease
-- $max_step_share  DOUBLE       largest block-median step, as a share of growth
-- $max_two_steps   DOUBLE       two largest block-median steps together, as a share of growth
-- $max_drawdown    DOUBLE       largest fall of the block medians, as a share of growth
-- $max_bend        DOUBLE       farthest block median from the line joining the first and the
--                               last, as a share of growth, for a series that also falls ...
-- $max_wander_fall DOUBLE       ... more than this share of growth (a staircase never falls)
with

-- at most $max_points snapshots per epoch, evenly spaced in time, first and last included
picked as (
    select *
    from
        window_snapshots_picked(
            $host, $since_at, $until_at, $since_back, $until_back, $max_points
        )
),

epoch_spans as (
    select
        epoch,
        any_value(host) as host
    from picked
    group by epoch
),

keys as (
    select
        tag_id,
        group_key($by, $depth, file, line, module, function) as key
    from tags
    where $tag_ids::bigint[] is null or list_contains($tag_ids::bigint[], tag_id)
),

-- one pass over the samples: per tag and epoch, its range and its points
tag_series as materialized (
    select
        s.tag_id,
        p.epoch,
        min(s.bytes) as min_bytes,
        max(s.bytes) as max_bytes,
        list({ 'idx': p.idx, 'taken_at': p.taken_at, 'bytes': s.bytes }) as points
    from samples as s
    inner join picked as p on s.snapshot_id = p.snapshot_id
    where $accurate is null or s.accurate = $accurate
    group by s.tag_id, p.epoch
    -- by tag, a tag is its own group: drop the flat ones now rather than carry their points
    having $by != 'tag' or max(s.bytes) - min(s.bytes) >= $min_growth
),

-- a group grows by no more than the sum of its members' ranges: most groups stop here
candidate_keys as (
    select
        k.key,
        t.epoch
    from tag_series as t
    inner join keys as k on t.tag_id = k.tag_id
    group by k.key, t.epoch
    having sum(t.max_bytes - t.min_bytes) >= $min_growth
),

candidate_series as (
    select
        k.key,
        t.epoch,
        t.points
    from tag_series as t
    inner join keys as k on t.tag_id = k.tag_id
    semi join candidate_keys as c on k.key = c.key and t.epoch = c.epoch
),

member_points as (
    select
        key,
        epoch,
        unnest(points, recursive := true)  -- noqa: AL03
    from candidate_series
),

points as (
    select
        key,
        epoch,
        idx,
        taken_at,
        sum(bytes)::bigint as bytes,
        count(*) as rows
    from member_points
    group by key, epoch, idx, taken_at
),

-- a point is complete when all of the group's rows are there; runs of complete points are
-- the unbroken stretches (gaps and islands over the epoch's point numbers)
complete as (
    select
        key,
        epoch,
        idx,
        taken_at,
        bytes,
        idx - row_number() over (partition by key, epoch order by idx) as stretch
    from points
    qualify rows = max(rows) over (partition by key, epoch)
),

stretches as (
    select
        key,
        epoch,
        stretch,
        dense_rank() over (partition by key, epoch order by stretch) as part,
        count(*) over (partition by key, epoch) as parts,
        count(*) as n,
        arg_min(bytes, idx) as first_bytes,
        arg_max(bytes, idx) as last_bytes,
        min(taken_at) as first_at,
        max(taken_at) as last_at,
        min(bytes) as min_bytes,
        max(bytes) as max_bytes
    from complete
    group by key, epoch, stretch
),

-- floors on the end-to-end change first: most series stop here, before any pairwise work
grown as (
    select
        s.key,
        s.epoch,
        s.stretch,
        s.part,
        s.parts,
        s.n,
        s.first_bytes,
        s.last_bytes,
        s.first_at,
        s.last_at,
        epoch_us(s.last_at - s.first_at) / 3.6e9 as hours,
        dense_rank() over (order by s.key, s.epoch, s.stretch) as sid
    from stretches as s
    where
        s.last_bytes - s.first_bytes >= $min_growth
        and (s.last_bytes - s.first_bytes)
        / greatest(epoch_us(s.last_at - s.first_at) / 3.6e9, 1e-9) >= $min_rate
        and ($min_size is null or s.max_bytes >= $min_size)
        and ($max_size is null or s.min_bytes <= $max_size)
        and (not $nonzero or s.max_bytes != 0 or s.min_bytes != 0)
),

series_points as (
    select
        g.sid,
        row_number() over (partition by g.sid order by c.idx) - 1 as pos,
        epoch_us(c.taken_at) / 3.6e9 as hour,
        c.bytes
    from complete as c
    inner join grown as g on c.key = g.key and c.epoch = g.epoch and c.stretch = g.stretch
),

steps as (
    select
        sid,
        count(*) as steps,
        avg((bytes >= prev)::int) as up_share,
        avg((bytes = prev)::int) as flat_share
    from (
        select
            sid,
            bytes,
            lag(bytes) over (partition by sid order by pos) as prev
        from series_points
    ) as stepped
    where prev is not null
    group by sid
),

block_medians as (
    select
        p.sid,
        floor(p.pos * least($blocks, g.n) / g.n) as block,
        median(p.bytes) as bytes
    from series_points as p
    inner join grown as g on p.sid = g.sid
    group by p.sid, block
),

block_shape as (
    select
        sid,
        max(last_bytes) - max(first_bytes) as growth,
        max(bytes - prev) as largest_step,
        list_sum(
            list_slice(list_sort(list(bytes - prev) filter (where prev is not null), 'desc'), 1, 2)
        )
            as two_largest_steps,
        max(peak - bytes) as drawdown,
        max(abs(bytes - first_bytes - (last_bytes - first_bytes) * block / last_block)) as bend
    from (
        select
            sid,
            block,
            bytes,
            lag(bytes) over by_block as prev,
            max(bytes) over (by_block rows between unbounded preceding and current row) as peak,
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
    ) as shaped
    group by sid
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
        b.largest_step / nullif(b.growth, 0) as step_share,
        b.drawdown / nullif(b.growth, 0) as drawdown_share,
        b.bend / nullif(b.growth, 0) as bend_share,
        case
            when g.n < $min_points then 'too few points'
            when b.growth < $min_growth then 'growth below floor'
            when st.up_share < $min_up_share then 'falls as often as it rises'
            when
                b.largest_step / b.growth > $max_step_share
                or b.two_largest_steps / b.growth > $max_two_steps then 'one or two steps'
            when b.drawdown / b.growth > $max_drawdown then 'falls back (sawtooth or freed)'
            when b.bend / b.growth > $max_bend and b.drawdown / b.growth > $max_wander_fall
                then 'wanders (strays from a line and falls back)'
        end as shape_verdict
    from grown as g
    left join steps as st on g.sid = st.sid
    left join block_shape as b on g.sid = b.sid
),

tested_points as (
    select p.*
    from series_points as p
    semi join shaped as s
        on p.sid = s.sid and (s.shape_verdict is null or s.shape_verdict = 'too few points')
),

-- Mann–Kendall S and Theil–Sen slope over all pairs of a series (at most $max_points points)
pairs as (
    select
        a.sid,
        sum(sign(b.bytes - a.bytes))::bigint as s,
        median((b.bytes - a.bytes) / (b.hour - a.hour)) as slope
    from tested_points as a
    inner join tested_points as b on a.sid = b.sid and a.pos < b.pos
    group by a.sid
),

ties as (
    select
        sid,
        sum(t * (t - 1) * (2 * t + 5)) as correction
    from (
        select
            sid,
            count(*) as t
        from tested_points
        group by sid, bytes
        having count(*) > 1
    ) as ties
    group by sid
),

scored as (
    select
        sh.*,
        pr.s as mk_s,
        (sh.n * (sh.n - 1) * (2 * sh.n + 5) - coalesce(t.correction, 0)) / 18.0 as mk_var,
        case
            when mk_var > 0 then (mk_s - sign(mk_s)) / sqrt(mk_var) else 0
        end as mk_z,
        case when pr.sid is not null then normal_cdf(mk_z) end as confidence,
        pr.slope as bytes_per_hour
    from shaped as sh
    left join pairs as pr on sh.sid = pr.sid
    left join ties as t on sh.sid = t.sid
),

judged as (
    select
        s.*,
        case when $by = 'host' then e.host else s.key end as shown_key,
        e.host,
        case
            when shape_verdict is not null then shape_verdict
            when confidence < $min_confidence then 'no significant trend'
            when bytes_per_hour < $min_rate then 'slope below floor'
            else 'leak'
        end as verdict
    from scored as s
    inner join epoch_spans as e on s.epoch = e.epoch
)

select
    shown_key as key,
    host,
    count(distinct host) filter (where verdict = 'leak') over by_key as hosts,
    list(distinct host order by host) filter (where verdict = 'leak') over by_key
        as leaking_hosts,
    epoch,
    part,
    parts,
    verdict,
    bytes_per_hour,
    last_bytes - first_bytes as growth_bytes,
    first_bytes,
    last_bytes,
    first_at,
    last_at,
    hours,
    n as points,
    confidence,
    mk_s,
    mk_var,
    mk_z,
    up_share,
    step_share,
    drawdown_share,
    bend_share,
    case
        when verdict = 'too few points'
            then printf(
                '%d points: too few for a trend test (need %d); Mann–Kendall confidence %.0f%%',
                n, $min_points, 100 * confidence
            )
        when verdict != 'leak' then verdict
        when flat_share >= 0.5
            then printf(
                'grows in steps, flat between: %.0f%% of %d steps non-decreasing, '
                || 'largest %.0f%% of growth, Mann–Kendall z=%.1f',
                100 * up_share, steps, 100 * step_share, mk_z
            )
        else printf(
            'grows steadily: %.0f%% of %d steps non-decreasing, largest fall %.0f%% of growth, '
            || 'Mann–Kendall z=%.1f',
            100 * up_share, steps, 100 * drawdown_share, mk_z
        )
    end as reason
from judged
window by_key as (partition by shown_key)
order by
    verdict = 'leak' desc,
    bytes_per_hour desc nulls last,
    shown_key asc,
    epoch asc,
    first_at asc
