-- Per group, live bytes and calls in two snapshots, their change, and whether the group is
-- new, gone or unloaded; largest |Δbytes| first, ties broken by key. Duplicate keys are summed.
-- Reads the views before_rows and after_rows (one snapshot's rows each, tag filters applied).
-- $by             VARCHAR    tag | function | file | module | dir
-- $depth          INTEGER    directories kept by dir
-- $min_delta      BIGINT     smallest |Δbytes| shown
-- $min_size       BIGINT     keep a group when either side has at least this many bytes, or NULL
-- $max_size       BIGINT     keep a group when either side has at most this many bytes, or NULL
-- $nonzero        BOOLEAN    keep a group only when either side's bytes are non-zero
-- $after_modules  VARCHAR[]  modules loaded at the later snapshot, or NULL when unknown
-- $hours          DOUBLE     hours between the snapshots when at least one, else NULL
-- $top_n          BIGINT     groups returned, or NULL for all
with

before_groups as (
    select
        group_key($by, $depth, file, line, module, function) as key,
        sum(bytes)::bigint as bytes,
        sum(signed_calls(calls))::bigint as calls,
        bool_and(module is not null and not list_contains($after_modules, module)) as unloaded
    from before_rows
    group by key
),

after_groups as (
    select
        group_key($by, $depth, file, line, module, function) as key,
        sum(bytes)::bigint as bytes,
        sum(signed_calls(calls))::bigint as calls
    from after_rows
    group by key
),

after_total as (
    select sum(bytes)::bigint as bytes from after_rows
),

joined as (
    select
        coalesce(a.key, b.key) as key,
        case
            when b.key is null then 'new'
            when a.key is null and b.unloaded then 'unloaded'
            when a.key is null then 'gone'
            else ''
        end as status,
        coalesce(b.bytes, 0) as bytes_before,
        coalesce(a.bytes, 0) as bytes_after,
        coalesce(a.bytes, 0) - coalesce(b.bytes, 0) as delta_bytes,
        coalesce(b.calls, 0) as calls_before,
        coalesce(a.calls, 0) as calls_after,
        coalesce(a.calls, 0) - coalesce(b.calls, 0) as delta_calls
    from after_groups as a
    full outer join before_groups as b on a.key = b.key
),

changed as (
    select
        key,
        status,
        bytes_before,
        bytes_after,
        delta_bytes,
        calls_before,
        calls_after,
        delta_calls,
        case
            when bytes_before != 0 then round(100.0 * delta_bytes / abs(bytes_before), 1)
        end as delta_pct,
        case
            when (select bytes from after_total) > 0
                then round(100.0 * bytes_after / (select bytes from after_total), 2)
        end as share_pct,
        round(delta_bytes / $hours) as bytes_per_hour
    from joined
    where
        (delta_bytes != 0 or delta_calls != 0)
        and abs(delta_bytes) >= $min_delta
        and ($min_size is null or greatest(bytes_before, bytes_after) >= $min_size)
        and ($max_size is null or least(bytes_before, bytes_after) <= $max_size)
        and (not $nonzero or bytes_before != 0 or bytes_after != 0)
)

select
    key,
    status,
    bytes_before,
    bytes_after,
    delta_bytes,
    calls_before,
    calls_after,
    delta_calls,
    delta_pct,
    share_pct,
    bytes_per_hour,
    count(*) over () as changed_groups
from changed
order by abs(delta_bytes) desc, key
limit $top_n
