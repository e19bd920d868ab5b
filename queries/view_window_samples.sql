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
    -- live, for these snapshots)
    live as (
        select
            p.host,
            p.snapshot_id,
            p.taken_at,
            max(f.generation) as generation
        from picked as p
        inner join snapshot_files as f
            on f.host::varchar = p.host and p.snapshot_id = f.snapshot_id
        group by p.host, p.snapshot_id, p.taken_at
    ),

    -- straight from the files, at the picked times only
    timed as materialized (
        select *
        from sample_files
        where taken_at in (select p.taken_at from picked as p)
    )

    select
        live.snapshot_id,
        timed.* exclude (snapshot_id, generation, unit_bytes) replace (
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
