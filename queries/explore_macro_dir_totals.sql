-- Table macro: one snapshot's live bytes, signed calls and rows summed by source directory at
-- a depth (dir_prefix: "fs/ext4" at depth 2, "" for a file without a directory), as
-- `allocsnap show --by dir:N` sums them; largest first, ties broken by directory.
-- Reads the store's views, so it exists only on a connection with a store.
create or replace macro dir_totals(snap_id, dir_depth) as table
select
    dir_prefix(t.file, dir_depth) as dir,
    sum(s.bytes)::bigint as bytes,
    sum(signed_calls(s.calls))::bigint as calls,
    count(*) as rows
from samples as s
inner join tags as t on s.tag_id = t.tag_id
where s.snapshot_id = snap_id
group by dir
order by bytes desc, dir asc
