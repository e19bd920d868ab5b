-- Leaks, stage 0: each kept tag's group key (:by). Read by stages 2 and 6.
-- :tag_ids          ARRAY<BIGINT>  tags kept by the tag filters, or NULL for all
-- :by               STRING         tag | function | file | module | dir | host ('': the last
--                                  stage puts each epoch's host in its place)
-- :depth            INT            directories kept by dir
with

keys as (
    select
        tag_id,
        case :by
            when 'function' then function
            when 'file' then file
            when 'module' then coalesce(module, '(built-in)')
            when 'host' then ''
            when 'dir'
                then
                    array_join(
                        slice(
                            split(regexp_replace(file, '^([.]/)+', ''), '/'),
                            1,
                            least(
                                :depth, size(split(regexp_replace(file, '^([.]/)+', ''), '/')) - 1
                            )
                        ),
                        '/'
                    )
            else concat(
                file, ':', cast(line as string), coalesce(concat(' [', module, ']'), ''),
                ' func:', function
            )
        end as key
    from tags
    where
        cast(:tag_ids as array<bigint>) is null
        or array_contains(cast(:tag_ids as array<bigint>), tag_id)
)

select *
from keys
