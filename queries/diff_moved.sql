-- The rows of a diff across kernels with each moved call site marked: status 'moved' and
-- moved_from, where the site was in the earlier kernel (":line", or the whole earlier site
-- when its file or function was renamed); other rows keep their status and a NULL moved_from.
-- Reads the views diff_rows (queries/diff.sql's columns, keys being call sites) and
-- moved_sites (key, moved_from: one row per moved site, keyed by its later call site).
select
    d.* replace (
        case when m.key is not null and d.status = '' then 'moved' else d.status end as status
    ),
    m.moved_from
from diff_rows as d
left join moved_sites as m on d.key = m.key
order by abs(d.delta_bytes) desc, d.key
