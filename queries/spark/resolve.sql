-- The stored snapshot a reference names: the oldest for first, else the newest match (a name,
-- an id prefix, or the latest at or before a time); queries/resolve.sql for Spark. A second
-- row means the match is ambiguous.
-- :kind  STRING     first | latest | name | id | time
-- :ref   STRING     the name or id prefix, or NULL
-- :at    TIMESTAMP  the time, or NULL
select
    snapshot_id,
    name,
    taken_at,
    host,
    boot_id,
    kernel,
    modules,
    date
from snapshots
where
    :kind in ('first', 'latest')
    or (:kind = 'name' and name = :ref)
    or (:kind = 'id' and startswith(snapshot_id, :ref))
    or (:kind = 'time' and taken_at <= :at)
order by
    case when :kind = 'first' then taken_at end asc nulls last,
    taken_at desc,
    snapshot_id asc
limit 2
