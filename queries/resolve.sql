-- The stored snapshot a reference names: the oldest for first, else the newest match (a name,
-- an id prefix, or the latest at or before a time). A second row means the match is ambiguous.
-- $kind  VARCHAR      first | latest | name | id | time
-- $ref   VARCHAR      the name or id prefix, or NULL
-- $at    TIMESTAMPTZ  the time, or NULL
-- $host  VARCHAR      hosts: a regular expression over the whole name, or NULL for all
select *
from snapshots
where
    ($host is null or regexp_full_match(host, $host))
    and (
        $kind in ('first', 'latest')
        or ($kind = 'name' and name = $ref)
        or ($kind = 'id' and starts_with(snapshot_id, $ref))
        or ($kind = 'time' and taken_at <= $at)
    )
order by
    case when $kind = 'first' then taken_at end asc nulls last,
    taken_at desc,
    snapshot_id asc
limit 2
