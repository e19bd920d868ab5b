-- Table macro: the samples of the snapshots a window analysis reads (window_snapshots_picked),
-- the rows and columns the samples view gives for them. It reads the files through a filter on
-- their times, which the scan applies itself: a compacted file names a snapshot by its time
-- (snapshot_id NULL), so joined on the id through the samples view, every row of the window's
-- days is read and joined before the picked ones are kept (69 M rows for 120 snapshots of a
-- host-day of 8,000 call sites, against 2.2 M). tests/test_compaction.py holds it equal to the
-- samples view's rows of the same snapshots.
create or replace macro window_samples(
    host_pattern, since_at, until_at, since_back_s, until_back_s, max_points
) as table
    with

    picked as (
        select
            snapshot_id,
            taken_at,
            host
        from
            window_snapshots_picked(
                host_pattern, since_at, until_at, since_back_s, until_back_s, max_points
            )
    ),

    -- each picked snapshot's newest generation: the one that holds its samples (the samples view's
    -- live, for these snapshots), and whether that generation's file holds them in its thin row
    -- groups (allocsnap/store/thin.py): true, false, or NULL when its row does not say (a hot
    -- file, one written before thin row groups or rewritten by a merge)
    live as (
        select
            p.host,
            p.snapshot_id,
            p.taken_at,
            max(f.generation) as generation,
            arg_max(f.thin, f.generation) as thin
        from picked as p
        inner join snapshot_files as f
            on f.host::varchar = p.host and p.snapshot_id = f.snapshot_id
        group by p.host, p.snapshot_id, p.taken_at
    ),

    -- straight from the files, at the picked times only: the rows marked thin of the
    -- snapshots whose row says thin or does not say, then the other rows of those whose row
    -- says not thin or does not say. Each row is read once, and a thin snapshot's only from
    -- the thin row groups, the others' only from the rest: the thin column's statistics skip
    -- the others (a file without the column reads as NULL: not thin)
    timed as materialized (
        select *
        from sample_files
        where
            thin and taken_at in (
                select l.taken_at from live as l
                where l.thin is not false
            )
        union all
        select *
        from sample_files
        where thin is not true and taken_at in (
            select l.taken_at from live as l
            where l.thin is not true
        )
    )

    select
        live.snapshot_id,
        timed.* exclude (snapshot_id, generation, unit_bytes, thin) replace (
            live.host as host,
            coalesce(timed.calls, (timed.bytes // timed.unit_bytes)::ubigint) as calls
        )
    from timed
    inner join live
        on
            timed.host::varchar = live.host
            and timed.taken_at = live.taken_at
            and timed.generation = live.generation
            and (timed.snapshot_id is null or timed.snapshot_id = live.snapshot_id)
