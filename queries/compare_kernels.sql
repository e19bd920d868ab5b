-- Per group, live bytes on the hosts of kernel A against those of kernel B: the medians, and a
-- Mann-Whitney U test over hosts (ranks of the pooled hosts' bytes, ties given their mean
-- rank; normal approximation with tie and continuity corrections): U of B, its z, and the
-- rank-biserial effect (+1: every B host above every A host). A host without a group counts
-- 0 bytes for it; groups with 0 bytes on every host are left out. analysis.compare_kernels
-- turns z into p- and q-values (erfc is exact there; DuckDB has none).
-- Reads the store's samples of the snapshots in kernel_snapshots (snapshot_id, host, side:
-- 'a' or 'b'), each row counted as the call site site_map gives its side and tag (side,
-- tag_id, file, line, module, function, status: matched, moved, new or gone, or NULL when not
-- grouped by call site); both are registered from Python.
-- $by     VARCHAR  tag | function | file | module | dir
-- $depth  INTEGER  directories kept by dir
with

kernel_rows as (
    select
        k.side,
        s.host,
        m.file,
        m.line,
        m.module,
        m.function,
        s.bytes,
        m.status
    from samples as s
    inner join kernel_snapshots as k on s.snapshot_id = k.snapshot_id and s.host = k.host
    inner join site_map as m on k.side = m.side and s.tag_id = m.tag_id
),

per_host as (
    select
        side,
        host,
        group_key($by, $depth, file, line, module, function) as key,
        sum(bytes)::bigint as bytes
    from kernel_rows
    group by side, host, key
),

hosts as (
    select distinct
        side,
        host
    from kernel_rows
),

sides as (
    select
        count(*) filter (where side = 'a') as n_a,
        count(*) filter (where side = 'b') as n_b
    from hosts
),

present as (
    select
        group_key($by, $depth, file, line, module, function) as key,
        bool_or(side = 'a') as in_a,
        bool_or(side = 'b') as in_b,
        min(status) as status
    from kernel_rows
    group by key
),

filled as (
    select
        p.key,
        h.side,
        h.host,
        coalesce(b.bytes, 0) as bytes
    from present as p
    cross join hosts as h
    left join per_host as b on p.key = b.key and h.side = b.side and h.host = b.host
),

ranked as (
    select
        key,
        side,
        bytes,
        rank() over (partition by key order by bytes)
        + (count(*) over (partition by key, bytes) - 1) / 2.0 as mean_rank
    from filled
),

tie_groups as (
    select
        key,
        count(*)::double as t
    from filled
    group by key, bytes
),

ties as (
    select
        key,
        sum(t * t * t - t) as tie_sum
    from tie_groups
    group by key
),

tested as (
    select
        r.key,
        median(r.bytes) filter (where r.side = 'a') as median_a,
        median(r.bytes) filter (where r.side = 'b') as median_b,
        sum(r.mean_rank) filter (where r.side = 'b') - s.n_b * (s.n_b + 1) / 2.0 as u_b,
        s.n_a * s.n_b / 2.0 as u_mean,
        s.n_a * s.n_b / 12.0 * (
            (s.n_a + s.n_b + 1)
            - t.tie_sum / ((s.n_a + s.n_b) * (s.n_a + s.n_b - 1.0))
        ) as u_var
    from ranked as r
    cross join sides as s
    inner join ties as t on r.key = t.key
    group by r.key, s.n_a, s.n_b, t.tie_sum
),

scored as (
    select
        t.key,
        case
            when p.in_a and p.in_b then coalesce(p.status, '')
            when p.in_b then 'new'
            else 'gone'
        end as status,
        t.median_a,
        t.median_b,
        t.median_b - t.median_a as delta_bytes,
        t.u_b,
        round(t.u_b / t.u_mean - 1, 4) as effect,
        case
            when t.u_var > 0
                then (t.u_b - t.u_mean - sign(t.u_b - t.u_mean) * 0.5) / sqrt(t.u_var)
        end as z
    from tested as t
    inner join present as p on t.key = p.key
)

select
    s.key,
    s.status,
    (select n_a from sides) as hosts_a,
    (select n_b from sides) as hosts_b,
    s.median_a,
    s.median_b,
    s.delta_bytes,
    s.u_b,
    s.effect,
    s.z
from scored as s
where s.z is not null or s.median_a != 0 or s.median_b != 0
order by s.key
