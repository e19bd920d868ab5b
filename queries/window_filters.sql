-- The filters the counting snapshots of a store window were taken with, each once ('' for
-- none): a window whose snapshots differ in filter is compared under the narrowest one.
-- $host        VARCHAR      hosts: a regular expression over the whole name, or NULL for all
-- $since_at    TIMESTAMPTZ  window start, or NULL
-- $until_at    TIMESTAMPTZ  window end, or NULL
-- $since_back  DOUBLE       window start in seconds before the newest snapshot, or NULL
-- $until_back  DOUBLE       window end in seconds before the newest snapshot, or NULL
select distinct s.filter
from snapshots as s
inner join
    window_snapshots($host, $since_at, $until_at, $since_back, $until_back) as w
    on s.snapshot_id = w.snapshot_id and s.taken_at = w.taken_at
where w.counting
order by s.filter
