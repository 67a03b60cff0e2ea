"""The dead-letter check: every bad record in the DLQ once, with its bytes, reason and source."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from faults.driver import read_log
from faults.poison import expected_reason
from recstream.apply.batch import DeadLetter, RawRecord


@dataclass
class DeadLetterCheck:
    expected: int = 0
    found: int = 0
    copies: int = 0  # extra copies of a letter (a redelivered batch publishes its letters again)
    problems: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return not self.problems and self.found == self.expected and self.copies == 0


def compare_dead_letters(
    expected: Sequence[DeadLetter],
    letters: Sequence[RawRecord],
    tags: Mapping[tuple[int, int], str],
) -> DeadLetterCheck:
    check = DeadLetterCheck(expected=len(expected))
    by_source: dict[tuple[int, int], list[RawRecord]] = {}
    for letter in letters:
        headers = {k: v.decode(errors="replace") for k, v in letter.headers}
        try:
            source = (int(headers["dlq.source.partition"]), int(headers["dlq.source.offset"]))
        except (KeyError, ValueError):
            check.problems.append(f"a dead letter without its source headers: {headers}")
            continue
        by_source.setdefault(source, []).append(letter)
    reasons: Counter[str] = Counter()
    for want in expected:
        source = (want.record.partition, want.record.offset)
        found = by_source.pop(source, [])
        if not found:
            check.problems.append(f"{source} ({want.reason}) missing from the DLQ")
            continue
        check.found += 1
        check.copies += len(found) - 1
        letter = found[0]
        headers = {k: v.decode(errors="replace") for k, v in letter.headers}
        reason = headers.get("dlq.reason", "")
        reasons[reason] += 1
        tagged = expected_reason(tags.get(source, ""))
        if reason != want.reason or (tagged is not None and tagged != reason):
            check.problems.append(
                f"{source}: reason {reason!r}, oracle {want.reason!r}, injected {tagged!r}"
            )
        if (letter.key, letter.value) != (want.record.key, want.record.value):
            check.problems.append(f"{source}: the DLQ bytes are not the original bytes")
        if headers.get("dlq.source.topic") != want.record.topic:
            check.problems.append(f"{source}: dlq.source.topic {headers.get('dlq.source.topic')!r}")
    check.problems += [f"{source}: in the DLQ but not a bad record" for source in sorted(by_source)]
    check.reasons = dict(sorted(reasons.items()))
    return check


async def read_dead_letters(
    bootstrap: str, topic: str, expected: int, within: float = 30.0
) -> list[RawRecord]:
    return await read_log(bootstrap, topic, expected, within=within, settle=1.5)
