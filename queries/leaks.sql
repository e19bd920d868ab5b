-- Leak candidates of a store window: per group and epoch, a trend verdict that holds on any
-- window (docs/analyses.md explains each test). Each epoch is read at no more than the
-- max_points snapshots, evenly spaced in time. A group's series breaks where its rows vanish
-- (a module unloaded: not a free); each unbroken stretch is a series of its own. Every series
-- that grew past the floors is returned with its verdict ('leak', or why not) and a reason
-- naming the test that decided: Mann–Kendall (rises?), Theil–Sen (how fast), KPSS on the
-- residuals around the Theil–Sen line (bounded: a leak), and for the rest the falls, jumps
-- and effective steps (growth² / Σ rise² of the block medians) of a staircase. A series whose
-- boot goes on after it (a window that ends before its epoch does, --until, or a stretch of
-- profiling off that ends its epoch) is followed there: growth given back later in the same
-- boot is not a leak. A series of $short_hours or more with a change
-- point (a free at once, with at least half of its points after it) is also judged from
-- there; that part is said instead when it is a leak and the whole is not. A series whose
-- steps in a window that starts after its epoch (--since) are too few to tell a staircase from
-- level shifts is also judged with the epoch before the window, and said so when that is a
-- leak.
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
-- $min_growth      BIGINT       floor: growth of the block medians, bytes, in a window of an
--                               epoch that spans at least $min_growth / $min_rate hours; a
--                               shorter one lowers it to $min_rate × its hours
-- $min_rate        DOUBLE       floor: Theil–Sen slope and end-to-end rate, bytes per hour
-- $min_confidence  DOUBLE       Mann–Kendall confidence that the series increases
-- $min_up_share    DOUBLE       share of steps that do not decrease
-- $max_drawdown    DOUBLE       largest fall of the block medians, as a share of growth, inside
--                               the window or after it in the same boot
-- $max_kpss        DOUBLE       KPSS statistic of residuals that stay bounded (0.216: 1% level)
-- $max_wander_fall DOUBLE       largest fall of the block medians beyond their noise, as a
--                               share of growth, of a staircase (a random walk falls back)
-- $min_steps       DOUBLE       effective number of steps of a staircase (growth² / Σ rise²)
-- $min_late_share  DOUBLE       ... its last half at least this share of its growth ...
-- $min_jump_share  DOUBLE       ... and at least this share of its growth in jumps, ...
-- $max_step_lag1   DOUBLE       ... or steps correlated at most this with the one before, ...
-- $min_step_skew_z DOUBLE       ... or steps skewed up: skewness × √(steps / 6) at least this
-- $short_hours     DOUBLE       a leak over fewer hours than this is flagged as short, and a
--                               series shorter than this is given no change point
-- $look_back       DOUBLE       a staircase too short to tell in a window is judged with its
--                               epoch before it too, back at most this many window spans
with

-- at most $max_points snapshots per epoch, evenly spaced in time, first and last included
picked as (
    select *
    from
        window_snapshots_picked(
            $host, $since_at, $until_at, $since_back, $until_back, $max_points
        )
),

-- per epoch, the growth floor: $min_growth, or what $min_rate adds up to over a shorter span
-- of the epoch in the window (a fast leak seen for an hour is still a leak)
epoch_spans as (
    select
        epoch,
        any_value(host) as host,
        any_value(boot) as boot,
        min(taken_at) as first_at,
        max(taken_at) as last_at,
        least($min_growth, $min_rate * epoch_us(max(taken_at) - min(taken_at)) / 3.6e9)
            as growth_floor
    from picked
    group by epoch
),

-- the rest of each epoch's boot after it: after a window that ends before the epoch does
-- (--until), and after a stretch of profiling off that ends it. The snapshots of the same host
-- and boot taken after the epoch's last one in the window, among the $max_points picked per
-- epoch over the whole store, numbered from 1 under the window's epoch. Frees while profiling
-- is off are not counted, so counters after it can only overstate what is still held: a fall
-- there is growth given back (docs/analyses.md, step 4)
later_picked as (
    select
        l.snapshot_id,
        e.epoch,
        row_number() over (partition by e.epoch order by l.taken_at, l.snapshot_id) as idx
    from window_snapshots_picked($host, null, null, null, null, $max_points) as l
    inner join epoch_spans as e
        on l.host = e.host and l.boot = e.boot and l.taken_at > e.last_at
),

-- the rest of each epoch before a window that starts after it (--since), back at most
-- look_back times the window's span: the max_points snapshots picked there, in the epoch of
-- the window's first snapshot as a window from there names it (a stretch of profiling off in
-- between names it afresh), before that snapshot; numbered up to 0 (the window's are from
-- 1). Read only for the series of few steps (below)
look_back as (
    select min(first_at) - $look_back * (max(last_at) - min(first_at)) as from_at
    from epoch_spans
),

-- per window epoch: its first snapshot, and its epoch as a window from the look-back names it
window_firsts as (
    select
        p.epoch,
        s.epoch as lookback_epoch,
        p.taken_at as first_at
    from picked as p
    inner join
        window_snapshots($host, (select from_at from look_back), null, null, null) as s
        on p.snapshot_id = s.snapshot_id
    where p.idx = 1 and ($since_at is not null or $since_back is not null)
),

earlier_picked as (
    select
        l.snapshot_id,
        e.epoch,
        row_number() over (partition by e.epoch order by l.taken_at, l.snapshot_id)
        - count(*) over (partition by e.epoch) as idx,
        count(*) over (partition by e.epoch) as of_points,
        l.taken_at
    from
        window_snapshots_picked(
            $host, (select from_at from look_back), $since_at, null, $since_back, $max_points
        ) as l
    inner join window_firsts as e on l.epoch = e.lookback_epoch and l.taken_at < e.first_at
),

keys as (
    select
        tag_id,
        group_key($by, $depth, file, line, module, function) as key
    from tags
    where $tag_ids::bigint[] is null or list_contains($tag_ids::bigint[], tag_id)
),

-- the snapshots read: the window's, and those of the rest of its epochs
read_snapshots as (
    select
        p.snapshot_id,
        p.epoch,
        p.idx,
        p.taken_at,
        false as later,
        e.growth_floor
    from picked as p
    inner join epoch_spans as e on p.epoch = e.epoch
    union all
    select
        snapshot_id,
        epoch,
        idx,
        null as taken_at,
        true as later,
        null as growth_floor
    from later_picked
),

-- one pass over the samples: per tag and epoch, its range and its points in the window, and
-- its points after it
tag_series as materialized (
    select
        s.tag_id,
        p.epoch,
        min(s.bytes) filter (where not p.later) as min_bytes,
        max(s.bytes) filter (where not p.later) as max_bytes,
        list({ 'idx': p.idx, 'taken_at': p.taken_at, 'bytes': s.bytes }) filter (
            where not p.later
        ) as points,
        list({ 'idx': p.idx, 'bytes': s.bytes }) filter (where p.later) as later_points,
        max(p.growth_floor) as growth_floor
    from (
        -- the window's picked snapshots, read by their times (view_window_samples.sql)
        select
            w.snapshot_id,
            w.tag_id,
            w.bytes,
            w.accurate
        from
            window_samples(
                $host, $since_at, $until_at, $since_back, $until_back, $max_points
            ) as w
        union all
        -- and the later ones that are not among them (a later epoch's in the window are)
        select
            l.snapshot_id,
            l.tag_id,
            l.bytes,
            l.accurate
        from samples as l
        semi join (
            select r.snapshot_id from later_picked as r
            anti join picked as w on r.snapshot_id = w.snapshot_id
        ) as r on l.snapshot_id = r.snapshot_id
    ) as s
    inner join read_snapshots as p on s.snapshot_id = p.snapshot_id
    where $accurate is null or s.accurate = $accurate
    group by s.tag_id, p.epoch
    -- by tag, a tag is its own group: drop the flat ones now rather than carry their points
    having
        $by != 'tag'
        or max(s.bytes) filter (where not p.later) - min(s.bytes) filter (where not p.later)
        >= max(p.growth_floor)
),

-- a group grows by no more than the sum of its members' ranges: most groups stop here
candidate_keys as (
    select
        k.key,
        t.epoch
    from tag_series as t
    inner join keys as k on t.tag_id = k.tag_id
    group by k.key, t.epoch
    having sum(t.max_bytes - t.min_bytes) >= max(t.growth_floor)
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
        idx - row_number() over (partition by key, epoch order by idx) as stretch,
        rows as members
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
        max(bytes) as max_bytes,
        any_value(members) as members
    from complete
    group by key, epoch, stretch
),

-- floors on the range first: most series stop here, before any pairwise work (the range, not
-- last - first: under jitter of several MiB a leak's ends can sit below the floor)
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
        e.growth_floor,
        s.members,
        dense_rank() over (order by s.key, s.epoch, s.stretch) as sid
    from stretches as s
    inner join epoch_spans as e on s.epoch = e.epoch
    where
        s.max_bytes - s.min_bytes >= e.growth_floor
        and (s.max_bytes - s.min_bytes)
        / greatest(epoch_us(s.last_at - s.first_at) / 3.6e9, 1e-9) >= $min_rate
        and ($min_size is null or s.max_bytes >= $min_size)
        and ($max_size is null or s.min_bytes <= $max_size)
        and (not $nonzero or s.max_bytes != 0 or s.min_bytes != 0)
),

whole_points as (
    select
        g.sid,
        row_number() over (partition by g.sid order by c.idx) - 1 as pos,
        c.taken_at,
        epoch_us(c.taken_at) / 3.6e9 as hour,
        c.bytes
    from complete as c
    inner join grown as g on c.key = g.key and c.epoch = g.epoch and c.stretch = g.stretch
),

-- each window series' steps from one point to the next, centred on their median
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
        from whole_points
    ) as stepped
    where step is not null
),

-- their noise (1.4826 MAD of the steps, about the median step) and their largest fall
window_noise as (
    select
        sid,
        arg_min(pos, step) as at_pos,
        min(step) as fall,
        any_value(median_step) as median_step,
        median(abs(step - median_step)) as step_mad
    from window_steps
    group by sid
),

-- the growth of each window series' block medians: the last block's less the first's
window_growth as (
    select
        p.sid,
        median(p.bytes) filter (
            where floor(p.pos * least($blocks, w.n) / w.n) = least($blocks, w.n) - 1
        )
        - median(p.bytes) filter (where floor(p.pos * least($blocks, w.n) / w.n) = 0) as growth
    from whole_points as p
    inner join grown as w on p.sid = w.sid
    group by p.sid
),

-- a series whose steps in the window are too few to tell a staircase from level shifts (its
-- effective steps, as block_shape and jumps below count them, under $min_steps, and past the
-- first shape tests: growth floor, share of steps up) that starts at its window's first
-- point, in an epoch that began before the window (--since), is also judged from further back
-- in the epoch: extended with its group's points there, read for these series only. Every
-- earlier point must hold all of the group's rows (the same series)
few_steps as (
    select g.sid
    from grown as g
    inner join window_firsts as e on g.epoch = e.epoch and g.first_at = e.first_at
    inner join window_noise as f on g.sid = f.sid
    inner join window_growth as b on g.sid = b.sid
    inner join window_steps as s on g.sid = s.sid
    where g.part = 1
    group by g.sid, g.n, g.growth_floor, b.growth, f.median_step, f.step_mad
    having
        b.growth >= g.growth_floor
        and avg((s.step >= 0)::int) >= $min_up_share
        and least(
            pow(b.growth, 2) / sum(pow(s.step - f.median_step, 2)) filter (
                where s.step - f.median_step > 3 * 1.4826 * f.step_mad
            ),
            g.n - 1
        )
        < $min_steps
),

-- the groups' tags, per series of few steps
few_steps_tags as (
    select
        g.sid,
        g.epoch,
        k.tag_id
    from grown as g
    semi join few_steps as j on g.sid = j.sid
    inner join keys as k on g.key = k.key
),

-- their samples there, read by their times as the window's are (none when no series has few
-- steps)
earlier_samples as (
    select
        l.snapshot_id,
        l.tag_id,
        l.bytes
    from
        window_samples(
            $host,
            (select from_at from look_back),
            case
                when exists (select 1 from few_steps) then $since_at::timestamptz
                else '-infinity'::timestamptz
            end,
            null,
            $since_back,
            $max_points
        ) as l
    semi join earlier_picked as r on l.snapshot_id = r.snapshot_id
    semi join few_steps_tags as f on l.tag_id = f.tag_id
    where $accurate is null or l.accurate = $accurate
),

earlier_points as (
    select
        t.sid,
        p.idx,
        p.taken_at,
        p.of_points,
        sum(s.bytes)::bigint as bytes,
        count(*) as rows
    from earlier_samples as s
    inner join earlier_picked as p on s.snapshot_id = p.snapshot_id
    inner join few_steps_tags as t on s.tag_id = t.tag_id and p.epoch = t.epoch
    group by t.sid, p.idx, p.taken_at, p.of_points
),

-- numbered 2⁴⁰ past its window's series (a change point's part is numbered below 0)
extended as (
    select
        p.sid,
        p.sid + (1::bigint << 40) as ext_sid,
        count(*) as n_before,
        arg_min(p.bytes, p.idx) as first_bytes,
        min(p.taken_at) as first_at
    from earlier_points as p
    inner join grown as g on p.sid = g.sid
    group by p.sid, g.members
    having count(*) = max(p.of_points) and bool_and(p.rows = g.members)
),

-- a change point: a series' largest fall from one point to the next, when it is a free beyond
-- 5 noise sds (1.4826 MAD of the steps, about the median step) and leaves at least half of
-- the points, and $min_points, after it. The series after it is judged on its own too: a
-- hump freed, then a leak (the whole drifts by its falls; the rest may be a leak). Half, and
-- a series of $short_hours or more: a sawtooth's last tooth, after its last fall, is as
-- straight as a leak, and a short window can hold a whole tooth
change_points as (
    select
        f.sid,
        f.at_pos,
        -f.fall as fell,
        p.taken_at as fell_at,
        p.bytes as bytes_after
    from window_noise as f
    inner join grown as g on f.sid = g.sid
    inner join whole_points as p on f.sid = p.sid and f.at_pos = p.pos
    where
        f.fall < 0
        and f.fall - f.median_step < -5 * 1.4826 * f.step_mad
        and g.n - f.at_pos >= greatest($min_points, g.n / 2)
        and g.hours >= $short_hours
),

-- the series judged: every one that grew, after its change point the part of one that has
-- one (sid negated; tail_of names the whole), and one of few steps extended back into its
-- epoch (extended_of names the window's)
judged_series as (
    select
        *,
        null::bigint as tail_of,
        null::bigint as fell,
        null::timestamptz as fell_at,
        null::bigint as extended_of
    from grown
    union all by name
    select
        g.* replace (
            g.n - c.at_pos as n,
            c.bytes_after as first_bytes,
            c.fell_at as first_at,
            epoch_us(g.last_at - c.fell_at) / 3.6e9 as hours,
            -g.sid as sid
        ),
        g.sid as tail_of,
        c.fell,
        c.fell_at
    from grown as g
    inner join change_points as c on g.sid = c.sid
    union all by name
    select
        g.* replace (
            g.n + x.n_before as n,
            x.first_bytes as first_bytes,
            x.first_at as first_at,
            epoch_us(g.last_at - x.first_at) / 3.6e9 as hours,
            x.ext_sid as sid
        ),
        g.sid as extended_of
    from grown as g
    inner join extended as x on g.sid = x.sid
),

series_points as (
    select
        sid,
        pos,
        hour,
        bytes
    from whole_points
    union all
    select
        -p.sid as sid,
        p.pos - c.at_pos as pos,
        p.hour,
        p.bytes
    from whole_points as p
    inner join change_points as c on p.sid = c.sid and p.pos >= c.at_pos
    union all
    select
        x.ext_sid as sid,
        p.idx + x.n_before - 1 as pos,
        epoch_us(p.taken_at) / 3.6e9 as hour,
        p.bytes
    from earlier_points as p
    inner join extended as x on p.sid = x.sid
    union all
    select
        x.ext_sid as sid,
        p.pos + x.n_before as pos,
        p.hour,
        p.bytes
    from whole_points as p
    inner join extended as x on p.sid = x.sid
),

-- the steps' statistics. Floating-point sums run over each series' steps in order
-- (list_sum of an ordered list): sum(), avg(), stddev_pop() and corr() add in the order that
-- DuckDB's threads deliver rows, and a verdict's figures changed in their last digit from run
-- to run. The means are of whole bytes, so exact.
steps as (
    select
        sid,
        count(*) as steps,
        avg((step >= 0)::int) as up_share,
        -- the noise of the series: the median absolute deviation of its steps
        median(abs(step - median_step)) as step_mad,
        any_value(median_step) as median_step,
        list_sum(list(pow(step - mean_step, 2) order by pos)) / count(*) as step_var,
        list_sum(list(pow(step - mean_step, 3) order by pos)) / count(*) as step_m3,
        -- the lag-1 pairs of steps (each step and the one before it)
        list_sum(
            list((step - mean_late) * (earlier - mean_early) order by pos)
            filter (where earlier is not null)
        ) as lag_cov,
        list_sum(list(pow(step - mean_late, 2) order by pos) filter (where earlier is not null))
            as late_var,
        list_sum(list(pow(earlier - mean_early, 2) order by pos) filter (where earlier is not null))
            as early_var
    from (
        select
            sid,
            pos,
            step,
            earlier,
            median(step) over by_sid as median_step,
            avg(step) over by_sid as mean_step,
            avg(step) filter (where earlier is not null) over by_sid as mean_late,
            avg(earlier) over by_sid as mean_early
        from (
            select
                sid,
                pos,
                bytes - lag(bytes) over by_pos as step,
                lag(bytes) over by_pos - lag(bytes, 2) over by_pos as earlier
            from series_points
            window by_pos as (partition by sid order by pos)
        ) as lagged
        where step is not null
        window by_sid as (partition by sid)
    ) as stepped
    group by sid
),

-- the steps' lag-1 correlation and skewness
step_shape as (
    select
        *,
        -- about -0.5 for stationary jitter, about 0 for a random walk (none for equal steps)
        case
            when late_var > 0 and early_var > 0 then lag_cov / sqrt(late_var * early_var)
        end as step_lag1,
        -- the skewness of the steps: about 0 for a random walk's (symmetric), positive for a
        -- staircase's (jitter, and now and then a step up)
        case when step_var > 0 then step_m3 / pow(step_var, 1.5) end as step_skew
    from steps
),

block_medians as (
    select
        p.sid,
        floor(p.pos * least($blocks, g.n) / g.n) as block,
        median(p.bytes) as bytes
    from series_points as p
    inner join judged_series as g on p.sid = g.sid
    group by p.sid, block
),

block_shape as (
    select
        sid,
        max(last_bytes) - max(first_bytes) as growth,
        max(last_bytes) as end_level,
        max(peak - bytes) as drawdown,
        -- growth in the window's last half: a fill that stopped holds none of it
        max(last_bytes) - max(bytes) filter (where block = floor(last_block / 2)) as late_growth
    from (
        select
            sid,
            block,
            bytes,
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

-- cheap shape tests first: only series that pass (or are too short) get pairwise statistics
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
        b.late_growth / nullif(b.growth, 0) as late_share,
        -- the largest fall of the block medians beyond 3 sds of their noise (docs/analyses.md)
        greatest(
            b.drawdown - 3 * 1.2533 * 1.4826 * st.step_mad / sqrt(g.n / least($blocks, g.n)), 0
        ) / nullif(b.growth, 0) as drawdown_share,
        case
            when g.n < $min_points then 'too few points'
            when b.growth < g.growth_floor then 'growth below floor'
            when st.up_share < $min_up_share then 'falls as often as it rises'
            when drawdown_share > $max_drawdown then 'falls back (sawtooth or freed)'
        end as shape_verdict
    from judged_series as g
    left join step_shape as st on g.sid = st.sid
    left join block_shape as b on g.sid = b.sid
),

tested_points as (
    select p.*
    from series_points as p
    semi join shaped as s
        on p.sid = s.sid and (s.shape_verdict is null or s.shape_verdict = 'too few points')
),

-- the judged series' groups in the rest of their boot, after their epoch in the window
later_points as (
    select
        m.key,
        m.epoch,
        m.point.idx,
        sum(m.point.bytes) as bytes
    from (
        select
            k.key,
            t.epoch,
            unnest(t.later_points) as point
        from tag_series as t
        inner join keys as k on t.tag_id = k.tag_id
        semi join
            shaped as j
            on k.key = j.key and t.epoch = j.epoch and j.shape_verdict is null
    ) as m
    group by m.key, m.epoch, m.point.idx
),

-- their lowest level there: the least of $blocks block medians
later_low as (
    select
        key,
        epoch,
        min(bytes) as low_bytes,
        any_value(per_block) as per_block
    from (
        select
            key,
            epoch,
            median(bytes) as bytes,
            any_value(n) / least($blocks, any_value(n)) as per_block
        from (
            select
                *,
                count(*) over (partition by key, epoch) as n
            from later_points
        ) as counted
        group by key, epoch, floor((idx - 1) * least($blocks, n) / n)
    ) as blocked
    group by key, epoch
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
        -- the best a perfect order of n points can reach: S = n(n-1)/2, no ties
        normal_cdf(
            (sh.n * (sh.n - 1) / 2 - 1)
            / sqrt(greatest(sh.n * (sh.n - 1) * (2 * sh.n + 5), 1) / 18.0)
        ) as reachable_confidence,
        pr.slope as bytes_per_hour
    from shaped as sh
    left join pairs as pr on sh.sid = pr.sid
    left join ties as t on sh.sid = t.sid
),

-- residuals around the Theil–Sen line
raw_residuals as (
    select
        p.sid,
        p.pos,
        p.bytes - s.bytes_per_hour * (p.hour - first_value(p.hour) over by_sid) as residual
    from tested_points as p
    inner join scored as s on p.sid = s.sid
    window by_sid as (partition by p.sid order by p.pos)
),

-- their mean, taken in the points' order
residual_means as (
    select
        sid,
        list_avg(list(residual order by pos)) as mean_residual
    from raw_residuals
    group by sid
),

-- centred on it
residuals as (
    select
        r.sid,
        r.pos,
        r.residual - m.mean_residual as residual
    from raw_residuals as r
    inner join residual_means as m on r.sid = m.sid
),

-- KPSS (Kwiatkowski et al. 1992) of trend stationarity on those residuals: η = Σ Sₜ² / (n² σ²),
-- Sₜ the partial sums, σ² the residuals' variance (no lag correction). 1% point: 0.216.
-- Summed in the points' order, like the steps' statistics
kpss as (
    select
        sid,
        -- σ² at least a byte²: a perfect line's rounding errors are no residuals
        list_sum(list(partial * partial order by pos))
        / (count(*) * greatest(list_sum(list(residual * residual order by pos)), count(*)))
            as kpss
    from (
        select
            sid,
            pos,
            residual,
            sum(residual) over (partition by sid order by pos) as partial
        from residuals
    ) as summed
    group by sid
),

-- the falls between consecutive medians of 2 × $blocks finer blocks beyond their noise, summed
fine_medians as (
    select
        p.sid,
        floor(p.pos * least(2 * $blocks, s.n) / s.n) as block,
        median(p.bytes) as bytes,
        3 * 1.2533 * 1.4826 * any_value(s.step_mad) / sqrt(s.n / least(2 * $blocks, s.n))
            as allowance
    from tested_points as p
    inner join shaped as s on p.sid = s.sid
    group by p.sid, s.n, block
),

falls as (
    select
        sid,
        list_sum(list(greatest(prev - bytes - allowance, 0) order by block)) as falls
    from (
        select
            sid,
            block,
            bytes,
            allowance,
            lag(bytes) over (partition by sid order by block) as prev
        from fine_medians
    ) as lagged
    group by sid
),

-- growth made by jumps (steps > 5 noise sds, 1.4826 MAD, above the median step), and rises
-- beyond 3 sds squared: growth² / Σ rise² counts the steps of a staircase (two equal: 2.0)
jumps as (
    select
        j.sid,
        coalesce(
            sum(j.bytes - j.prev) filter (
                where j.bytes - j.prev - s.median_step > 5 * 1.4826 * s.step_mad
            ),
            0
        ) as jumps,
        list_sum(
            list(pow(j.bytes - j.prev - s.median_step, 2) order by j.pos) filter (
                where j.bytes - j.prev - s.median_step > 3 * 1.4826 * s.step_mad
            )
        ) as squared_rises
    from (
        select
            sid,
            pos,
            bytes,
            lag(bytes) over (partition by sid order by pos) as prev
        from tested_points
    ) as j
    inner join shaped as s on j.sid = s.sid
    group by j.sid
),

judged as (
    select
        s.*,
        k.kpss,
        f.falls / nullif(s.block_growth, 0) as fall_share,
        jm.jumps / nullif(s.block_growth, 0) as jump_share,
        -- the skewness in units of its sd under symmetric steps, √(6 / steps) (D'Agostino)
        s.step_skew * sqrt(s.steps / 6.0) as step_skew_z,
        -- how far below the window's last block median the rest of the boot falls, beyond
        -- 3 sds of the noise of its block medians, as a share of growth (NULL: nothing later)
        case
            when ll.key is not null
                then greatest(
                    s.end_level - ll.low_bytes
                    - 3 * 1.2533 * 1.4826 * s.step_mad / sqrt(greatest(ll.per_block, 1)),
                    0
                ) / nullif(s.block_growth, 0)
        end as later_fall_share,
        coalesce(least(pow(s.block_growth, 2) / nullif(jm.squared_rises, 0), s.n - 1), s.n - 1)
            as effective_steps,
        case when $by = 'host' then e.host else s.key end as shown_key,
        e.host,
        -- stationary noise around the trend: residuals bounded (KPSS), and steps not
        -- independent: the steps of a trend in stationary noise have a lag-1 correlation of
        -- about -0.5 (sd √(0.5/steps), Bartlett), a random walk's about 0; a walk can look
        -- bounded over one window, rarely both. Independent: above $max_step_lag1 and above
        -- -0.5 at 99% confidence, over 30 steps or more (fewer: KPSS alone decides)
        k.kpss <= $max_kpss
        and not coalesce(
            s.steps >= 30
            and s.step_lag1 > $max_step_lag1
            and (s.step_lag1 + 0.5) * sqrt(s.steps / 0.5) > 2.326,
            false
        ) as stationary,
        case
            when k.kpss <= $max_kpss
                then printf(
                    'KPSS η=%.2f but its steps are independent (lag-1 correlation %.2f; '
                    || 'stationary noise gives about -0.5)',
                    k.kpss, shown(s.step_lag1, 2)
                )
            else printf('KPSS η=%.2f, residuals not bounded', k.kpss)
        end as unbounded,
        case
            when s.shape_verdict is not null then s.shape_verdict
            when s.confidence < $min_confidence then 'no significant trend'
            -- a staircase's Theil–Sen slope is the median of pairs that mostly sit on its flat
            -- runs: its block medians' growth per hour also clears the floor
            when
                s.bytes_per_hour < $min_rate
                and (stationary or s.block_growth / greatest(s.hours, 1e-9) < $min_rate)
                then 'slope below floor'
            when later_fall_share > $max_drawdown then 'given back later in the boot'
            when stationary then 'leak'
            when fall_share > $max_wander_fall then 'drifts (random walk)'
            when effective_steps < 1.5 then 'one or two steps'
            when effective_steps < $min_steps then 'too few steps to tell'
            when s.late_share < $min_late_share then 'stopped growing'
            when
                jump_share < $min_jump_share
                and s.step_lag1 > $max_step_lag1
                and coalesce(step_skew_z, 0) < $min_step_skew_z
                then 'drifts (random walk)'
            else 'leak'
        end as verdict
    from scored as s
    inner join epoch_spans as e on s.epoch = e.epoch
    left join kpss as k on s.sid = k.sid
    left join falls as f on s.sid = f.sid
    left join jumps as jm on s.sid = jm.sid
    -- a series that reaches its epoch's end in the window, in a boot that goes on after it
    left join later_low as ll
        on s.key = ll.key and s.epoch = ll.epoch and s.last_at = e.last_at
    -- the floors on growth, end to end or of the block medians
    where s.last_bytes - s.first_bytes >= s.growth_floor or s.block_growth >= s.growth_floor
),

-- the part after a change point that is a leak replaces its whole series when the whole
-- drifts by its falls, or did not grow past the floors (it fell below where it started); a
-- part that is no leak is not said. A whole that falls back most of its growth is not
-- replaced: a sawtooth's last tooth rises as a leak does
replaced as (
    select
        t.sid,
        t.tail_of
    from judged as t
    left join judged as w on t.tail_of = w.sid
    where
        t.tail_of is not null
        and t.verdict = 'leak'
        and (
            w.sid is null
            or (w.verdict = 'drifts (random walk)' and w.fall_share > $max_wander_fall)
        )
),

-- a window's series whose steps there are too few to tell a staircase from level shifts is
-- said from further back in its epoch when that longer series is a leak: the steps before the
-- window, in the same boot, tell them apart (two equal steps after two others are a
-- staircase's)
rescued as (
    select
        x.sid,
        x.extended_of,
        w.verdict as window_verdict,
        w.effective_steps as window_steps,
        w.n as window_points
    from judged as x
    inner join judged as w on x.extended_of = w.sid
    where
        x.verdict = 'leak'
        and w.verdict in ('one or two steps', 'too few steps to tell')
),

decided as (
    select
        j.*,
        x.window_verdict,
        x.window_steps,
        x.window_points
    from judged as j
    left join replaced as r on j.sid = r.tail_of
    left join replaced as k on j.sid = k.sid
    left join rescued as e on j.sid = e.extended_of
    left join rescued as x on j.sid = x.sid
    where
        (j.tail_of is null and j.extended_of is null and r.sid is null and e.sid is null)
        or k.sid is not null
        or x.sid is not null
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
    kpss,
    effective_steps,
    up_share,
    drawdown_share,
    late_share,
    fall_share,
    jump_share,
    step_lag1,
    step_skew,
    later_fall_share,
    case
        when tail_of is not null
            then printf(
                'since a change point (it falls %.1f MiB at once there, beyond its noise; '
                || 'the whole window is no leak): ',
                fell / 1048576
            )
        when extended_of is not null
            then printf(
                'with the %d points of its boot before the window (the window''s %d alone: %s, '
                || '%.1f effective steps): ',
                n - window_points, window_points, window_verdict, window_steps
            )
        else ''
    end
    || case
        when verdict = 'too few points'
            then printf(
                '%d points: too few to tell (need %d); Mann–Kendall confidence %.0f%%, '
                || 'at most %.1f%% at %d points',
                n, $min_points, 100 * confidence, 100 * reachable_confidence, n
            )
        when verdict = 'growth below floor' then verdict
        when verdict = 'falls as often as it rises'
            then printf(
                'falls as often as it rises: %.0f%% of %d steps non-decreasing',
                100 * up_share, steps
            )
        when verdict = 'falls back (sawtooth or freed)'
            then printf(
                'falls back (sawtooth or freed): gives back %.0f%% of its growth inside the '
                || 'window, beyond its noise (block medians)',
                100 * drawdown_share
            )
        when verdict = 'no significant trend'
            then printf(
                'no significant trend: Mann–Kendall z=%.1f over %d points, confidence %.1f%%',
                shown(mk_z, 1), n, 100 * confidence
            )
        when verdict = 'slope below floor'
            then printf('slope below floor: Theil–Sen %.0f bytes/hour', bytes_per_hour)
        when verdict = 'given back later in the boot'
            then printf(
                'given back later in the boot: after its last point it falls %.0f%% of its '
                || 'growth below its level there, beyond its noise; Mann–Kendall z=%.1f up to '
                || 'there',
                100 * later_fall_share, mk_z
            )
        when verdict = 'drifts (random walk)' and fall_share > $max_wander_fall
            then printf(
                'drifts (random walk): %s, and falls back %.0f%% of its growth beyond its '
                || 'noise; Mann–Kendall z=%.1f',
                unbounded, 100 * fall_share, mk_z
            )
        when verdict = 'drifts (random walk)'
            then printf(
                'drifts (random walk): %s, steps neither jumps (%.0f%% of growth) nor jitter '
                || '(lag-1 correlation %.2f) nor skewed up (skewness %.2f, z=%.1f); '
                || 'Mann–Kendall z=%.1f',
                unbounded, 100 * jump_share, shown(step_lag1, 2), shown(coalesce(step_skew, 0), 2),
                shown(coalesce(step_skew_z, 0), 1), mk_z
            )
        when verdict = 'too few steps to tell'
            then printf(
                'too few steps to tell: %s, growth in %.1f effective steps (a staircase needs '
                || '%.1f); Mann–Kendall z=%.1f',
                unbounded, effective_steps, $min_steps, mk_z
            )
        when verdict = 'stopped growing'
            then printf(
                'stopped growing: %s, and the last half of the window holds %.0f%% of its '
                || 'growth; Mann–Kendall z=%.1f',
                unbounded, 100 * late_share, mk_z
            )
        when verdict = 'one or two steps'
            then printf(
                'one or two steps: %s, growth in %.1f effective steps; Mann–Kendall z=%.1f',
                unbounded, effective_steps, mk_z
            )
        when stationary
            then printf(
                'trend in stationary noise: Mann–Kendall z=%.1f over %d points, KPSS η=%.3f '
                || '(residuals bounded), %s%s',
                mk_z, n, kpss,
                case
                    when step_lag1 is null then 'equal steps'
                    else printf('steps'' lag-1 correlation %.2f', shown(step_lag1, 2))
                end,
                case when hours < $short_hours then printf('; short: %.1f h', hours) else '' end
            )
        else printf(
            'staircase that never falls back: %s, %.1f effective steps (%s), falls %.0f%% of '
            || 'its growth beyond its noise; Mann–Kendall z=%.1f%s',
            unbounded, effective_steps,
            case
                when jump_share >= $min_jump_share
                    then printf('%.0f%% of growth in jumps', 100 * jump_share)
                when step_lag1 <= $max_step_lag1
                    then printf('jitter between them: lag-1 correlation %.2f', shown(step_lag1, 2))
                else printf(
                    'skewed up: skewness %.2f, z=%.1f', shown(step_skew, 2), shown(step_skew_z, 1)
                )
            end,
            100 * fall_share, mk_z,
            case
                when bytes_per_hour < $min_rate
                    then printf(
                        '; Theil–Sen %.0f bytes/hour on its flat runs, its block medians %.0f',
                        bytes_per_hour, block_growth / greatest(hours, 1e-9)
                    )
                else ''
            end
            || case when hours < $short_hours then printf('; short: %.1f h', hours) else '' end
        )
    end as reason
from decided
window by_key as (partition by shown_key)
order by
    verdict = 'leak' desc,
    bytes_per_hour desc nulls last,
    shown_key asc,
    epoch asc,
    first_at asc
