"""Applying the log to the store: the partition batch applier and the administrative operations."""
