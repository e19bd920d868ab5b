-- The epochs of a store window: per host, boot and profiling stretch, its span, its counting
-- snapshots, and those left out because profiling was off; oldest first.
-- $host        VARCHAR      hosts: a regular expression over the whole name, or NULL for all
-- $since_at    TIMESTAMPTZ  window start, or NULL
-- $until_at    TIMESTAMPTZ  window end, or NULL
-- $since_back  DOUBLE       window start in seconds before the newest snapshot, or NULL
-- $until_back  DOUBLE       window end in seconds before the newest snapshot, or NULL
select
    epoch,
    host,
    any_value(boot_id) as boot_id,
    any_value(kernel) as kernel,
    min(taken_at) filter (where counting) as first_at,
    max(taken_at) filter (where counting) as last_at,
    count(*) filter (where counting) as snapshots,
    count(*) filter (where not counting) as profiling_off,
    count(distinct modules) filter (where counting) as module_sets
from window_snapshots($host, $since_at, $until_at, $since_back, $until_back)
group by epoch, host
order by min(taken_at), epoch
