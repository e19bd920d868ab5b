-- The snapshots outliers reads (view_outlier_ends.sql: each host's first and last of its newest
-- epoch) whose samples disagree with their own row (view_damaged_among.sql).
-- $host        VARCHAR      hosts: a regular expression over the whole name, or NULL for all
-- $since_at    TIMESTAMPTZ  window start, or NULL
-- $until_at    TIMESTAMPTZ  window end, or NULL
-- $since_back  DOUBLE       window start in seconds before the newest snapshot, or NULL
-- $until_back  DOUBLE       window end in seconds before the newest snapshot, or NULL
select *
from
    damaged_among(
        (
            select list({ 'host': host, 'snapshot_id': snapshot_id })
            from outlier_ends($host, $since_at, $until_at, $since_back, $until_back)
        )
    )
