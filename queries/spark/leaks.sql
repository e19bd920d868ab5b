-- Leak candidates of a store window: per group and epoch, a trend verdict that holds on any
-- window (docs/analyses.md): queries/leaks.sql for Spark, stage 7 of 7, with the same
-- statistics, thresholds, verdicts, reasons and order. Every series that grew past the floors
-- is returned, with its verdict: 'leak', or why not. Statistics: Mann–Kendall S, variance with
-- ties, z and one-sided confidence; the Theil–Sen slope; KPSS on the residuals around the
-- Theil–Sen line; the falls of 2 × :blocks block medians beyond their noise; and stage 5's
-- shape tests. Leaks first, steepest first, then key, epoch and start. Every epoch is one
-- host's (column host; by host, the key is the host); hosts and leaking_hosts say on how many
-- hosts, and which, the key leaks; a series' part after a change point (stage 4) is said in
-- its stead when it is a leak and the whole is not. Reads leak_series_points (stage 4),
-- leak_shaped (stage 5), leak_later_low (stage 6) and window_snapshots.
-- :blocks           INT            blocks whose medians smooth a series
-- :min_points       INT            shortest series given a trend test
-- :min_rate         DOUBLE         floor: Theil–Sen slope, bytes per hour
-- :min_confidence   DOUBLE         Mann–Kendall confidence that the series increases
-- :max_drawdown     DOUBLE         fall after the window in the same boot, as a share of growth
-- :max_kpss         DOUBLE         KPSS statistic of residuals that stay bounded
-- :max_wander_fall  DOUBLE         falls of the finer block medians beyond their noise, as a
--                                  share of growth, of a staircase (a random walk falls back)
-- :min_steps        DOUBLE         effective number of steps of a staircase
-- :min_late_share   DOUBLE         ... its last half at least this share of its growth ...
-- :min_jump_share   DOUBLE         ... and at least this share of its growth in jumps, ...
-- :max_step_lag1    DOUBLE         ... or steps correlated at most this with the one before, ...
-- :min_step_skew_z  DOUBLE         ... or steps skewed up: skewness × √(steps / 6) at least this
-- :short_hours      DOUBLE         a leak over fewer hours than this is flagged as short
-- :by               STRING         tag | function | file | module | dir | host
with

tested_points as (
    select p.*
    from leak_series_points as p
    left semi join leak_shaped as s
        on p.sid = s.sid and (s.shape_verdict is null or s.shape_verdict = 'too few points')
),

-- Mann–Kendall S and Theil–Sen slope over all pairs of a series (at most max_points points)
pairs as (
    select
        a.sid,
        cast(sum(sign(b.bytes - a.bytes)) as bigint) as s,
        median(try_divide(b.bytes - a.bytes, b.hour - a.hour)) as slope
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
    ) as tied
    group by sid
),

tested as (
    select
        sh.*,
        pr.sid is not null as paired,
        pr.s as mk_s,
        (sh.n * (sh.n - 1) * (2 * sh.n + 5) - coalesce(t.correction, 0)) / 18.0D as mk_var,
        pr.slope as bytes_per_hour
    from leak_shaped as sh
    left join pairs as pr on sh.sid = pr.sid
    left join ties as t on sh.sid = t.sid
),

z_scored as (
    select
        *,
        case
            when mk_var > 0 then (mk_s - sign(mk_s)) / sqrt(mk_var) else 0
        end as mk_z,
        -- the best a perfect order of n points can reach: S = n(n-1)/2, no ties
        (n * (n - 1) / 2 - 1) / sqrt(greatest(n * (n - 1) * (2 * n + 5), 1) / 18.0D) as best_z
    from tested
),

-- the standard normal distribution function Φ(z) of queries/macro_normal_cdf.sql
-- (Abramowitz & Stegun 7.1.26), on u = 1 / (1 + 0.3275911 |z| / √2)
scored as (
    select
        *,
        case
            when paired
                then 0.5 + 0.5 * sign(mk_z) * (
                    1 - (
                        0.254829592 * u
                        - 0.284496736 * pow(u, 2)
                        + 1.421413741 * pow(u, 3)
                        - 1.453152027 * pow(u, 4)
                        + 1.061405429 * pow(u, 5)
                    ) * exp(-(mk_z * mk_z) / 2)
                )
        end as confidence,
        0.5 + 0.5 * sign(best_z) * (
            1 - (
                0.254829592 * v
                - 0.284496736 * pow(v, 2)
                + 1.421413741 * pow(v, 3)
                - 1.453152027 * pow(v, 4)
                + 1.061405429 * pow(v, 5)
            ) * exp(-(best_z * best_z) / 2)
        ) as reachable_confidence
    from (
        select
            *,
            1 / (1 + 0.3275911 * abs(mk_z) / sqrt(2)) as u,
            1 / (1 + 0.3275911 * abs(best_z) / sqrt(2)) as v
        from z_scored
    ) as with_u
),

-- residuals around the Theil–Sen line, centred, and their partial sums
residuals as (
    select
        sid,
        pos,
        residual - avg(residual) over (partition by sid) as residual
    from (
        select
            p.sid,
            p.pos,
            p.bytes - s.bytes_per_hour * (p.hour - first_value(p.hour) over by_sid) as residual
        from tested_points as p
        inner join scored as s on p.sid = s.sid
        window by_sid as (partition by p.sid order by p.pos)
    ) as raw
),

-- KPSS of trend stationarity on those residuals: η = Σ Sₜ² / (n² σ²) (queries/leaks.sql)
kpss as (
    select
        sid,
        -- σ² at least a byte²: a perfect line's rounding errors are no residuals
        sum(partial * partial) / (count(*) * greatest(sum(residual * residual), count(*)))
            as kpss
    from (
        select
            sid,
            residual,
            sum(residual) over (
                partition by sid order by pos rows between unbounded preceding and current row
            ) as partial
        from residuals
    ) as summed
    group by sid
),

-- the falls between consecutive medians of 2 × :blocks finer blocks, each beyond their noise
fine_medians as (
    select
        p.sid,
        floor(p.pos * least(2 * :blocks, s.n) / s.n) as block,
        median(p.bytes) as bytes,
        3 * 1.2533 * 1.4826 * any_value(s.step_mad) / sqrt(s.n / least(2 * :blocks, s.n))
            as allowance
    from tested_points as p
    inner join leak_shaped as s on p.sid = s.sid
    group by p.sid, s.n, floor(p.pos * least(2 * :blocks, s.n) / s.n)
),

falls as (
    select
        sid,
        sum(greatest(prev - bytes - allowance, 0)) as falls
    from (
        select
            sid,
            bytes,
            allowance,
            lag(bytes) over (partition by sid order by block) as prev
        from fine_medians
    ) as lagged
    group by sid
),

epoch_hosts as (
    select
        epoch,
        any_value(host) as host,
        max(case when counting then taken_at end) as last_at
    from window_snapshots
    group by epoch
),

-- the growth made by jumps (steps more than five noise sds above the median step), and the
-- squared rises beyond three sds, whose effective number growth² / Σ rise² counts steps
jumps as (
    select
        j.sid,
        coalesce(
            sum(
                case
                    when j.bytes - j.prev - s.median_step > 5 * 1.4826 * s.step_mad
                        then j.bytes - j.prev
                end
            ),
            0
        ) as jumps,
        sum(
            case
                when j.bytes - j.prev - s.median_step > 3 * 1.4826 * s.step_mad
                    then pow(j.bytes - j.prev - s.median_step, 2)
            end
        ) as squared_rises
    from (
        select
            sid,
            bytes,
            lag(bytes) over (partition by sid order by pos) as prev
        from tested_points
    ) as j
    inner join leak_shaped as s on j.sid = s.sid
    group by j.sid
),

judged as (
    select
        s.*,
        k.kpss,
        try_divide(f.falls, nullif(s.block_growth, 0)) as fall_share,
        try_divide(jm.jumps, nullif(s.block_growth, 0)) as jump_share,
        -- the skewness in units of its sd under symmetric steps, √(6 / steps) (D'Agostino)
        s.step_skew * sqrt(s.steps / 6.0) as step_skew_z,
        coalesce(
            least(try_divide(pow(s.block_growth, 2), nullif(jm.squared_rises, 0)), s.n - 1),
            s.n - 1
        ) as effective_steps,
        -- how far below the window's last block median the rest of the epoch falls, beyond
        -- 3 sds of the noise of its block medians, as a share of growth (NULL: nothing later)
        case
            when ll.key is not null
                then try_divide(
                    greatest(
                        s.end_level - ll.low_bytes
                        - 3 * 1.2533 * 1.4826 * s.step_mad / sqrt(greatest(ll.per_block, 1)),
                        0
                    ),
                    nullif(s.block_growth, 0)
                )
        end as later_fall_share,
        e.host,
        case when :by = 'host' then e.host else s.key end as shown_key,
        -- stationary noise around the trend: residuals bounded (KPSS), and steps not
        -- independent (queries/leaks.sql explains)
        k.kpss <= :max_kpss
        and not coalesce(
            s.steps >= 30
            and s.step_lag1 > :max_step_lag1
            and (s.step_lag1 + 0.5) * sqrt(s.steps / 0.5) > 2.326,
            false
        ) as stationary,
        case
            when k.kpss <= :max_kpss
                then format_string(
                    'KPSS η=%.2f but its steps are independent (lag-1 correlation %.2f; '
                    || 'stationary noise gives about -0.5)',
                    bround(k.kpss, 2), bround(s.step_lag1, 2)
                )
            else format_string('KPSS η=%.2f, residuals not bounded', bround(k.kpss, 2))
        end as unbounded,
        case
            when s.shape_verdict is not null then s.shape_verdict
            when s.confidence < :min_confidence then 'no significant trend'
            -- a staircase's Theil–Sen slope sits on its flat runs: its block medians' growth
            -- per hour also clears the floor (queries/leaks.sql)
            when
                s.bytes_per_hour < :min_rate
                and (stationary or s.block_growth / greatest(s.hours, 1e-9) < :min_rate)
                then 'slope below floor'
            when
                ll.key is not null
                and try_divide(
                    greatest(
                        s.end_level - ll.low_bytes
                        - 3 * 1.2533 * 1.4826 * s.step_mad / sqrt(greatest(ll.per_block, 1)),
                        0
                    ),
                    nullif(s.block_growth, 0)
                ) > :max_drawdown
                then 'given back later in the boot'
            when stationary then 'leak'
            when try_divide(f.falls, nullif(s.block_growth, 0)) > :max_wander_fall
                then 'drifts (random walk)'
            when
                coalesce(
                    least(try_divide(pow(s.block_growth, 2), nullif(jm.squared_rises, 0)), s.n - 1),
                    s.n - 1
                ) < 1.5
                then 'one or two steps'
            when
                coalesce(
                    least(try_divide(pow(s.block_growth, 2), nullif(jm.squared_rises, 0)), s.n - 1),
                    s.n - 1
                ) < :min_steps
                then 'too few steps to tell'
            when s.late_share < :min_late_share then 'stopped growing'
            when
                try_divide(jm.jumps, nullif(s.block_growth, 0)) < :min_jump_share
                and s.step_lag1 > :max_step_lag1
                and coalesce(s.step_skew * sqrt(s.steps / 6.0), 0) < :min_step_skew_z
                then 'drifts (random walk)'
            else 'leak'
        end as verdict
    from scored as s
    inner join epoch_hosts as e on s.epoch = e.epoch
    left join kpss as k on s.sid = k.sid
    left join falls as f on s.sid = f.sid
    left join jumps as jm on s.sid = jm.sid
    -- a series that reaches its epoch's end in the window, in a boot that goes on after it
    left join leak_later_low as ll
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
            or (w.verdict = 'drifts (random walk)' and w.fall_share > :max_wander_fall)
        )
),

-- a window's series whose steps there are too few to tell is said from further back in its
-- epoch when that longer series is a leak (queries/leaks.sql: rescued)
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
),

-- on how many hosts, and which, the key leaks (Spark has no distinct window aggregates)
counted as (
    select
        *,
        array_sort(collect_set(case when verdict = 'leak' then host end) over (
            partition by shown_key
        )) as leak_host_set
    from decided
)

-- printf rounds a tie to even, as DuckDB's printf does, where Java's would round it up
select
    shown_key as key,
    host,
    size(leak_host_set) as hosts,
    case when size(leak_host_set) > 0 then leak_host_set end as leaking_hosts,
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
            then format_string(
                'since a change point (it falls %.1f MiB at once there, beyond its noise; '
                || 'the whole window is no leak): ',
                bround(fell / 1048576, 1)
            )
        when extended_of is not null
            then format_string(
                'with the %d points of its boot before the window (the window''s %d alone: %s, '
                || '%.1f effective steps): ',
                n - window_points, window_points, window_verdict, bround(window_steps, 1)
            )
        else ''
    end
    || case
        when verdict = 'too few points'
            then format_string(
                '%d points: too few to tell (need %d); Mann–Kendall confidence %.0f%%, '
                || 'at most %.1f%% at %d points',
                n, :min_points, bround(100 * confidence, 0), bround(100 * reachable_confidence, 1),
                n
            )
        when verdict = 'growth below floor' then verdict
        when verdict = 'falls as often as it rises'
            then format_string(
                'falls as often as it rises: %.0f%% of %d steps non-decreasing',
                bround(100 * up_share, 0), steps
            )
        when verdict = 'falls back (sawtooth or freed)'
            then format_string(
                'falls back (sawtooth or freed): gives back %.0f%% of its growth inside the '
                || 'window, beyond its noise (block medians)',
                bround(100 * drawdown_share, 0)
            )
        when verdict = 'no significant trend'
            then format_string(
                'no significant trend: Mann–Kendall z=%.1f over %d points, confidence %.1f%%',
                bround(mk_z, 1), n, bround(100 * confidence, 1)
            )
        when verdict = 'slope below floor'
            then format_string(
                'slope below floor: Theil–Sen %.0f bytes/hour', bround(bytes_per_hour, 0)
            )
        when verdict = 'given back later in the boot'
            then format_string(
                'given back later in the boot: after its last point it falls %.0f%% of its '
                || 'growth below its level there, beyond its noise; Mann–Kendall z=%.1f up to '
                || 'there',
                bround(100 * later_fall_share, 0), bround(mk_z, 1)
            )
        when verdict = 'drifts (random walk)' and fall_share > :max_wander_fall
            then format_string(
                'drifts (random walk): %s, and falls back %.0f%% of its growth beyond its '
                || 'noise; Mann–Kendall z=%.1f',
                unbounded, bround(100 * fall_share, 0), bround(mk_z, 1)
            )
        when verdict = 'drifts (random walk)'
            then format_string(
                'drifts (random walk): %s, steps neither jumps (%.0f%% of growth) nor jitter '
                || '(lag-1 correlation %.2f) nor skewed up (skewness %.2f, z=%.1f); '
                || 'Mann–Kendall z=%.1f',
                unbounded, bround(100 * jump_share, 0), bround(step_lag1, 2),
                bround(coalesce(step_skew, 0), 2), bround(coalesce(step_skew_z, 0), 1),
                bround(mk_z, 1)
            )
        when verdict = 'too few steps to tell'
            then format_string(
                'too few steps to tell: %s, growth in %.1f effective steps (a staircase needs '
                || '%.1f); Mann–Kendall z=%.1f',
                unbounded, bround(effective_steps, 1), bround(:min_steps, 1), bround(mk_z, 1)
            )
        when verdict = 'stopped growing'
            then format_string(
                'stopped growing: %s, and the last half of the window holds %.0f%% of its '
                || 'growth; Mann–Kendall z=%.1f',
                unbounded, bround(100 * late_share, 0), bround(mk_z, 1)
            )
        when verdict = 'one or two steps'
            then format_string(
                'one or two steps: %s, growth in %.1f effective steps; Mann–Kendall z=%.1f',
                unbounded, bround(effective_steps, 1), bround(mk_z, 1)
            )
        when stationary
            then format_string(
                'trend in stationary noise: Mann–Kendall z=%.1f over %d points, KPSS η=%.3f '
                || '(residuals bounded), %s%s',
                bround(mk_z, 1), n, bround(kpss, 3),
                case
                    when step_lag1 is null then 'equal steps'
                    else format_string('steps'' lag-1 correlation %.2f', bround(step_lag1, 2))
                end,
                case
                    when hours < :short_hours
                        then format_string('; short: %.1f h', bround(hours, 1))
                    else ''
                end
            )
        else format_string(
            'staircase that never falls back: %s, %.1f effective steps (%s), falls %.0f%% of '
            || 'its growth beyond its noise; Mann–Kendall z=%.1f%s',
            unbounded, bround(effective_steps, 1),
            case
                when jump_share >= :min_jump_share
                    then format_string('%.0f%% of growth in jumps', bround(100 * jump_share, 0))
                when step_lag1 <= :max_step_lag1
                    then format_string(
                        'jitter between them: lag-1 correlation %.2f', bround(step_lag1, 2)
                    )
                else format_string(
                    'skewed up: skewness %.2f, z=%.1f', bround(step_skew, 2), bround(step_skew_z, 1)
                )
            end,
            bround(100 * fall_share, 0),
            bround(mk_z, 1),
            case
                when bytes_per_hour < :min_rate
                    then format_string(
                        '; Theil–Sen %.0f bytes/hour on its flat runs, its block medians %.0f',
                        bround(bytes_per_hour, 0), bround(block_growth / greatest(hours, 1e-9), 0)
                    )
                else ''
            end
            || case
                when hours < :short_hours then format_string('; short: %.1f h', bround(hours, 1))
                else ''
            end
        )
    end as reason
from counted
order by
    verdict = 'leak' desc,
    bytes_per_hour desc nulls last,
    shown_key asc,
    epoch asc,
    first_at asc
