"""The shared table of shard-operation cases (``tests/shard_op_cases.py``) on the memory store.

``tests/integration/test_shard_ops.py`` runs the same table on Redis (the Lua script), so
the two implementations of ``recstream.plan.shards.Op`` agree case by case.
"""

from __future__ import annotations

from typing import get_args

import pytest

from recstream.plan.shards import OpCode, ShardOp
from recstream.store.memory import MemoryStore

from ..shard_op_cases import CASES, REFUSED, Case, commit_of, fill_memory, memory_keys


def test_the_table_covers_every_op() -> None:
    codes = {o.code for c in CASES for o in c.ops}
    assert codes == set(get_args(OpCode)) == {"L", "M", "G", "B", "S", "H", "D", "R", "I"}
    assert len({c.name for c in CASES}) == len(CASES), "case names are unique"


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_memory_store_applies_the_case(case: Case) -> None:
    store = MemoryStore()
    fill_memory(store, case.before)
    await store.commit_batch(commit_of(store.keyspace, case.ops, offset=7))
    assert memory_keys(store) == case.after.typed()
    shard_marks = store.hashes[store.keyspace.shard_watermarks(0, "ops")]
    assert shard_marks == {"0": "7"}


@pytest.mark.parametrize(("name", "refused"), REFUSED, ids=[n for n, _ in REFUSED])
async def test_memory_store_refuses_what_the_script_refuses(name: str, refused: ShardOp) -> None:
    store = MemoryStore()
    with pytest.raises(ValueError, match="could not convert"):
        await store.commit_batch(commit_of(store.keyspace, (refused,)))
