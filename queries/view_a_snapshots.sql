-- View: the store's snapshots, one row each. Compaction writes a snapshot's row again with a
-- higher generation before it removes the older file, so the newest generation is the row.
-- The host comes from the hive partition, whose type a reader infers from the values; it is a
-- name, so it is cast back to text.
create or replace view snapshots as
select * exclude (generation, newest) replace (host::varchar as host)
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
