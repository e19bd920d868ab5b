-- The committed snapshots of a store window with their metadata, oldest first: the window
-- is picked by window_snapshots, as in every window analysis (all bounds NULL: the whole store
-- of those hosts; profiling-off snapshots included).
-- $host        VARCHAR      hosts: a regular expression over the whole name, or NULL for all
-- $since_at    TIMESTAMPTZ  window start, or NULL
-- $until_at    TIMESTAMPTZ  window end, or NULL
-- $since_back  DOUBLE       window start in seconds before the newest snapshot, or NULL
-- $until_back  DOUBLE       window end in seconds before the newest snapshot, or NULL
select
    snapshot_id,
    name,
    taken_at,
    boottime_s,
    host,
    boot_id,
    kernel,
    format,
    source,
    origin,
    profiling,
    filter,
    read_s,
    modules,
    labels,
    notes,
    rows,
    total_bytes,
    total_calls,
    skipped_lines,
    schema_version,
    date
from snapshots
where
    snapshot_id in (
        select w.snapshot_id
        from window_snapshots($host, $since_at, $until_at, $since_back, $until_back) as w
    )
order by taken_at, snapshot_id
