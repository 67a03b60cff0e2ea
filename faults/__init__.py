"""The fault-injection suite: a driver, an exact oracle, fault scenarios and a report.

A driver produces a known input (real session sequences from the public datasets,
every event with a unique ``event_id``, keyed by user) and records each record's
partition, offset and timestamp. While it runs, a scenario injects a fault from
outside the processes (``kill -9``, SIGTERM, SIGSTOP, broker and Redis restarts,
poison records, duplicates, rebalances). The oracle then folds the recorded input
with the pure core (:func:`recstream.apply.batch.apply_batch` into a
:class:`recstream.store.memory.MemoryStore` with the same keyspace) and the checker
diffs that expected state against the real Redis, key by key.

Run it with ``recstream faults --out DIR`` (or ``python -m faults``); the CI
subset runs through pytest (``tests/faults``). See ``docs/reliability.md``.
"""
