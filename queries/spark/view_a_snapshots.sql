-- Spark SQL view: the store's snapshots, one row each; queries/view_a_snapshots.sql for Spark.
-- Compaction writes a snapshot's row again with a higher generation before it removes the
-- older file, so the newest generation is the row. Partition values are read as text (the
-- runner turns type inference off: a host named 007 stays 007) and date is cast back to a date.
create or replace temporary view snapshots as
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
    `filter`,
    read_s,
    modules,
    labels,
    notes,
    rows,
    total_bytes,
    total_calls,
    skipped_lines,
    schema_version,
    cast(date as date) as date
from (
    select
        *,
        row_number() over (
            partition by host, snapshot_id
            order by generation desc
        ) as newest
    from snapshot_files
) as ranked
where newest = 1
