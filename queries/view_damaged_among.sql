-- Table macro: the snapshots among picks (a list of {host, snapshot_id}) whose samples disagree
-- with their own row: fewer or more rows, other live bytes or calls than the row says (a damaged
-- samples file, or a missing one). An analysis checks the snapshots it reads with it, before it
-- trusts them: one more pass over those samples (docs/storage.md, "Damaged files"). The
-- damaged* queries give it each analysis's picks.
create or replace macro damaged_among(picks) as table
    with

    given as materialized (
        select unnest(picks, recursive := true)
    ),

    -- each snapshot's newest row: the generation that holds its samples, and its totals
    live as (
        select
            host::varchar as host,
            snapshot_id,
            taken_at,
            date,
            generation,
            rows,
            total_bytes,
            total_calls
        from snapshot_files
        qualify
            row_number() over (partition by host, snapshot_id order by generation desc) = 1
    ),

    picked as (
        select l.*
        from live as l
        semi join given as g on l.host = g.host and l.snapshot_id = g.snapshot_id
    ),

    -- straight from the files: compacted ones name a snapshot by its time (snapshot_id NULL)
    found as (
        select
            host::varchar as host,
            taken_at,
            generation,
            snapshot_id,
            count(*) as rows,
            sum(bytes) as total_bytes,
            sum(signed_calls(coalesce(calls, (bytes // unit_bytes)::ubigint))) as total_calls
        from sample_files
        where taken_at in (select p.taken_at from picked as p)
        group by all
    ),

    compared as (
        select
            p.host,
            p.snapshot_id,
            p.date,
            p.rows as expected_rows,
            p.total_bytes as expected_bytes,
            p.total_calls as expected_calls,
            coalesce(sum(f.rows), 0) as found_rows,
            coalesce(sum(f.total_bytes), 0) as found_bytes,
            coalesce(sum(f.total_calls), 0) as found_calls
        from picked as p
        left join found as f
            on
                p.host = f.host
                and p.taken_at = f.taken_at
                and p.generation = f.generation
                and (f.snapshot_id is null or p.snapshot_id = f.snapshot_id)
        group by all
    )

    select
        host,
        snapshot_id,
        date,
        expected_rows,
        found_rows,
        expected_bytes,
        found_bytes
    from compared
    where
        found_rows != expected_rows
        or found_bytes != expected_bytes
        or found_calls != expected_calls
    order by host, snapshot_id
