"""The checker: the expected keyspace against the real one, every key and every value.

Each difference is classed as

- **lost**: an expected user, key, member or event count is missing or lower
  (an event was not applied);
- **double-counted**: a value is higher than expected, or a user, key or member
  exists that the input does not imply (an event was applied twice);
- **mismatched**: present with the same counts but a different value.

User states are compared exactly, field group by field group (counters,
ratings, sessions, history, dedupe window, watermark): the fold handles one
event at a time, so the same events give the same floats. Sorted-set scores
(transitions, popularity) are sums that the consumer adds up per batch, and its
batches are not the oracle's, so they are compared with a tolerance (``1e-9`` by
default; ``0`` when the batches are the same, as in a rebuild). They are kept as
log2 of the sums, so the tolerance bounds the difference of the logs: about
``0.69 x tolerance`` of the sums, relatively. The other sorted sets hold times,
which do not depend on the batches.
A statistic shard's watermark is the last offset of the last batch that touched
it, which also depends on the batches: it must lie between the last
contributing offset (the oracle with one record per batch) and the partition's
last offset, unless ``exact_marks`` asks for equality.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from faults.snapshot import Snapshot
from recstream.model.state import UserState

Kind = Literal["lost", "double", "mismatch"]
SCORE_TOLERANCE = 1e-9
MAX_EXAMPLES = 12

USER_GROUPS: dict[str, Callable[[UserState], Any]] = {
    "counters": lambda s: (
        s.total_events,
        s.counts,
        s.hours,
        s.weekdays,
        s.categories,
        s.unique_products,
        s.unique_groups,
        s.first_at,
        s.last_at,
    ),
    "ratings": lambda s: (
        {k: v.to_list() for k, v in s.items.items()},
        {k: list(v) for k, v in s.category_prefs.items()},
        list(s.activity),
        s.prices.to_list(),
    ),
    "sessions": lambda s: s.session.to_list() if s.session else None,
    "history": lambda s: [e.to_list() for e in s.history],
    "dedupe": lambda s: s.dedupe,
    "watermark": lambda s: s.watermark,
    # attribution: the lists shown and the events waiting for theirs
    "attribution": lambda s: ([x.to_list() for x in s.shown], [x.to_list() for x in s.pending]),
}


@dataclass(frozen=True, slots=True)
class Difference:
    kind: Kind
    area: str
    key: str
    detail: str


@dataclass
class CheckResult:
    differences: list[Difference] = field(default_factory=list)
    compared: dict[str, int] = field(default_factory=dict)
    max_score_deviation: float = 0.0  # largest score difference within the tolerance

    def count(self, kind: Kind) -> int:
        return sum(1 for d in self.differences if d.kind == kind)

    @property
    def lost(self) -> int:
        return self.count("lost")

    @property
    def double_counted(self) -> int:
        return self.count("double")

    @property
    def mismatched(self) -> int:
        return self.count("mismatch")

    @property
    def exact(self) -> bool:
        return not self.differences

    def summary(self) -> dict[str, Any]:
        return {
            "exact": self.exact,
            "nothing_lost": self.lost == 0,
            "nothing_double_counted": self.double_counted == 0,
            "lost": self.lost,
            "double_counted": self.double_counted,
            "mismatched": self.mismatched,
            "compared": dict(self.compared),
            "max_score_deviation": self.max_score_deviation,
            "examples": [
                f"{d.kind} {d.area} {d.key}: {d.detail}" for d in self.differences[:MAX_EXAMPLES]
            ],
        }

    def describe(self) -> str:
        verdict = "exact match" if self.exact else "DIFFERS"
        counts = ", ".join(f"{k} {v}" for k, v in self.compared.items())
        return (
            f"{verdict}: lost {self.lost}, double-counted {self.double_counted}, "
            f"mismatched {self.mismatched} (compared {counts})"
        )


def area_of(key: str) -> str:
    """The structure a key belongs to, from its name (see docs/keyspace.md)."""
    rules = [
        ("{wm}:partitions:", "partition watermark"),
        (":wm:", "shard watermark"),
        (":tr1:", "transitions"),
        (":tr2:", "transitions"),
        (":cov:", "co-visitation"),
        (":ucf:", "co-engagement"),
        (":popc:", "category popularity"),
        (":isess:", "session index"),
        (":sitems:", "session items"),
        (":catalog:", "catalog"),
        (":erasures", "erasures"),
        (":out:", "recommendation outcomes"),
        (":outv:", "recommendation outcomes"),
    ]
    for needle, area in rules:
        if needle in key:
            return area
    if key.endswith(":pop"):
        return "popularity"
    if key.endswith(":icat"):
        return "item categories"
    return "other"


def _differing(a: Any, b: Any) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted({k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}, key=str)
        return "fields " + ", ".join(str(k) for k in keys[:4]) + ("..." if len(keys) > 4 else "")
    text = f"expected {a!r}, found {b!r}"
    return text if len(text) < 200 else text[:200] + "..."


def compare_users(
    expected: dict[str, UserState],
    actual: dict[str, UserState],
    result: CheckResult,
    *,
    ignore: frozenset[str] = frozenset(),
) -> None:
    add = result.differences.append
    for user in sorted(expected.keys() - actual.keys()):
        add(Difference("lost", "user", user, f"{expected[user].total_events} events missing"))
    for user in sorted(actual.keys() - expected.keys()):
        add(Difference("double", "user", user, f"{actual[user].total_events} unexpected events"))
    for user in sorted(expected.keys() & actual.keys()):
        want, got = expected[user], actual[user]
        if got.total_events < want.total_events:
            add(Difference("lost", "user", user, f"{got.total_events}/{want.total_events} events"))
        elif got.total_events > want.total_events:
            add(
                Difference("double", "user", user, f"{got.total_events}/{want.total_events} events")
            )
        for name, view in USER_GROUPS.items():
            if name in ignore or (got.total_events != want.total_events and name == "counters"):
                continue
            if view(want) != view(got):
                add(Difference("mismatch", f"user {name}", user, _differing(view(want), view(got))))
    result.compared["users"] = len(expected)


def _close(a: float, b: float, tolerance: float) -> bool:
    return a == b or abs(a - b) <= tolerance


def compare_zsets(
    expected: dict[str, dict[str, float]],
    actual: dict[str, dict[str, float]],
    result: CheckResult,
    tolerance: float,
) -> None:
    add = result.differences.append
    members = 0
    for key in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(key, {}), actual.get(key, {})
        area = area_of(key)
        members += len(want)
        for member in sorted(want.keys() - got.keys()):
            add(Difference("lost", area, key, f"member {member} missing"))
        for member in sorted(got.keys() - want.keys()):
            add(Difference("double", area, key, f"unexpected member {member}"))
        for member in sorted(want.keys() & got.keys()):
            a, b = want[member], got[member]
            if a != b and _close(a, b, tolerance):
                result.max_score_deviation = max(result.max_score_deviation, abs(a - b))
            elif not _close(a, b, tolerance):
                kind: Kind = "lost" if b < a else "double"
                add(Difference(kind, area, key, f"{member}: expected {a!r}, found {b!r}"))
    result.compared["sorted sets"] = len(expected)
    result.compared["members"] = members


def compare_marks(
    expected: Snapshot, actual: Snapshot, result: CheckResult, *, exact_marks: bool
) -> set[str]:
    """Partition and shard watermarks; returns the hash keys it handled."""
    add = result.differences.append
    handled: set[str] = set()
    ceilings: dict[tuple[str, str], int] = {}
    for key, marks in expected.hashes.items():
        if area_of(key) == "partition watermark":
            topic = key.split("{wm}:partitions:", 1)[1]
            handled.add(key)
            got = actual.hashes.get(key, {})
            for partition, offset in marks.items():
                ceilings[(topic, partition)] = int(offset)
                found = int(got.get(partition, -1))
                if found != int(offset):
                    kind: Kind = "lost" if found < int(offset) else "mismatch"
                    add(
                        Difference(
                            kind, "partition watermark", key, f"[{partition}] {found} != {offset}"
                        )
                    )
    for key in expected.hashes.keys() | actual.hashes.keys():
        if area_of(key) != "shard watermark":
            continue
        handled.add(key)
        topic = key.split(":wm:", 1)[1]
        want, got = expected.hashes.get(key, {}), actual.hashes.get(key, {})
        for partition in sorted(want.keys() | got.keys()):
            floor, found = int(want.get(partition, -1)), int(got.get(partition, -1))
            ceiling = floor if exact_marks else ceilings.get((topic, partition), floor)
            if found < floor:
                add(Difference("lost", "shard watermark", key, f"[{partition}] {found} < {floor}"))
            elif found > ceiling or (floor < 0 <= found):
                add(
                    Difference(
                        "mismatch",
                        "shard watermark",
                        key,
                        f"[{partition}] {found} not in [{floor}, {ceiling}]",
                    )
                )
    result.compared["watermark hashes"] = len(handled)
    return handled


def compare_plain(
    expected: dict[str, Any], actual: dict[str, Any], result: CheckResult, what: str
) -> None:
    add = result.differences.append
    for key in sorted(expected.keys() - actual.keys()):
        add(Difference("lost", area_of(key), key, "key missing"))
    for key in sorted(actual.keys() - expected.keys()):
        add(Difference("double", area_of(key), key, "unexpected key"))
    for key in sorted(expected.keys() & actual.keys()):
        if expected[key] != actual[key]:
            add(Difference("mismatch", area_of(key), key, _differing(expected[key], actual[key])))
    result.compared[what] = len(expected)


def compare(
    expected: Snapshot,
    actual: Snapshot,
    *,
    tolerance: float = SCORE_TOLERANCE,
    exact_marks: bool = False,
    ignore_watermarks: bool = False,
) -> CheckResult:
    """Every difference between the expected and the actual keyspace content."""
    result = CheckResult()
    ignore = frozenset({"watermark"} if ignore_watermarks else ())
    compare_users(expected.users, actual.users, result, ignore=ignore)
    compare_zsets(expected.zsets, actual.zsets, result, tolerance)
    handled: set[str] = set()
    if ignore_watermarks:
        handled = {
            k for k in expected.hashes.keys() | actual.hashes.keys() if "watermark" in area_of(k)
        }
    else:
        handled = compare_marks(expected, actual, result, exact_marks=exact_marks)
    compare_plain(
        {k: v for k, v in expected.hashes.items() if k not in handled},
        {k: v for k, v in actual.hashes.items() if k not in handled},
        result,
        "hashes",
    )
    compare_plain(expected.strings, actual.strings, result, "strings")
    return result
