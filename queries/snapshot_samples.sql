-- The rows of one stored snapshot with their call sites, in the kernel's order.
-- $snapshot_id  VARCHAR      the snapshot
-- $host         VARCHAR      its host partition
-- $day          DATE         its date partition
-- $taken_at     TIMESTAMPTZ  its time: compacted files name a snapshot by it (snapshot_id is
--                            NULL there), and a filter on it reaches the scan of the files
select
    s.ordinal,
    s.tag_id,
    s.occurrence,
    t.file,
    t.line,
    t.module,
    t.function,
    s.bytes,
    s.calls,
    s.accurate,
    s.extras
from samples as s
inner join tags as t on s.tag_id = t.tag_id
where
    s.host = $host
    and s.date = $day
    and s.taken_at = $taken_at
    and s.snapshot_id = $snapshot_id
order by s.ordinal
