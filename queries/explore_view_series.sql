-- View: the store in long, tidy form: one row per call site per committed snapshot, with the
-- snapshot's time, host, boot, kernel and epoch and the call site's fields beside its counters,
-- ready for a notebook's group by or plot. Rows of snapshots taken with vm.mem_profiling=0 are
-- kept with counting = false: their counters were frozen. Duplicate keys are separate rows
-- (occurrence 0, 1, ...), as the kernel printed them.
create or replace view series as
with

epochs as (
    select
        snapshot_id,
        host,
        boot_id,
        kernel,
        epoch,
        counting
    from window_snapshots(null, null, null, null, null)
)

select
    s.snapshot_id,
    s.taken_at,
    e.host,
    e.boot_id,
    e.kernel,
    e.epoch,
    e.counting,
    s.tag_id,
    s.occurrence,
    t.file,
    t.line,
    t.module,
    t.function,
    call_site(t.file, t.line, t.module, t.function) as call_site,
    s.bytes,
    s.calls,
    s.accurate
from samples as s
inner join epochs as e on s.snapshot_id = e.snapshot_id and s.host = e.host
left join tags as t on s.tag_id = t.tag_id
