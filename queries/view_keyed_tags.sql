-- Table macro: the tags a window analysis reads, each with its group key: every tag, or those
-- whose ids are in tag_ids (the tag filter's, chosen by filters.kept_tag_ids); grouped by
-- by_kind (tag | function | file | module | dir | host) with depth directories kept by dir.
-- Reads the tags view.
create or replace macro keyed_tags(by_kind, depth, tag_ids) as table
    select
        tag_id,
        group_key(by_kind, depth, file, line, module, function) as key
    from tags
    where tag_ids::bigint[] is null or list_contains(tag_ids::bigint[], tag_id)
