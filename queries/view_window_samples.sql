-- Table macro: the samples of the snapshots a window analysis reads (window_snapshots_picked),
-- the rows and columns the samples view gives for them, read by their times
-- (view_picked_samples.sql).
create or replace macro window_samples(
    host_pattern, since_at, until_at, since_back_s, until_back_s, max_points
) as table
    select *
    from
        picked_samples(
            (
                select list({ 'snapshot_id': snapshot_id, 'taken_at': taken_at, 'host': host })
                from
                    window_snapshots_picked(
                        host_pattern, since_at, until_at, since_back_s, until_back_s, max_points
                    )
            )
        )
