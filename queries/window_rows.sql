-- Keeps, on this connection, the samples of the snapshots a window analysis picks (no more
-- than max_points an epoch; window_samples, which reads them by their times from the thin
-- row groups where it can) as the temp table window_rows: the damage check
-- (damaged_rows.sql) and the analysis (leaks, top, history) both read them, once from the
-- files. Only the columns they read (a copy of 2 M rows costs per column). Replaced at each
-- run.
-- $host        VARCHAR      hosts: a regular expression over the whole name, or NULL for all
-- $since_at    TIMESTAMPTZ  window start, or NULL
-- $until_at    TIMESTAMPTZ  window end, or NULL
-- $since_back  DOUBLE       window start in seconds before the newest snapshot, or NULL
-- $until_back  DOUBLE       window end in seconds before the newest snapshot, or NULL
-- $max_points  INTEGER      snapshots read per epoch, or NULL for every one of the window
create or replace temp table window_rows as
select
    snapshot_id,
    host,
    taken_at,
    tag_id,
    occurrence,
    bytes,
    calls,
    accurate
from window_samples($host, $since_at, $until_at, $since_back, $until_back, $max_points)
