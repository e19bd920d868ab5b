-- The snapshots a window analysis read into window_rows (window_rows.sql) whose samples there
-- disagree with their own row: fewer or more rows, other live bytes or calls than the row says
-- (a damaged samples file, or a missing one). damaged.sql checks the same from the files, for
-- the analyses that read every snapshot of a window; here the rows already read are counted.
-- $host        VARCHAR      hosts: a regular expression over the whole name, or NULL for all
-- $since_at    TIMESTAMPTZ  window start, or NULL
-- $until_at    TIMESTAMPTZ  window end, or NULL
-- $since_back  DOUBLE       window start in seconds before the newest snapshot, or NULL
-- $until_back  DOUBLE       window end in seconds before the newest snapshot, or NULL
-- $max_points  INTEGER      snapshots read per epoch, as window_rows was made with
with

-- each snapshot's newest row: the one whose samples window_rows holds of a picked one (the
-- newest first, then the join: a semi join under the qualify once gave other hosts' rows)
live as (
    select
        host::varchar as host,
        snapshot_id,
        date,
        rows,
        total_bytes,
        total_calls
    from snapshot_files
    qualify
        row_number() over (partition by host, snapshot_id order by generation desc) = 1
),

picked as (
    select l.*
    from live as l
    inner join
        window_snapshots_picked(
            $host, $since_at, $until_at, $since_back, $until_back, $max_points
        ) as w
        on l.host = w.host and l.snapshot_id = w.snapshot_id
),

found as (
    select
        host,
        snapshot_id,
        count(*) as rows,
        sum(bytes) as total_bytes,
        sum(signed_calls(calls)) as total_calls
    from window_rows
    group by all
),

compared as (
    select
        p.host,
        p.snapshot_id,
        p.date,
        p.rows as expected_rows,
        p.total_bytes as expected_bytes,
        p.total_calls as expected_calls,
        coalesce(f.rows, 0) as found_rows,
        coalesce(f.total_bytes, 0) as found_bytes,
        coalesce(f.total_calls, 0) as found_calls
    from picked as p
    left join found as f on p.host = f.host and p.snapshot_id = f.snapshot_id
)

select
    host,
    snapshot_id,
    date,
    expected_rows,
    found_rows,
    expected_bytes,
    found_bytes
from compared
where
    found_rows != expected_rows
    or found_bytes != expected_bytes
    or found_calls != expected_calls
order by host, snapshot_id
