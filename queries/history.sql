-- The series of the groups whose key matches a pattern: live bytes and calls per snapshot,
-- per epoch, at no more than $max_points snapshots per epoch (evenly spaced in time), or at
-- every snapshot. A point counts only the rows present then; rows says how many there were.
-- Every epoch is one host's (column host); by host, the key is the host and the pattern
-- matches host names. Ordered by key, epoch and time.
-- $host        VARCHAR      hosts: a regular expression over the whole name, or NULL for all
-- $since_at    TIMESTAMPTZ  window start, or NULL
-- $until_at    TIMESTAMPTZ  window end, or NULL
-- $since_back  DOUBLE       window start in seconds before the newest snapshot, or NULL
-- $until_back  DOUBLE       window end in seconds before the newest snapshot, or NULL
-- $tag_ids     BIGINT[]     tags kept by the tag filters, or NULL for all
-- $accurate    BOOLEAN      keep only accurate rows (true), inaccurate ones (false), or NULL
-- $by          VARCHAR      tag | function | file | module | dir | host
-- $depth       INTEGER      directories kept by dir
-- $pattern     VARCHAR      regular expression (RE2) a group key (by host: a host) must contain
-- $max_points  INTEGER      snapshots per epoch (at least 2), or NULL for all
with

-- at most $max_points snapshots per epoch, evenly spaced in time, first and last included
picked as (
    select *
    from
        window_snapshots_picked(
            $host, $since_at, $until_at, $since_back, $until_back, $max_points
        )
),

keys as (
    select
        tag_id,
        key
    from keyed_tags($by, $depth, $tag_ids)
    where $by = 'host' or regexp_matches(key, $pattern)
)

select
    case when $by = 'host' then p.host else k.key end as key,
    p.host,
    p.epoch,
    p.taken_at,
    sum(s.bytes)::bigint as bytes,
    sum(signed_calls(s.calls))::bigint as calls,
    count(*) as rows
-- the picked snapshots' samples, read by their times (view_window_samples.sql)
from window_samples($host, $since_at, $until_at, $since_back, $until_back, $max_points) as s
inner join picked as p on s.snapshot_id = p.snapshot_id
inner join keys as k on s.tag_id = k.tag_id
where
    ($accurate is null or s.accurate = $accurate)
    and ($by != 'host' or regexp_matches(p.host, $pattern))
group by all
order by key, p.epoch, p.taken_at
