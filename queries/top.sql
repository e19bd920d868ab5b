-- Top movers of a store window: per group and epoch, live bytes at its first and last snapshot
-- in the epoch, the change and its rate; both directions, largest |change| first, ties broken
-- by key and epoch. A call site that appears or vanishes inside an epoch (a module loaded or
-- unloaded) is compared over the snapshots it is present in, and marked new or vanished: a
-- vanished row is not a free. Every epoch is one host's, so a row is one host's too (its
-- column host); by host, the key is the host.
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
with

counting_snapshots as (
    select
        snapshot_id,
        taken_at,
        host,
        epoch
    from window_snapshots($host, $since_at, $until_at, $since_back, $until_back)
    where counting
),

epoch_spans as (
    select
        epoch,
        any_value(host) as host,
        min(taken_at) as first_at,
        max(taken_at) as last_at
    from counting_snapshots
    group by epoch
),

keys as (
    select
        tag_id,
        group_key($by, $depth, file, line, module, function) as key
    from tags
    where $tag_ids::bigint[] is null or list_contains($tag_ids::bigint[], tag_id)
),

-- when each tag was first and last seen in each epoch: one pass over the samples into few
-- groups (per tag and snapshot would be a group per row: gigabytes for a fleet's day)
presence as (
    select
        s.tag_id,
        c.epoch,
        min(s.taken_at) as first_at,
        max(s.taken_at) as last_at
    from samples as s
    inner join counting_snapshots as c on s.snapshot_id = c.snapshot_id
    where $accurate is null or s.accurate = $accurate
    group by s.tag_id, c.epoch
),

-- its bytes then (duplicate keys summed): a second pass that keeps only those two snapshots
per_tag as (
    select
        p.tag_id,
        p.epoch,
        sum(s.bytes) filter (where s.taken_at = p.first_at)::bigint as first_bytes,
        sum(s.bytes) filter (where s.taken_at = p.last_at)::bigint as last_bytes,
        any_value(p.first_at) as first_at,
        any_value(p.last_at) as last_at
    from samples as s
    inner join counting_snapshots as c on s.snapshot_id = c.snapshot_id
    inner join presence as p
        on
            s.tag_id = p.tag_id
            and c.epoch = p.epoch
            and (s.taken_at = p.first_at or s.taken_at = p.last_at)
    where $accurate is null or s.accurate = $accurate
    group by p.tag_id, p.epoch
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
