-- Spark SQL view: the samples of committed snapshots only; queries/view_samples.sql for Spark.
-- Rows are read from the generation that the snapshot's newest row names (a snapshot is
-- committed once its row is in snapshots), so a reader never sees a snapshot whose write was
-- interrupted, nor one twice while compaction replaces files. Compacted files leave
-- snapshot_id NULL where the host and taken_at name one snapshot of that generation; the join
-- names it again. They also leave calls NULL where it is bytes / unit_bytes (a call site that
-- allocates one size): the division, exact there, puts it back (docs/storage.md, schema 3).
create or replace temporary view samples as
with

live as (
    select
        host,
        snapshot_id,
        taken_at,
        max(generation) as generation
    from snapshot_files
    group by host, snapshot_id, taken_at
)

select
    live.snapshot_id,
    sample_files.taken_at,
    sample_files.tag_id,
    sample_files.occurrence,
    sample_files.ordinal,
    sample_files.bytes,
    coalesce(
        sample_files.calls,
        cast(sample_files.bytes / sample_files.unit_bytes as decimal(20, 0))
    ) as calls,
    sample_files.accurate,
    sample_files.extras,
    live.host,
    cast(sample_files.date as date) as date
from sample_files
inner join live
    on
        sample_files.host = live.host
        and sample_files.taken_at = live.taken_at
        and sample_files.generation = live.generation
        and (
            sample_files.snapshot_id is null
            or sample_files.snapshot_id = live.snapshot_id
        )
