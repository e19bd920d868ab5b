-- View: the samples of committed snapshots only, read from the generation that the snapshot's
-- newest row names (a snapshot is committed once its row is in snapshots), so a reader never
-- sees a snapshot whose write was interrupted, nor one twice while compaction replaces files.
create or replace view samples as
with

live as (
    select
        snapshot_id,
        max(generation) as generation
    from snapshot_files
    group by snapshot_id
)

select sample_files.* exclude (generation) replace (sample_files.host::varchar as host)
from sample_files
semi join live
    on
        sample_files.snapshot_id = live.snapshot_id
        and sample_files.generation = live.generation
