-- Macro: the first depth directories of a source file name ("fs/ext4" for depth 2), without
-- a leading "./"; a file with fewer directories gives all of them.
create or replace macro dir_prefix(file, depth) as
array_to_string(
    list_slice(
        string_split(regexp_replace(file, '^(\./)+', ''), '/'),
        1,
        least(depth, len(string_split(regexp_replace(file, '^(\./)+', ''), '/')) - 1)
    ),
    '/'
)
