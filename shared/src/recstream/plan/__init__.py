"""The writes a batch implies (pure): per-shard statistic operations, catalog writes,
erasure plans."""
