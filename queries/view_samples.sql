-- View: the samples of committed snapshots only (a snapshot is committed once its row is in
-- snapshots), so a reader never sees a snapshot whose write was interrupted.
create or replace view samples as
select sample_files.* replace (sample_files.host::varchar as host)
from sample_files
semi join snapshots on sample_files.snapshot_id = snapshots.snapshot_id
