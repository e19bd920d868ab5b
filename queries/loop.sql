-- Per group, the judgement of one loop's runs (allocsnap loop) on the run axis: the loop's
-- snapshots are run 0 (the baseline, after the warm-up) to run N, found by their labels
-- loop=<id> and run=<k>. Bytes per run is the Theil–Sen slope of bytes over the run number,
-- with Sen's 95% interval; the confidence is Mann–Kendall's that the series increases. Shape
-- tests keep out a cache that filled in the first runs and then stayed flat (its last half
-- holds little of its growth), memory given back (falls from its peak), memory that moves
-- between the call sites of one function (by tag: the function's sites together do not grow),
-- and series that grew in few runs. A group whose rows are missing from some of the loop's
-- snapshots (a module loaded or unloaded: a vanished row is not a free) is not judged. Only
-- series whose range reaches the floor are returned: leaks first, most bytes per run first,
-- then key.
-- $loop            VARCHAR  the loop's id (the label loop=<id> of its snapshots)
-- $by              VARCHAR  tag | function | file | module | dir
-- $depth           INTEGER  directories kept by dir
-- $min_size        BIGINT   keep a series whose largest value is at least this, or NULL
-- $max_size        BIGINT   keep a series whose smallest value is at most this, or NULL
-- $nonzero         BOOLEAN  keep only series that are not all zero
-- $min_runs        INTEGER  fewest runs (after the baseline) a verdict needs
-- $min_per_run     BIGINT   floor: Theil–Sen bytes per run
-- $min_confidence  DOUBLE   Mann–Kendall confidence that the series increases
-- $min_grew_share  DOUBLE   share of runs after which the series was higher than before
-- $min_late_share  DOUBLE   growth per run over the last half, as a share of the slope
-- $max_drawdown    DOUBLE   largest fall from a peak, as a share of the growth
with

runs as (
    select
        snapshot_id,
        taken_at,
        try_cast(map_extract_value(labels, 'run') as integer) as run
    from snapshots
    where map_extract_value(labels, 'loop') = $loop
),

loop_size as (
    select count(*) as snapshots from runs
),

keys as (
    select
        tag_id,
        group_key($by, $depth, file, line, module, function) as key,
        -- a call site's family: the other sites of its function (by tag only)
        case
            when $by = 'tag'
                then function || ' (' || file || coalesce(' [' || module || ']', '') || ')'
        end as family
    from tags
),

tag_points as (
    select
        k.key,
        k.family,
        r.run,
        sum(s.bytes)::bigint as bytes
    from samples as s
    inner join runs as r on s.snapshot_id = r.snapshot_id and s.taken_at = r.taken_at
    inner join keys as k on s.tag_id = k.tag_id
    group by k.key, k.family, r.run
),

points as (
    select
        key,
        run,
        bytes
    from tag_points
),

-- the range floor first: a series that never moved by a run's floor cannot leak one per run
series as (
    select
        p.key,
        count(*) as n,
        any_value(l.snapshots) as snapshots,
        min(p.run) as first_run,
        max(p.run) as last_run,
        arg_min(p.bytes, p.run) as first_bytes,
        arg_max(p.bytes, p.run) as last_bytes,
        min(p.bytes) as min_bytes,
        max(p.bytes) as max_bytes
    from points as p, loop_size as l
    group by p.key
    having
        max(p.bytes) - min(p.bytes) >= $min_per_run
        and ($min_size is null or max(p.bytes) >= $min_size)
        and ($max_size is null or min(p.bytes) <= $max_size)
        and (not $nonzero or max(p.bytes) != 0 or min(p.bytes) != 0)
),

series_points as (
    select p.*
    from points as p
    semi join series as s on p.key = s.key
),

stepped as (
    select
        key,
        run,
        bytes,
        bytes - lag(bytes) over (partition by key order by run) as step,
        max(bytes) over (
            partition by key order by run rows between unbounded preceding and current row
        ) as peak
    from series_points
),

steps as (
    select
        key,
        avg((step > 0)::int) filter (where step is not null) as grew_share,
        max(peak - bytes) as drawdown
    from stepped
    group by key
),

-- the last half of the runs: from the middle run to the last
late as (
    select
        s.key,
        (s.last_bytes - arg_min(p.bytes, p.run)) / nullif(s.last_run - min(p.run), 0)
            as late_per_run
    from series_points as p
    inner join series as s on p.key = s.key
    where p.run >= s.first_run + (s.last_run - s.first_run) // 2
    group by s.key, s.last_bytes, s.last_run
),

-- Mann–Kendall S and every pairwise slope (Theil–Sen: their median)
pairs as (
    select
        a.key,
        sum(sign(b.bytes - a.bytes))::bigint as mk_s,
        median((b.bytes - a.bytes) / (b.run - a.run)) as bytes_per_run,
        list_sort(list((b.bytes - a.bytes) / (b.run - a.run))) as slopes
    from series_points as a
    inner join series_points as b on a.key = b.key and a.run < b.run
    group by a.key
),

ties as (
    select
        key,
        sum(t * (t - 1) * (2 * t + 5)) as correction
    from (
        select
            key,
            count(*) as t
        from series_points
        group by key, bytes
        having count(*) > 1
    ) as tied
    group by key
),

-- memory that moves between call sites of one function (a page copied on write is counted at
-- another line of the page-fault path than the page it replaces) is no leak of either site:
-- the family's own Theil–Sen slope, where the family has several sites
families as (
    select distinct
        t.key,
        t.family
    from tag_points as t
    semi join series as s on t.key = s.key
    where t.family is not null
),

family_points as (
    select
        t.family,
        t.run,
        sum(t.bytes) as bytes,
        count(distinct t.key) as sites
    from tag_points as t
    semi join families as f on t.family = f.family
    group by t.family, t.run
),

family_slopes as (
    select
        a.family,
        median((b.bytes - a.bytes) / (b.run - a.run)) as family_per_run,
        max(a.sites) as sites
    from family_points as a
    inner join family_points as b on a.family = b.family and a.run < b.run
    group by a.family
    having max(a.sites) > 1
),

scored as (
    select
        s.*,
        fs.family_per_run,
        f.family,
        st.grew_share,
        pr.bytes_per_run,
        pr.mk_s,
        s.n - 1 as runs,
        s.last_bytes - s.first_bytes as total_bytes,
        lt.late_per_run / nullif(pr.bytes_per_run, 0) as late_share,
        st.drawdown / nullif(greatest(s.max_bytes - s.first_bytes, 0), 0) as drawdown_share,
        (s.n * (s.n - 1) * (2 * s.n + 5) - coalesce(t.correction, 0)) / 18.0 as mk_var,
        case
            when mk_var > 0 then (pr.mk_s - sign(pr.mk_s)) / sqrt(mk_var) else 0
        end as mk_z,
        normal_cdf(mk_z) as confidence,
        -- Sen (1968): the slopes ranked (N' - C) / 2 and (N' + C) / 2 + 1, C = 1.96 sqrt(var S)
        len(pr.slopes) as n_slopes,
        1.96 * sqrt(mk_var) as c_alpha,
        pr.slopes[
            greatest(least(round((n_slopes - c_alpha) / 2)::bigint, n_slopes), 1)
        ] as per_run_low,
        pr.slopes[
            greatest(least(round((n_slopes + c_alpha) / 2)::bigint + 1, n_slopes), 1)
        ] as per_run_high
    from series as s
    left join steps as st on s.key = st.key
    left join pairs as pr on s.key = pr.key
    left join late as lt on s.key = lt.key
    left join ties as t on s.key = t.key
    left join families as f on s.key = f.key
    left join family_slopes as fs on f.family = fs.family
),

judged as (
    select
        *,
        case
            when n < snapshots then 'not in every snapshot'
            when runs < $min_runs then 'too few runs'
            when bytes_per_run < $min_per_run then 'below the floor per run'
            when confidence < $min_confidence then 'no significant trend'
            when family_per_run < $min_per_run then 'moves between call sites'
            when late_share < $min_late_share then 'stopped growing'
            when drawdown_share > $max_drawdown then 'falls back'
            when grew_share < $min_grew_share then 'grew in few runs'
            else 'leak'
        end as verdict
    from scored
)

select
    key,
    verdict,
    bytes_per_run,
    per_run_low,
    per_run_high,
    confidence,
    grew_share,
    total_bytes,
    first_bytes,
    last_bytes,
    runs,
    late_share,
    drawdown_share,
    mk_s,
    mk_z,
    case verdict
        when 'not in every snapshot'
            then printf(
                'in %d of the loop''s %d snapshots: a module loaded or unloaded (a vanished row '
                || 'is not a free)',
                n, snapshots
            )
        when 'too few runs'
            then printf('%d runs: too few to tell (need %d)', runs, $min_runs)
        when 'below the floor per run'
            then printf(
                'no growth per run (allocates and frees): Theil–Sen %.0f bytes per run, range '
                || '%d bytes',
                bytes_per_run, max_bytes - min_bytes
            )
        when 'no significant trend'
            then printf(
                'no significant trend: Mann–Kendall z=%.1f over %d runs, confidence %.1f%%',
                mk_z, runs, 100 * confidence
            )
        when 'moves between call sites'
            then printf(
                'moves between the call sites of %s: together they keep %.0f bytes per run',
                family, family_per_run
            )
        when 'grew in few runs'
            then printf(
                'grew in few runs: %.0f%% of %d runs ended higher', 100 * grew_share, runs
            )
        when 'stopped growing'
            then printf(
                'filled, then stayed flat (a cache): the last half of the runs grew %.0f%% of '
                || 'the slope',
                100 * greatest(late_share, 0)
            )
        when 'falls back'
            then printf(
                'falls back: gave back %.0f%% of its growth after a peak', 100 * drawdown_share
            )
        else printf(
            'grows every run: %.0f%% of %d runs ended higher, Mann–Kendall z=%.1f',
            100 * grew_share, runs, mk_z
        )
    end as reason
from judged
order by
    verdict = 'leak' desc,
    bytes_per_run desc nulls last,
    key asc
