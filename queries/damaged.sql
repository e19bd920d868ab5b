-- The snapshots of a store window whose samples disagree with their own row, among those a
-- window analysis reads: at most $max_points per epoch, evenly spaced in time, or all of them
-- (leaks, top, history; view_damaged_among.sql says what disagrees).
-- $host        VARCHAR      hosts: a regular expression over the whole name, or NULL for all
-- $since_at    TIMESTAMPTZ  window start, or NULL
-- $until_at    TIMESTAMPTZ  window end, or NULL
-- $since_back  DOUBLE       window start in seconds before the newest snapshot, or NULL
-- $until_back  DOUBLE       window end in seconds before the newest snapshot, or NULL
-- $max_points  INTEGER      snapshots read per epoch, or NULL for every one of the window
select *
from
    damaged_among(
        (
            select list({ 'host': host, 'snapshot_id': snapshot_id })
            from
                window_snapshots_picked(
                    $host, $since_at, $until_at, $since_back, $until_back, $max_points
                )
        )
    )
