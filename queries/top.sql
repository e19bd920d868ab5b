-- Top movers of a store window: per group and epoch, live bytes at its first and last snapshot
-- in the epoch, the change and its rate; both directions, largest |change| first, ties broken
-- by key and epoch. A call site that appears or vanishes inside an epoch (a module loaded or
-- unloaded) is compared over the snapshots it is present in, and marked new or vanished: a
-- vanished row is not a free. Every epoch is one host's, so a row is one host's too (its
-- column host); by host, the key is the host. Each epoch is read at no more than $max_points
-- snapshots (its first and last among them), so where a call site appears or vanishes inside
-- an epoch, its first and last are those of the picked snapshots it is present in.
-- $host        VARCHAR      hosts: a regular expression over the whole name, or NULL for all
-- $since_at    TIMESTAMPTZ  window start, or NULL
-- $until_at    TIMESTAMPTZ  window end, or NULL
-- $since_back  DOUBLE       window start in seconds before the newest snapshot, or NULL
-- $until_back  DOUBLE       window end in seconds before the newest snapshot, or NULL
-- $tag_ids     BIGINT[]     tags kept by the tag filters, or NULL for all
-- $accurate    BOOLEAN      keep only accurate rows (true), inaccurate ones (false), or NULL
-- $by          VARCHAR      tag | function | file | module | dir | host
-- $depth       INTEGER      directories kept by dir
-- $min_size    BIGINT       keep a group when either value is at least this, or NULL
-- $max_size    BIGINT       keep a group when either value is at most this, or NULL
-- $nonzero     BOOLEAN      keep a group only when either value is non-zero
-- $top_n       BIGINT       groups returned, or NULL for all
-- $max_points  INTEGER      snapshots read per epoch (at least 2), or NULL for all
with

-- at most $max_points snapshots per epoch, evenly spaced in time, first and last included
picked as (
    select *
    from
        window_snapshots_picked(
            $host, $since_at, $until_at, $since_back, $until_back, $max_points
        )
),

epoch_spans as (
    select
        epoch,
        any_value(host) as host,
        min(taken_at) as first_at,
        max(taken_at) as last_at
    from picked
    group by epoch
),

keys as (
    select * from keyed_tags($by, $depth, $tag_ids)
),

-- one pass over the samples: each row of the kernel's (tag and occurrence) at its first and its
-- last read snapshot in the epoch; few groups, whatever the number of snapshots
per_occurrence as (
    select
        s.tag_id,
        c.epoch,
        arg_min(s.bytes, s.taken_at) as first_bytes,
        arg_max(s.bytes, s.taken_at) as last_bytes,
        min(s.taken_at) as first_at,
        max(s.taken_at) as last_at
    -- the picked snapshots' samples, read by their times (view_window_samples.sql)
    from
        window_samples(
            $host, $since_at, $until_at, $since_back, $until_back, $max_points
        ) as s
    inner join picked as c on s.snapshot_id = c.snapshot_id
    where $accurate is null or s.accurate = $accurate
    group by s.tag_id, s.occurrence, c.epoch
),

-- per tag (duplicate keys summed): its bytes at its first and its last snapshot, from the
-- occurrences present then
per_tag as (
    select
        tag_id,
        epoch,
        sum(first_bytes) filter (where first_at = tag_first_at)::bigint as first_bytes,
        sum(last_bytes) filter (where last_at = tag_last_at)::bigint as last_bytes,
        any_value(tag_first_at) as first_at,
        any_value(tag_last_at) as last_at
    from (
        select
            *,
            min(first_at) over (partition by tag_id, epoch) as tag_first_at,
            max(last_at) over (partition by tag_id, epoch) as tag_last_at
        from per_occurrence
    ) as occurrences
    group by tag_id, epoch
),

grouped as (
    select
        k.key,
        t.epoch,
        sum(t.first_bytes)::bigint as first_bytes,
        sum(t.last_bytes)::bigint as last_bytes,
        min(t.first_at) as first_at,
        max(t.last_at) as last_at
    from per_tag as t
    inner join keys as k on t.tag_id = k.tag_id
    group by k.key, t.epoch
)

select
    case when $by = 'host' then e.host else g.key end as key,
    e.host,
    g.epoch,
    case
        when g.first_at > e.first_at and g.last_at < e.last_at then 'new, vanished'
        when g.first_at > e.first_at then 'new'
        when g.last_at < e.last_at then 'vanished'
        else ''
    end as status,
    g.first_bytes,
    g.last_bytes,
    g.last_bytes - g.first_bytes as delta_bytes,
    case
        when g.last_at > g.first_at
            then round((g.last_bytes - g.first_bytes) / (epoch_us(g.last_at - g.first_at) / 3.6e9))
    end as bytes_per_hour,
    case
        when g.first_bytes != 0
            then round(100.0 * (g.last_bytes - g.first_bytes) / abs(g.first_bytes), 1)
    end as delta_pct,
    g.first_at,
    g.last_at
from grouped as g
inner join epoch_spans as e on g.epoch = e.epoch
where
    g.last_bytes != g.first_bytes
    and ($min_size is null or greatest(g.first_bytes, g.last_bytes) >= $min_size)
    and ($max_size is null or least(g.first_bytes, g.last_bytes) <= $max_size)
    and (not $nonzero or g.first_bytes != 0 or g.last_bytes != 0)
order by abs(delta_bytes) desc, g.key, g.epoch asc
limit $top_n
