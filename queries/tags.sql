-- Every call site in the store, by tag id.
select
    tag_id,
    file,
    line,
    module,
    function
from tags
order by tag_id
