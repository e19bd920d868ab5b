-- Leak candidates of a store window: per group and epoch, a robust trend verdict
-- (docs/analyses.md): queries/leaks.sql for Spark, stage 6 of 6, with the same statistics,
-- thresholds, verdicts and order. Every series that grew past the floors end to end is
-- returned, with its verdict: 'leak', or why not. Statistics: Mann–Kendall S, variance with
-- ties, z and one-sided confidence; the Theil–Sen slope; and stage 5's shape tests. Leaks
-- first, steepest first, then key, epoch and start. Every epoch is one host's (column host;
-- by host, the key is the host); hosts and leaking_hosts say on how many hosts, and which, the
-- key leaks. Reads leak_series_points (stage 4), leak_shaped (stage 5) and window_snapshots.
-- :min_points       INT            shortest series given a trend test
-- :min_rate         DOUBLE         floor: Theil–Sen slope and end-to-end rate, bytes per hour
-- :min_confidence   DOUBLE         Mann–Kendall confidence that the series increases
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
        end as mk_z
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
        end as confidence
    from (
        select
            *,
            1 / (1 + 0.3275911 * abs(mk_z) / sqrt(2)) as u
        from z_scored
    ) as with_u
),

epoch_hosts as (
    select
        epoch,
        any_value(host) as host
    from window_snapshots
    group by epoch
),

judged as (
    select
        s.*,
        e.host,
        case when :by = 'host' then e.host else s.key end as shown_key,
        case
            when s.shape_verdict is not null then s.shape_verdict
            when s.confidence < :min_confidence then 'no significant trend'
            when s.bytes_per_hour < :min_rate then 'slope below floor'
            else 'leak'
        end as verdict
    from scored as s
    inner join epoch_hosts as e on s.epoch = e.epoch
),

-- on how many hosts, and which, the key leaks (Spark has no distinct window aggregates)
counted as (
    select
        *,
        array_sort(collect_set(case when verdict = 'leak' then host end) over (
            partition by shown_key
        )) as leak_host_set
    from judged
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
    up_share,
    step_share,
    drawdown_share,
    bend_share,
    case
        when verdict = 'too few points'
            then format_string(
                '%d points: too few for a trend test (need %d); Mann–Kendall confidence %.0f%%',
                n, :min_points, bround(100 * confidence, 0)
            )
        when verdict != 'leak' then verdict
        when flat_share >= 0.5
            then format_string(
                'grows in steps, flat between: %.0f%% of %d steps non-decreasing, '
                || 'largest %.0f%% of growth, Mann–Kendall z=%.1f',
                bround(100 * up_share, 0), steps, bround(100 * step_share, 0), mk_z
            )
        else format_string(
            'grows steadily: %.0f%% of %d steps non-decreasing, largest fall %.0f%% of growth, '
            || 'Mann–Kendall z=%.1f',
            bround(100 * up_share, 0), steps, bround(100 * drawdown_share, 0), mk_z
        )
    end as reason
from counted
order by
    verdict = 'leak' desc,
    bytes_per_hour desc nulls last,
    shown_key asc,
    epoch asc,
    first_at asc
