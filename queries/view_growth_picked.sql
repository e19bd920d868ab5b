-- Table macro: the snapshots growth reads (queries/growth.sql), and on which side of the split
-- each one is: per part ('a' before the split, 'b' from it on) and host, at most max_points
-- snapshots, evenly spaced in time (all when NULL). The counting snapshots of the window
-- (view_window_snapshots.sql); the split is split_at, or split_back_s seconds before the
-- newest snapshot, or the middle of the window. Its damage check reads the same snapshots
-- (queries/damaged_growth.sql).
create or replace macro growth_picked(
    host_pattern, since_at, until_at, since_back_s, until_back_s, split_at, split_back_s, max_points
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

    split as (
        select
            coalesce(
                split_at::timestamptz,
                max(taken_at) - to_microseconds((split_back_s * 1e6)::bigint),
                min(taken_at) + (max(taken_at) - min(taken_at)) / 2
            ) as at
        from counting_snapshots
    ),

    sided as (
        select
            c.snapshot_id,
            c.taken_at,
            c.host,
            c.epoch,
            case when c.taken_at < s.at then 'a' else 'b' end as side
        from counting_snapshots as c, split as s
    ),

    side_spans as (
        select
            side,
            min(taken_at) as first_at,
            max(taken_at) as last_at,
            count(distinct epoch) as epochs
        from sided
        group by side
    ),

    picked as (
        select
            d.snapshot_id,
            d.taken_at,
            d.host,
            d.side
        from sided as d
        inner join side_spans as p on d.side = p.side
        qualify max_points is null or row_number() over (
            partition by
                d.side,
                d.host,
                epoch_us(d.taken_at - p.first_at)::hugeint
                * (max_points - 1)
                // greatest(epoch_us(p.last_at - p.first_at), 1)
            order by d.taken_at, d.snapshot_id
        ) = 1
    )

    select * from picked
