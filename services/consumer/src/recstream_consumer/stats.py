"""The periodic ``consumer stats`` log line: changes at INFO, heartbeats at DEBUG.

Every ``STATS_INTERVAL_SECONDS`` the consumer takes a :class:`StatsSnapshot` (its
counters, the partitions it owns and rebuilds, its total lag, the live quality
window) and :class:`StatsLog` writes it as one line. The line is at INFO when
something changed since the previous line (records were read, applied, dead-lettered
or retried, the assignment or the partitions being rebuilt changed, the lag crossed
into another decade: 0, 1-9, 10-99, ...); an idle consumer's unchanged line is at
DEBUG, so a quiet consumer does not write a line every 30 s.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from recstream_consumer.quality import RollingQuality

log = logging.getLogger(__name__)

Partition = tuple[str, int]


def lag_band(lag: int) -> int:
    """0 for no lag, else the number of digits: a change of band is worth a line."""
    return len(str(lag)) if lag > 0 else 0


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    counters: tuple[tuple[str, int], ...]  # ConsumerCounters.as_dict(), in order
    partitions: frozenset[Partition]
    rebuilding: frozenset[Partition]
    lag: int  # all owned partitions together
    quality: str = ""  # " quality_samples=... hit_rate@k=... mrr@k=..." or nothing

    @classmethod
    def of(
        cls,
        counters: Mapping[str, int],
        partitions: Iterable[Partition],
        rebuilding: Iterable[Partition],
        lag: int,
        quality: RollingQuality | None = None,
    ) -> StatsSnapshot:
        window = ""
        if quality is not None and quality.samples:
            window = (
                f" quality_samples={quality.samples} hit_rate@{quality.k}={quality.hit_rate:.3f}"
                f" mrr@{quality.k}={quality.mrr:.3f}"
            )
        return cls(
            tuple(counters.items()), frozenset(partitions), frozenset(rebuilding), lag, window
        )

    def summary(self) -> str:
        """``batches=3 records=300 ... partitions=4 rebuilding=0 lag=12 quality_samples=...``."""
        counts = " ".join(f"{name}={value}" for name, value in self.counters)
        return (
            f"{counts} partitions={len(self.partitions)} rebuilding={len(self.rebuilding)}"
            f" lag={self.lag}{self.quality}"
        )

    def changed_since(self, previous: StatsSnapshot | None) -> bool:
        """Anything worth an INFO line since ``previous`` (always, for the first line)."""
        if previous is None:
            return True
        return (
            self.counters != previous.counters
            or self.partitions != previous.partitions
            or self.rebuilding != previous.rebuilding
            or lag_band(self.lag) != lag_band(previous.lag)
        )


class StatsLog:
    """Writes snapshots as ``consumer stats: ...`` lines, INFO only when something changed."""

    def __init__(self) -> None:
        self._last: StatsSnapshot | None = None

    def write(self, snapshot: StatsSnapshot) -> None:
        level = logging.INFO if snapshot.changed_since(self._last) else logging.DEBUG
        self._last = snapshot
        log.log(level, "consumer stats: %s", snapshot.summary())
