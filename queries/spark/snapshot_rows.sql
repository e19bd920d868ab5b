-- The rows of one stored snapshot with their call sites, tag filters applied: what diff reads
-- as before_rows and after_rows (queries/snapshot_samples.sql, filtered, for Spark).
-- :snapshot_id  STRING         the snapshot
-- :host         STRING         its host partition
-- :day          DATE           its date partition
-- :tag_ids      ARRAY<BIGINT>  tags kept by the tag filters, or NULL for all
-- :accurate     BOOLEAN        keep only accurate rows (true), inaccurate ones (false), or NULL
select
    s.ordinal,
    s.tag_id,
    s.occurrence,
    t.file,
    t.line,
    t.module,
    t.function,
    s.bytes,
    s.calls,
    s.accurate,
    s.extras
from samples as s
inner join tags as t on s.tag_id = t.tag_id
where
    s.host = :host
    and s.date = :day
    and s.snapshot_id = :snapshot_id
    and (
        cast(:tag_ids as array<bigint>) is null
        or array_contains(cast(:tag_ids as array<bigint>), s.tag_id)
    )
    and (:accurate is null or s.accurate = :accurate)
