-- Spark SQL view: one row per tag id (tag files overlap: each holds the tag set of one kernel
-- and module combination, and a tag id names the same call site in all of them).
create or replace temporary view tags as
select
    tag_id,
    file,
    line,
    module,
    function
from (
    select
        tag_id,
        file,
        line,
        module,
        function,
        row_number() over (
            partition by tag_id
            order by file, line, module, function
        ) as copy
    from tag_files
) as copies
where copy = 1
