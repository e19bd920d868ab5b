-- The call sites each kernel's snapshots hold (kernel release, tag and its call site), with
-- when the kernel was first seen; oldest kernel first, ties by kernel and tag.
-- $host  VARCHAR  hosts: a regular expression over the whole name, or NULL for all
with

seen as (
    select
        k.kernel,
        s.tag_id,
        min(k.taken_at) as first_at
    from samples as s
    inner join snapshots as k on s.snapshot_id = k.snapshot_id and s.host = k.host
    where
        k.kernel is not null
        and ($host is null or regexp_full_match(k.host, $host))
    group by k.kernel, s.tag_id
)

select
    seen.kernel,
    min(seen.first_at) over (partition by seen.kernel) as first_at,
    t.tag_id,
    t.file,
    t.line,
    t.module,
    t.function
from seen
inner join tags as t on seen.tag_id = t.tag_id
order by first_at, seen.kernel, t.tag_id
