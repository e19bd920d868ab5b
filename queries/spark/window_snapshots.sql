-- The snapshots of a store window, each with its epoch: queries/view_window_snapshots.sql (a
-- DuckDB table macro) as a Spark SQL query, which the runner registers as the temporary view
-- window_snapshots that leaks reads. A window is [since, until] of the hosts whose whole name
-- matches a regular expression (NULL: all); each bound
-- is an absolute time or a number of seconds back from the newest snapshot of those hosts (not
-- the wall clock), or NULL (open). An epoch is a span where counters are comparable: one host,
-- one boot (boot_id, or the kernel release when the boot is unknown), between two stretches of
-- vm.mem_profiling=0. Snapshots taken with profiling off have counting = false. boot names the
-- boot whatever its epochs (its boot_id, else 'kernel ' and the release).
-- :host        STRING     hosts: a regular expression over the whole name, or NULL for all
-- :since_at    TIMESTAMP  window start, or NULL
-- :until_at    TIMESTAMP  window end, or NULL
-- :since_back  DOUBLE     window start in seconds before the newest snapshot, or NULL
-- :until_back  DOUBLE     window end in seconds before the newest snapshot, or NULL
with

hosts as (
    select
        snapshot_id,
        name,
        taken_at,
        host,
        boot_id,
        kernel,
        profiling,
        modules,
        date
    from snapshots
    where :host is null or host rlike concat('^(?:', :host, ')$')
),

newest as (
    select unix_micros(max(taken_at)) as us from hosts
),

chosen as (
    select h.*
    from hosts as h
    cross join newest as n
    where
        h.taken_at >= coalesce(
            cast(:since_at as timestamp),
            timestamp_micros(n.us - cast(round(cast(:since_back as double) * 1e6) as bigint)),
            h.taken_at
        )
        and h.taken_at <= coalesce(
            cast(:until_at as timestamp),
            timestamp_micros(n.us - cast(round(cast(:until_back as double) * 1e6) as bigint)),
            h.taken_at
        )
),

with_boot as (
    select
        *,
        coalesce(boot_id, 'kernel ' || coalesce(kernel, 'unknown')) as boot
    from chosen
),

booted as (
    select
        *,
        lag(profiling) over (
            partition by host, boot order by taken_at, snapshot_id
        ) as profiling_before
    from with_boot
),

-- each stretch of profiling=0 ends an epoch: count the stretches begun so far
numbered as (
    select
        *,
        sum(
            case when profiling = 0 and profiling_before is distinct from 0 then 1 else 0 end
        ) over (
            partition by host, boot order by taken_at, snapshot_id
        ) as off_before
    from booted
)

select
    snapshot_id,
    name,
    taken_at,
    host,
    boot_id,
    boot,
    kernel,
    profiling,
    modules,
    date,
    host || ' ' || coalesce(left(boot_id, 8), kernel, 'boot unknown')
    || case when boot_id like '%-inferred' then ' (inferred)' else '' end
    || case when off_before > 0 then ' on#' || cast(off_before as string) else '' end as epoch,
    profiling is distinct from 0 as counting
from numbered
