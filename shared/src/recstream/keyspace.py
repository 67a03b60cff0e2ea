"""Every Redis key recstream uses, with its cap and TTL: the keyspace contract.

Keys carry a prefix and a keyspace version (``rs:v1:...``) so a rebuild can
write a fresh version beside the live one and switch over. Keys of one user
share the Redis Cluster hash tag ``{u:<id>}``. See ``docs/keyspace.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "rs"
DEFAULT_VERSION = 1
USER_STATE_TTL_SECONDS = 180 * 86_400  # an inactive user's state expires after 180 days


@dataclass(frozen=True, slots=True)
class Keyspace:
    prefix: str = DEFAULT_PREFIX
    version: int = DEFAULT_VERSION
    user_ttl_seconds: int = USER_STATE_TTL_SECONDS

    @property
    def root(self) -> str:
        return f"{self.prefix}:v{self.version}"

    def user_state(self, user_id: str) -> str:
        """Hash ``{wm: "<partition>:<offset>", st: <state JSON>}`` of one user."""
        return f"{self.root}:{{u:{user_id}}}:state"

    def partition_watermarks(self, topic: str) -> str:
        """Hash ``partition -> last applied offset`` of a topic."""
        return f"{self.root}:{{wm}}:partitions:{topic}"

    def user_pattern(self) -> str:
        return f"{self.root}:{{u:*}}:state"

    def user_id_of(self, key: str) -> str:
        start = key.index("{u:") + 3
        return key[start : key.index("}", start)]
