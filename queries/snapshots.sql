-- Every committed snapshot in the store with its metadata, oldest first.
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
order by taken_at, snapshot_id
