"""The hash tags of the Redis Cluster slot markers: one per slot, each on its slot."""

from __future__ import annotations

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from recstream.contract.keyspace import Keyspace
from recstream.store.redis import slot_tags


def test_every_slot_has_one_marker_and_each_marker_lies_in_its_slot() -> None:
    tags = slot_tags()
    assert len(tags) == REDIS_CLUSTER_HASH_SLOTS
    assert [key_slot(tag.encode()) for tag in tags] == list(range(REDIS_CLUSTER_HASH_SLOTS))
    keys = Keyspace(prefix="rs")
    marker = keys.slot_marker(tags[4242])
    assert key_slot(marker.encode()) == 4242
    assert key_slot(keys.slot_markers().encode()) == key_slot(b"wm")
