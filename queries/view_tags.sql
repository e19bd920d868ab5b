-- View: one row per tag id (tag files overlap: each holds the tag set of one kernel and
-- module combination).
create or replace view tags as
select distinct on (tag_id)
    tag_id,
    file,
    line,
    module,
    function
from tag_files
order by tag_id
