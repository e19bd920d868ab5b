-- View: the samples of committed snapshots only, read from the generation that the snapshot's
-- newest row names (a snapshot is committed once its row is in snapshots), so a reader never
-- sees a snapshot whose write was interrupted, nor one twice while compaction replaces files.
-- Compacted files leave snapshot_id NULL where the host and taken_at name one snapshot of
-- that generation (it cost more than the numbers in a day file); the join names it again.
-- They also leave calls NULL where it is bytes / unit_bytes (a call site that allocates one
-- size): the division puts it back. unit_bytes is NULL elsewhere, and in hot files.
create or replace view samples as
with

live as (
    select
        host::varchar as host,
        snapshot_id,
        taken_at,
        max(generation) as generation
    from snapshot_files
    group by host::varchar, snapshot_id, taken_at
)

select
    live.snapshot_id,
    sample_files.* exclude (snapshot_id, generation, unit_bytes) replace (
        live.host as host,
        coalesce(
            sample_files.calls,
            (sample_files.bytes // sample_files.unit_bytes)::ubigint
        ) as calls
    )
from sample_files
inner join live
    on
        sample_files.host::varchar = live.host
        and sample_files.taken_at = live.taken_at
        and sample_files.generation = live.generation
        and (
            sample_files.snapshot_id is null
            or sample_files.snapshot_id = live.snapshot_id
        )
