-- One snapshot's rows grouped, with each group's share of the total; sorted by bytes, calls
-- (both largest first) or key, ties broken by key. Reads the view snapshot_rows.
-- $by      VARCHAR  tag | function | file | module | dir
-- $depth   INTEGER  directories kept by dir
-- $sort    VARCHAR  bytes | calls | tag
-- $top_n   BIGINT   groups returned, or NULL for all
with

grouped as (
    select
        group_key($by, $depth, file, line, module, function) as key,
        sum(bytes)::bigint as bytes,
        sum(signed_calls(calls))::bigint as calls,
        count(*) as rows
    from snapshot_rows
    group by key
),

total as (
    select sum(bytes)::bigint as bytes from grouped
)

select
    key,
    bytes,
    calls,
    rows,
    case
        when (select bytes from total) > 0
            then round(100.0 * bytes / (select bytes from total), 2)
    end as share_pct,
    count(*) over () as groups
from grouped
order by
    case when $sort = 'calls' then calls when $sort = 'bytes' then bytes end desc nulls last,
    key
limit $top_n
