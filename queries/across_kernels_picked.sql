-- Makes, on this connection only, a picked_samples table macro whose rows are those of the
-- store's (queries/view_picked_samples.sql: the samples of given snapshots, read by their
-- times) with older kernels' tags replaced as across_kernels.sql replaces them in the samples
-- view: growth and outliers read their samples through it, and leaks, top and history through
-- window_samples, which calls it. A temporary macro comes before the store's own in name
-- lookup; the store's is named with its catalog.
-- Reads kernel_tag_map (kernel, tag_id, to_tag_id), registered from Python.
create or replace temp macro picked_samples(picks) as table
    select s.* replace (coalesce(m.to_tag_id, s.tag_id) as tag_id)
    from memory.main.picked_samples(picks) as s
    left join memory.main.snapshots as k on s.snapshot_id = k.snapshot_id and s.host = k.host
    left join kernel_tag_map as m on k.kernel = m.kernel and s.tag_id = m.tag_id
