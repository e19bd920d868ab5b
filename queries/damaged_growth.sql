-- The snapshots growth reads (view_growth_picked.sql) whose samples disagree with their own
-- row (view_damaged_among.sql): growth checks only what it reads, not the whole window.
-- $host        VARCHAR      hosts: a regular expression over the whole name, or NULL for all
-- $since_at    TIMESTAMPTZ  window start, or NULL
-- $until_at    TIMESTAMPTZ  window end, or NULL
-- $since_back  DOUBLE       window start in seconds before the newest snapshot, or NULL
-- $until_back  DOUBLE       window end in seconds before the newest snapshot, or NULL
-- $split_at    TIMESTAMPTZ  where the later part starts, or NULL
-- $split_back  DOUBLE       where it starts in seconds before the newest snapshot, or NULL
-- $max_points  INTEGER      snapshots read per part (at least 2), or NULL for all
select *
from
    damaged_among(
        (
            select list({ 'host': host, 'snapshot_id': snapshot_id })
            from
                growth_picked(
                    $host, $since_at, $until_at, $since_back, $until_back, $split_at,
                    $split_back, $max_points
                )
        )
    )
