-- Growth rates, window against window: per group, the median of its live bytes over the earlier
-- part of a store window (A) against the median over the later part (B), as bytes per hour
-- between the two parts' median times. Each part is read at no more than $max_points snapshots
-- per host.
-- Per host: a median never mixes two hosts' values (column host; by host, the key is the
-- host). Largest |rate| first, ties broken by key and host.
-- $host        VARCHAR      hosts: a regular expression over the whole name, or NULL for all
-- $since_at    TIMESTAMPTZ  window start, or NULL
-- $until_at    TIMESTAMPTZ  window end, or NULL
-- $since_back  DOUBLE       window start in seconds before the newest snapshot, or NULL
-- $until_back  DOUBLE       window end in seconds before the newest snapshot, or NULL
-- $split_at    TIMESTAMPTZ  where B starts, or NULL
-- $split_back  DOUBLE       where B starts in seconds before the newest snapshot, or NULL
--                           (both NULL: the middle of the window)
-- $tag_ids     BIGINT[]     tags kept by the tag filters, or NULL for all
-- $accurate    BOOLEAN      keep only accurate rows (true), inaccurate ones (false), or NULL
-- $by          VARCHAR      tag | function | file | module | dir | host
-- $depth       INTEGER      directories kept by dir
-- $min_size    BIGINT       keep a group when either median is at least this, or NULL
-- $max_size    BIGINT       keep a group when either median is at most this, or NULL
-- $nonzero     BOOLEAN      keep a group only when either median is non-zero
-- $max_points  INTEGER      snapshots read per part (at least 2), or NULL for all
-- $top_n       BIGINT       groups returned, or NULL for all
with

-- per part and host, the snapshots read (view_growth_picked.sql)
picked as (
    select *
    from
        growth_picked(
            $host, $since_at, $until_at, $since_back, $until_back, $split_at, $split_back,
            $max_points
        )
),

side_hours as (
    select
        side,
        median(epoch_us(taken_at)) / 3.6e9 as hour,
        count(*) as snapshots
    from picked
    group by side
),

keys as (
    select * from keyed_tags($by, $depth, $tag_ids)
),

per_snapshot as (
    select
        case when $by = 'host' then p.host else k.key end as key,
        p.host,
        p.side,
        p.snapshot_id,
        sum(s.bytes)::bigint as bytes
    -- the picked snapshots' samples, read by their times (view_picked_samples.sql)
    from
        picked_samples(
            (
                select list({ 'snapshot_id': snapshot_id, 'taken_at': taken_at, 'host': host })
                from picked
            )
        ) as s
    inner join picked as p on s.snapshot_id = p.snapshot_id
    inner join keys as k on s.tag_id = k.tag_id
    where $accurate is null or s.accurate = $accurate
    group by all
),

medians as (
    select
        key,
        host,
        median(bytes) filter (where side = 'a') as median_a,
        median(bytes) filter (where side = 'b') as median_b,
        count(*) filter (where side = 'a') as points_a,
        count(*) filter (where side = 'b') as points_b
    from per_snapshot
    group by key, host
)

select
    m.key,
    m.host,
    case
        when m.points_a = 0 then 'new'
        when m.points_b = 0 then 'gone'
        else ''
    end as status,
    coalesce(m.median_a, 0)::bigint as median_a,
    coalesce(m.median_b, 0)::bigint as median_b,
    (coalesce(m.median_b, 0) - coalesce(m.median_a, 0))::bigint as delta_bytes,
    round((coalesce(m.median_b, 0) - coalesce(m.median_a, 0)) / nullif(hb.hour - ha.hour, 0))
        as bytes_per_hour,
    case
        when m.median_a != 0
            then round(100.0 * (m.median_b - m.median_a) / abs(m.median_a), 1)
    end as delta_pct,
    m.points_a,
    m.points_b,
    to_timestamp(ha.hour * 3600) as median_at_a,
    to_timestamp(hb.hour * 3600) as median_at_b
from medians as m, side_hours as ha, side_hours as hb
where
    ha.side = 'a'
    and hb.side = 'b'
    and coalesce(m.median_a, 0) != coalesce(m.median_b, 0)
    and ($min_size is null or greatest(m.median_a, m.median_b) >= $min_size)
    and ($max_size is null or least(m.median_a, m.median_b) <= $max_size)
    and (not $nonzero or coalesce(m.median_a, 0) != 0 or coalesce(m.median_b, 0) != 0)
order by abs(bytes_per_hour) desc nulls last, abs(delta_bytes) desc, m.key asc, m.host asc
limit $top_n
