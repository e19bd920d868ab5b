-- View: the rows of each host's newest snapshot (ties in time broken by the larger id), with
-- the columns of series.
create or replace view latest as
with

newest as (
    select
        snapshot_id,
        host
    from snapshots
    qualify row_number() over (
        partition by host order by taken_at desc, snapshot_id desc
    ) = 1
)

select series.*
from series
semi join newest
    on series.snapshot_id = newest.snapshot_id and series.host = newest.host
