-- Per group, live bytes and calls in two snapshots, their change, and whether the group is
-- new, gone or unloaded; largest |Δbytes| first, ties broken by key: queries/diff.sql for
-- Spark. Duplicate keys are summed. Reads the views before_rows and after_rows (one snapshot's
-- rows each, tag filters applied). Spark SQL has no macros: group_key, call_site, dir_prefix
-- and signed_calls are written out once, over both sides.
-- :by             STRING         tag | function | file | module | dir
-- :depth          INT            directories kept by dir
-- :min_delta      BIGINT         smallest |Δbytes| shown
-- :min_size       BIGINT         keep a group when either side has at least this many bytes
-- :max_size       BIGINT         keep a group when either side has at most this many bytes
-- :nonzero        BOOLEAN        keep a group only when either side's bytes are non-zero
-- :after_modules  ARRAY<STRING>  modules loaded at the later snapshot, or NULL when unknown
-- :hours          DOUBLE         hours between the snapshots when at least one, else NULL
-- :top_n          BIGINT         groups returned, or NULL for all
with

both_rows as (
    select
        false as is_after,
        file,
        line,
        module,
        function,
        bytes,
        calls
    from before_rows
    union all
    select
        true as is_after,
        file,
        line,
        module,
        function,
        bytes,
        calls
    from after_rows
),

keyed as (
    select
        is_after,
        module,
        bytes,
        -- signed_calls: a u64 counter (a decimal(20,0) in Spark) read as the signed number
        calls - case when calls >= 9223372036854775808 then 18446744073709551616 else 0 end
            as calls,
        case :by
            when 'function' then function
            when 'file' then file
            when 'module' then coalesce(module, '(built-in)')
            when 'dir'
                then
                    array_join(
                        slice(
                            split(regexp_replace(file, '^([.]/)+', ''), '/'),
                            1,
                            least(
                                :depth, size(split(regexp_replace(file, '^([.]/)+', ''), '/')) - 1
                            )
                        ),
                        '/'
                    )
            else concat(
                file, ':', cast(line as string), coalesce(concat(' [', module, ']'), ''),
                ' func:', function
            )
        end as key
    from both_rows
),

before_groups as (
    select
        key,
        cast(sum(bytes) as bigint) as bytes,
        cast(sum(calls) as bigint) as calls,
        bool_and(
            module is not null
            and not array_contains(cast(:after_modules as array<string>), module)
        ) as unloaded
    from keyed
    where not is_after
    group by key
),

after_groups as (
    select
        key,
        cast(sum(bytes) as bigint) as bytes,
        cast(sum(calls) as bigint) as calls
    from keyed
    where is_after
    group by key
),

after_total as (
    select cast(sum(bytes) as bigint) as bytes from after_rows
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
            when bytes_before != 0
                then round(100 * cast(delta_bytes as double) / abs(bytes_before), 1)
        end as delta_pct,
        case
            when (select bytes from after_total) > 0
                then round(
                    100 * cast(bytes_after as double) / (select bytes from after_total), 2
                )
        end as share_pct,
        round(delta_bytes / cast(:hours as double)) as bytes_per_hour
    from joined
    where
        (delta_bytes != 0 or delta_calls != 0)
        and abs(delta_bytes) >= :min_delta
        and (:min_size is null or greatest(bytes_before, bytes_after) >= :min_size)
        and (:max_size is null or least(bytes_before, bytes_after) <= :max_size)
        and (not :nonzero or bytes_before != 0 or bytes_after != 0)
),

ranked as (
    select
        *,
        count(*) over () as changed_groups,
        row_number() over (order by abs(delta_bytes) desc, key asc) as position
    from changed
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
    changed_groups
from ranked
where :top_n is null or position <= :top_n
order by position
