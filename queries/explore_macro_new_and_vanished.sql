-- Table macro: the call sites present in only one of two snapshots (by id): status 'new' (in
-- the later only), 'unloaded' (gone with its module: a vanished row is not a free) or
-- 'vanished' (gone, module still loaded or built-in); bytes and signed calls are those of the
-- side it is on, duplicate keys summed. The later snapshot's modules are its recorded list, or
-- for a saved dump the modules that have rows in it. Ordered by status, largest bytes first,
-- ties broken by tag_id. Reads the store's views, so it exists only with a store.
create or replace macro new_and_vanished(before_id, after_id) as table
with

before_tags as (
    select
        tag_id,
        sum(bytes)::bigint as bytes,
        sum(signed_calls(calls))::bigint as calls
    from samples
    where snapshot_id = before_id
    group by tag_id
),

after_tags as (
    select
        tag_id,
        sum(bytes)::bigint as bytes,
        sum(signed_calls(calls))::bigint as calls
    from samples
    where snapshot_id = after_id
    group by tag_id
),

after_modules as (
    select
        coalesce(
            any_value(sn.modules),
            (
                select list(distinct t.module)
                from after_tags as a
                inner join tags as t on a.tag_id = t.tag_id
                where t.module is not null
            ),
            []
        ) as modules
    from snapshots as sn
    where sn.snapshot_id = after_id
),

changed as (
    select
        'new' as status,
        a.tag_id,
        a.bytes,
        a.calls
    from after_tags as a
    anti join before_tags as b on a.tag_id = b.tag_id
    union all
    select
        'vanished' as status,
        b.tag_id,
        b.bytes,
        b.calls
    from before_tags as b
    anti join after_tags as a on b.tag_id = a.tag_id
)

select
    case
        when
            c.status = 'vanished'
            and t.module is not null
            and not list_contains(m.modules, t.module)
            then 'unloaded'
        else c.status
    end as status,
    c.tag_id,
    t.file,
    t.line,
    t.module,
    t.function,
    call_site(t.file, t.line, t.module, t.function) as call_site,
    c.bytes,
    c.calls
from changed as c
cross join after_modules as m
left join tags as t on c.tag_id = t.tag_id
order by status asc, c.bytes desc, c.tag_id asc
