-- Table macro: the snapshots of a store window, each with its epoch. It lives among the view_*
-- files because it reads the snapshots view, which exists only once a store is registered.
-- A window is [since, until] of the hosts whose whole name matches a regular expression (NULL:
-- all; a plain name matches itself); each bound is an absolute time or a number of seconds back
-- from the newest snapshot of those hosts (not the wall clock), or NULL (open).
-- An epoch is a span where counters are comparable: one host, one boot (boot_id, or the kernel
-- release when the boot is unknown; a boot id that import inferred from the counters ends in
-- '-inferred', and the epoch's name says so), between two stretches of vm.mem_profiling=0.
-- Snapshots taken with profiling off have counting = false: their counters are frozen.
-- boot names the boot whatever its epochs (its boot_id, else 'kernel ' and the release).
create or replace macro window_snapshots(
    host_pattern, since_at, until_at, since_back_s, until_back_s
) as table
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
    where host_pattern is null or regexp_full_match(host, host_pattern)
),

newest as (
    select max(taken_at) as taken_at from hosts
),

chosen as (
    select h.*
    from hosts as h, newest as n
    where
        h.taken_at >= coalesce(
            since_at::timestamptz,
            n.taken_at - to_microseconds((since_back_s * 1e6)::bigint),
            '-infinity'::timestamptz
        )
        and h.taken_at <= coalesce(
            until_at::timestamptz,
            n.taken_at - to_microseconds((until_back_s * 1e6)::bigint),
            'infinity'::timestamptz
        )
),

booted as (
    select
        *,
        coalesce(boot_id, 'kernel ' || coalesce(kernel, 'unknown')) as boot,
        lag(profiling) over (
            partition by host, boot order by taken_at, snapshot_id
        ) as profiling_before
    from chosen
),

-- each stretch of profiling=0 ends an epoch: count the stretches begun so far
numbered as (
    select
        *,
        count(*) filter (where profiling = 0 and profiling_before is distinct from 0) over (
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
    || case when off_before > 0 then ' on#' || off_before else '' end as epoch,
    profiling is distinct from 0 as counting
from numbered
