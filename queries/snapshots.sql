-- Every committed snapshot in the store (of some hosts) with its metadata, oldest first.
-- $host  VARCHAR  hosts: a regular expression over the whole name, or NULL for all
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
where $host is null or regexp_full_match(host, $host)
order by taken_at, snapshot_id
