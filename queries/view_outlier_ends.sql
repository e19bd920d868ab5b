-- Table macro: the snapshots outliers reads (queries/outliers.sql): per host, the first and the
-- last counting snapshot of its newest epoch in the window (view_window_snapshots.sql). Its
-- damage check reads the same snapshots (queries/damaged_outliers.sql).
create or replace macro outlier_ends(
    host_pattern, since_at, until_at, since_back_s, until_back_s
) as table
    with

    counting_snapshots as (
        select
            snapshot_id,
            taken_at,
            host,
            epoch
        from window_snapshots(host_pattern, since_at, until_at, since_back_s, until_back_s)
        where counting
    ),

    newest_epochs as (
        select
            host,
            arg_max(epoch, taken_at) as epoch
        from counting_snapshots
        group by host
    ),

    ranked as (
        select
            c.snapshot_id,
            c.taken_at,
            c.host,
            c.epoch,
            row_number()
                over (partition by c.host order by c.taken_at, c.snapshot_id)
                as from_start,
            row_number() over (
                partition by c.host order by c.taken_at desc, c.snapshot_id desc
            ) as from_end
        from counting_snapshots as c
        semi join newest_epochs as n on c.host = n.host and c.epoch = n.epoch
    ),

    ends as (
        select
            snapshot_id,
            taken_at,
            host,
            epoch,
            from_start = 1 as is_first,
            from_end = 1 as is_last
        from ranked
        where from_start = 1 or from_end = 1
    )

    select * from ends
