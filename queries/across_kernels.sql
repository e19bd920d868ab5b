-- Makes, on this connection only, a samples view in which the rows of older kernels'
-- snapshots carry the tag of the newest kernel's call site they were paired with, so that the
-- window analyses (history, growth) follow a call site across kernel upgrades. A temporary
-- view named samples comes before the store's own in name lookup; the store's is named with
-- its catalog (across_kernels_picked.sql does the same for picked_samples). Reads
-- kernel_tag_map (kernel, tag_id, to_tag_id), registered from Python.
create or replace temp view samples as
select s.* replace (coalesce(m.to_tag_id, s.tag_id) as tag_id)
from memory.main.samples as s
left join memory.main.snapshots as k on s.snapshot_id = k.snapshot_id and s.host = k.host
left join kernel_tag_map as m on k.kernel = m.kernel and s.tag_id = m.tag_id
