"""Every Redis key recstream uses, with its cap and TTL: the keyspace contract.

Keys carry a prefix and a keyspace version (``rs:v2:...``) so a rebuild can
write a fresh version beside the live one and switch over. Keys of one user
share the Redis Cluster hash tag ``{u:<id>}``. See ``docs/keyspace.md``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

from recstream.contract.units import DAY

DEFAULT_PREFIX = "rs"
DEFAULT_VERSION = 2
USER_STATE_TTL_SECONDS = int(180 * DAY)  # an inactive user's state expires after 180 days
DEFAULT_SHARDS = 16


class Stat:
    """The statistics shared by all users, named by what they hold; the values are their
    compact wire names in keys (``rs:v2:{s:3}:tr1:p:9``)."""

    TRANSITIONS: Final = "tr1"  # zset per item: next item -> decayed weight
    PAIR_TRANSITIONS: Final = "tr2"  # zset per pair of items "a|b": next item -> weight
    POPULARITY: Final = "pop"  # zset per shard: item -> decayed popularity
    CATEGORY_POPULARITY: Final = "popc"  # zset per category: item -> decayed popularity
    ITEM_SESSIONS: Final = "isess"  # zset per item: session key -> time of its last event
    SESSION_ITEMS: Final = "sitems"  # string per session: its items, the latest write wins
    ITEM_CATEGORY: Final = "icat"  # hash per shard: item -> category seen on events
    # zset per item: items of the same sessions (either order) -> weight by event type, distance
    COVISITATION: Final = "cov"
    # zset per item: items the same users engaged with in their other sessions -> weight
    CO_ENGAGEMENT: Final = "ucf"
    # hash per variant, and per variant and day "<variant>|<YYYY-MM-DD>": counter -> count
    # (impressions, clicks, ... of the recommendations it ranked; model/attribution.py)
    OUTCOMES: Final = "out"
    OUTCOME_VARIANTS: Final = "outv"  # hash "variants": variant -> 1, the variants counted


@dataclass(frozen=True, slots=True)
class Keyspace:
    prefix: str = DEFAULT_PREFIX
    version: int = DEFAULT_VERSION
    user_ttl_seconds: int = USER_STATE_TTL_SECONDS
    shards: int = DEFAULT_SHARDS  # statistic shards; changing it needs a new keyspace version

    @property
    def root(self) -> str:
        return f"{self.prefix}:v{self.version}"

    def user_state(self, user_id: str) -> str:
        """Hash ``{wm: "<partition>:<offset>", st: <zlib-compressed state JSON>}`` of one user."""
        return f"{self.root}:{{u:{user_id}}}:state"

    def merge_claim(self, anonymous_id: str) -> str:
        """String: the user an anonymous id is being merged into (``POST /identify``), set
        if absent and expiring, so two merges of one anonymous id cannot both publish."""
        return f"{self.root}:{{u:{anonymous_id}}}:merging"

    def partition_watermarks(self, topic: str) -> str:
        """Hash ``partition -> last applied offset`` of a topic."""
        return f"{self.root}:{{wm}}:partitions:{topic}"

    # Statistics shared by all users live in ``shards`` shards, each with its own hash tag
    # ``{s:<n>}`` and its own per-partition watermark.
    def shard_of(self, subject: str) -> int:
        return zlib.crc32(subject.encode()) % self.shards

    def shard_watermarks(self, shard: int, topic: str) -> str:
        """Hash ``partition -> last applied offset`` of one statistic shard."""
        return f"{self.root}:{{s:{shard}}}:wm:{topic}"

    def locate(self, kind: str, subject: str) -> tuple[int, str]:
        """The shard and the key of statistic ``kind`` about ``subject`` (see :meth:`stat`)."""
        shard = self.shard_of(subject)
        if kind in (Stat.POPULARITY, Stat.ITEM_CATEGORY):
            return shard, f"{self.root}:{{s:{shard}}}:{kind}"
        return shard, f"{self.root}:{{s:{shard}}}:{kind}:{subject}"

    def stat(self, kind: str, subject: str) -> str:
        """The key of statistic ``kind`` about ``subject`` (an item, pair, category or session).

        ``pop`` (popularity, zset item -> score) and ``icat`` (hash item -> category) are one
        key per shard; the subject only chooses the shard. The others are one key per subject.
        """
        return self.locate(kind, subject)[1]

    def shard_stat(self, kind: str, shard: int) -> str:
        """A per-shard statistic key (``pop`` or ``icat``) by shard number."""
        return f"{self.root}:{{s:{shard}}}:{kind}"

    def catalog_item(self, item: str) -> str:
        """String: the catalog entry of an item as JSON."""
        return f"{self.root}:{{s:{self.shard_of(item)}}}:catalog:{item}"

    def slot_marker(self, tag: str) -> str:
        """String: on a Redis Cluster, the marker of the hash slot ``{<tag>}`` hashes to
        (one per slot; a missing one is a primary that came back without its data)."""
        return f"{self.root}:{{{tag}}}:slot"

    def slot_markers(self) -> str:
        """String: set once every slot's marker is written."""
        return f"{self.root}:{{wm}}:slots"

    @staticmethod
    def is_slot_marker(key: str) -> bool:
        """Whether ``key`` is a slot marker (or their flag): cluster bookkeeping, not state
        built from the log (a replay writes none)."""
        return (key.endswith(":slot") and ":{m:" in key) or key.endswith(":{wm}:slots")

    def erasure_progress(self, shard: int) -> str:
        """Hash ``user_id -> offset``: on a Redis Cluster, the user offset up to which an
        erasure in progress subtracted the user's contributions from this shard (removed
        when the erasure completes)."""
        return f"{self.root}:{{s:{shard}}}:erasing"

    def erasures(self) -> str:
        """Hash ``user_id -> erasure record`` (JSON). Not versioned: it outlives rebuilds."""
        return f"{self.prefix}:erasures"

    def erasure_log(self) -> str:
        """Hash ``partition -> next offset``: how far the erasure log was restored into
        :meth:`erasures`. Not versioned; lost with the erasures, and then read again."""
        return f"{self.prefix}:erasures:log"

    def ranker_models(self) -> str:
        """Hash ``version -> ranker artifact`` (JSON). Not versioned: models outlive rebuilds."""
        return f"{self.prefix}:rankers:models"

    def active_ranker(self) -> str:
        """String: the version of the ranker the API serves; absent: the blend serves."""
        return f"{self.prefix}:rankers:active"

    def user_pattern(self) -> str:
        return f"{self.root}:{{u:*}}:state"

    def user_id_of(self, key: str) -> str:
        start = key.index("{u:") + 3
        return key[start : key.index("}", start)]
