-- The rows, live bytes and signed calls of one snapshot's rows, as its row in snapshots gives
-- them (reading.check_snapshot compares the two); whether every counter is 0: a snapshot that
-- counted nothing (compare.counted_nothing); and the modules with rows in it, which stand for
-- the modules loaded where its row names none (compare._modules_present).
-- Reads the table snapshot_rows.
select
    count(*) as rows,
    coalesce(sum(bytes), 0)::bigint as bytes,
    coalesce(sum(signed_calls(calls)), 0)::bigint as calls,
    coalesce(count(*) > 0 and bool_and(bytes = 0 and calls = 0), false) as counted_nothing,
    coalesce(
        list(distinct module) filter (where module is not null), []::varchar[]
    ) as modules
from snapshot_rows
