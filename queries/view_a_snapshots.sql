-- View: the store's snapshots. The host comes from the hive partition, whose type a reader
-- infers from the values; it is a name, so it is cast back to text.
create or replace view snapshots as
select * replace (host::varchar as host)
from snapshot_files
