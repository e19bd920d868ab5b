-- Table macro: the samples of the snapshots in picks (a list of {snapshot_id, taken_at, host}),
-- the rows and columns the samples view gives for them. It reads the files through a filter on
-- their times, which the scan applies itself: a compacted file names a snapshot by its time
-- (snapshot_id NULL), so joined on the id through the samples view, every row of the window's
-- days is read and joined before the picked ones are kept (69 M rows for 120 snapshots of a
-- host-day of 8,000 call sites, against 2.2 M; outliers held 8.8 GB there).
-- tests/test_compaction.py holds it equal to the samples view's rows of the same snapshots.
create or replace macro picked_samples(picks) as table
    with

    -- materialized: read from the list once, as a table, the joins below plan as they did when
    -- the picks were a query's rows (about 15% of leaks' time otherwise)
    given as materialized (
        select unnest(picks, recursive := true)
    ),

    -- each picked snapshot's newest generation: the one that holds its samples (the samples view's
    -- live, for these snapshots)
    given_live as (
        select
            g.host,
            g.snapshot_id,
            g.taken_at,
            max(f.generation) as generation
        from given as g
        inner join snapshot_files as f
            on f.host::varchar = g.host and g.snapshot_id = f.snapshot_id
        group by g.host, g.snapshot_id, g.taken_at
    ),

    -- straight from the files, at the picked times only
    given_timed as materialized (
        select *
        from sample_files
        where taken_at in (select g.taken_at from given as g)
    )

    select
        given_live.snapshot_id,
        given_timed.* exclude (snapshot_id, generation, unit_bytes) replace (
            given_live.host as host,
            coalesce(given_timed.calls, (given_timed.bytes // given_timed.unit_bytes)::ubigint)
                as calls
        )
    from given_timed
    inner join given_live
        on
            given_timed.host::varchar = given_live.host
            and given_timed.taken_at = given_live.taken_at
            and given_timed.generation = given_live.generation
            and (
                given_timed.snapshot_id is null
                or given_timed.snapshot_id = given_live.snapshot_id
            )
