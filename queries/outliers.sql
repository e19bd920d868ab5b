-- Hosts that stand out for a group (a call site, a function, ...) against the rest of the fleet.
-- Per host and group, from the host's newest epoch in the window: its live bytes at the last
-- snapshot and its growth per hour from the first snapshot to the last; each against the median
-- over the hosts that have the group, as a robust score: (value - median) / scale, the scale
-- being 1.4826 times the MAD (median absolute deviation from the median: the standard deviation
-- for normal data), but at least $min_gap / $min_score (bytes) or $min_rate / $min_score
-- (growth). A host is an outlier where a score reaches $min_score, and so its gap to the median
-- is at least $min_gap or $min_rate: a fleet whose hosts agree to the byte (MAD 0) flags a host
-- that is that far off, and a tiny spread never makes a tiny difference look extreme. Hosts
-- never sum: each value is one host's (docs/analyses.md). Outliers first, highest score first.
-- $host        VARCHAR      hosts: a regular expression over the whole name, or NULL for all
-- $since_at    TIMESTAMPTZ  window start, or NULL
-- $until_at    TIMESTAMPTZ  window end, or NULL
-- $since_back  DOUBLE       window start in seconds before the newest snapshot, or NULL
-- $until_back  DOUBLE       window end in seconds before the newest snapshot, or NULL
-- $tag_ids     BIGINT[]     tags kept by the tag filters, or NULL for all
-- $accurate    BOOLEAN      keep only accurate rows (true), inaccurate ones (false), or NULL
-- $by          VARCHAR      tag | function | file | module | dir
-- $depth       INTEGER      directories kept by dir
-- $pattern     VARCHAR      regular expression (RE2) a group key must contain
-- $min_hosts   INTEGER      fewest hosts having a group for it to be scored
-- $min_score   DOUBLE       robust score at which a host is an outlier
-- $min_gap     BIGINT       smallest gap in bytes from the median that can make an outlier
-- $min_rate    DOUBLE       smallest gap in growth per hour from the median that can make one
with

-- per host, the first and last snapshot of its newest epoch (view_outlier_ends.sql)
ends as (
    select * from outlier_ends($host, $since_at, $until_at, $since_back, $until_back)
),

keys as (
    select
        tag_id,
        key
    from keyed_tags($by, $depth, $tag_ids)
    where regexp_matches(key, $pattern)
),

host_values as (
    select
        k.key,
        e.host,
        any_value(e.epoch) as epoch,
        sum(s.bytes) filter (where e.is_first)::bigint as first_bytes,
        sum(s.bytes) filter (where e.is_last)::bigint as last_bytes,
        min(e.taken_at) filter (where e.is_first) as first_at,
        max(e.taken_at) filter (where e.is_last) as last_at
    -- the two ends' samples, read by their times (view_picked_samples.sql)
    from
        picked_samples(
            (
                select list({ 'snapshot_id': snapshot_id, 'taken_at': taken_at, 'host': host })
                from ends
            )
        ) as s
    inner join ends as e on s.snapshot_id = e.snapshot_id
    inner join keys as k on s.tag_id = k.tag_id
    where $accurate is null or s.accurate = $accurate
    group by k.key, e.host
),

rated as (
    select
        *,
        case
            when last_at > first_at
                then (last_bytes - first_bytes) / (epoch_us(last_at - first_at) / 3.6e9)
        end as bytes_per_hour
    from host_values
    where last_bytes is not null
),

fleet as (
    select
        key,
        count(*) as hosts,
        median(last_bytes) as median_bytes,
        median(bytes_per_hour) as median_rate
    from rated
    group by key
    having count(*) >= $min_hosts
),

spread as (
    select
        r.key,
        greatest(1.4826 * median(abs(r.last_bytes - f.median_bytes)), $min_gap / $min_score)
            as bytes_scale,
        greatest(1.4826 * median(abs(r.bytes_per_hour - f.median_rate)), $min_rate / $min_score)
            as rate_scale
    from rated as r
    inner join fleet as f on r.key = f.key
    group by r.key
),

scored as (
    select
        r.key,
        r.host,
        r.epoch,
        r.last_bytes,
        r.bytes_per_hour,
        r.first_at,
        r.last_at,
        f.hosts,
        f.median_bytes,
        f.median_rate,
        (r.last_bytes - f.median_bytes) / s.bytes_scale as bytes_score,
        (r.bytes_per_hour - f.median_rate) / s.rate_scale as rate_score
    from rated as r
    inner join fleet as f on r.key = f.key
    inner join spread as s on r.key = s.key
)

select
    key,
    host,
    coalesce(abs(bytes_score) >= $min_score or abs(rate_score) >= $min_score, false) as outlier,
    greatest(abs(bytes_score), abs(rate_score)) as score,
    last_bytes as bytes,
    median_bytes::bigint as median_bytes,
    bytes_score,
    round(bytes_per_hour) as bytes_per_hour,
    round(median_rate) as median_bytes_per_hour,
    rate_score,
    hosts,
    epoch,
    first_at,
    last_at
from scored
order by outlier desc, score desc nulls last, key asc, host asc
