-- The views over a store's files, pointed at the files listed now (allocsnap/store/views.py).
-- The paths are bound into variables, never written into SQL; a query reads them when it
-- runs, so pointing the views at a new listing sets them again.
-- $snapshot_paths  VARCHAR[]  the snapshots files (host=H/date=D/NAME.parquet)
-- $sample_paths    VARCHAR[]  the samples files, in the same layout
-- $tag_paths       VARCHAR[]  the tags files
set variable allocsnap_snapshot_paths = $snapshot_paths;
set variable allocsnap_sample_paths = $sample_paths;
set variable allocsnap_tag_paths = $tag_paths;

create or replace view snapshot_files as
select *
from
    read_parquet(
        getvariable('allocsnap_snapshot_paths'), hive_partitioning = true, union_by_name = true
    );

-- schema 3's compacted files code a series' calls by its unit size (unit_bytes); a store
-- without one yet has no such column, and reads it as NULL
create or replace view sample_files as
select *
from
    read_parquet(
        getvariable('allocsnap_sample_paths'), hive_partitioning = true, union_by_name = true
    )
union all by name
select null::bigint as unit_bytes
where false;

create or replace view tag_files as
select *
from read_parquet(getvariable('allocsnap_tag_paths'), union_by_name = true);
