-- The snapshots of a store window whose samples disagree with their own row: fewer or more
-- rows, other live bytes or calls than the row says (a damaged samples file, or a missing one).
-- A window analysis runs this over the snapshots it reads, before it trusts them: one more
-- pass over those samples (docs/storage.md, "Damaged files").
-- $host        VARCHAR      hosts: a regular expression over the whole name, or NULL for all
-- $since_at    TIMESTAMPTZ  window start, or NULL
-- $until_at    TIMESTAMPTZ  window end, or NULL
-- $since_back  DOUBLE       window start in seconds before the newest snapshot, or NULL
-- $until_back  DOUBLE       window end in seconds before the newest snapshot, or NULL
-- $max_points  INTEGER      snapshots read per epoch, or NULL for every one of the window
with

picked as (
    select
        snapshot_id,
        host,
        date
    from
        window_snapshots_picked(
            $host, $since_at, $until_at, $since_back, $until_back, $max_points
        )
),

found as (
    select
        s.host,
        s.snapshot_id,
        count(*) as rows,
        sum(s.bytes) as total_bytes,
        sum(signed_calls(s.calls)) as total_calls
    from samples as s
    inner join picked as p on s.snapshot_id = p.snapshot_id and s.host = p.host
    group by s.host, s.snapshot_id
)

select
    p.host,
    p.snapshot_id,
    p.date,
    n.rows as expected_rows,
    coalesce(f.rows, 0) as found_rows,
    n.total_bytes as expected_bytes,
    coalesce(f.total_bytes, 0) as found_bytes
from picked as p
inner join snapshots as n on p.host = n.host and p.snapshot_id = n.snapshot_id
left join found as f on p.host = f.host and p.snapshot_id = f.snapshot_id
where
    coalesce(f.rows, 0) != n.rows
    or coalesce(f.total_bytes, 0) != n.total_bytes
    or coalesce(f.total_calls, 0) != n.total_calls
order by p.host, p.snapshot_id
