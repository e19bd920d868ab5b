-- The snapshots of one loop (allocsnap loop), by run: run 0 is the baseline after the warm-up.
-- $loop  VARCHAR  the loop's id (the label loop=<id> of its snapshots)
select
    try_cast(map_extract_value(labels, 'run') as integer) as run,
    snapshot_id,
    name,
    taken_at,
    host,
    kernel,
    source,
    filter,
    rows,
    total_bytes
from snapshots
where map_extract_value(labels, 'loop') = $loop
order by run, snapshot_id
