"""The Parquet store: its layout, writing, locks, compaction, housekeeping, merge and uploads."""
