"""What every benchmark gets: the run's options, folders, real sessions and shared figures."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stack import Rig
from bench.workload import RealSession, load_sessions

DEFAULT_DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
PARTITIONS = 12


@dataclass
class BenchContext:
    out: Path
    workdir: Path
    datasets: Path = DEFAULT_DATASETS
    quick: bool = False
    runtimes: tuple[str, ...] = ("aiokafka", "faust")
    api_server: str = "uvicorn"  # the ASGI server of the api benchmark (bench.stack.API_SERVERS)
    api_workers: int = 1
    # figures one benchmark leaves for a later one in the same run (e.g. the max ingest rate)
    shared: dict[str, Any] = field(default_factory=dict)
    _sessions: list[RealSession] | None = None
    _rigs: list[Rig] = field(default_factory=list)

    def pick(self, quick: Any, full: Any) -> Any:
        return quick if self.quick else full

    @property
    def sessions(self) -> list[RealSession]:
        if self._sessions is None:
            self._sessions = load_sessions(self.datasets)
        return self._sessions

    def plot(self, name: str) -> tuple[Path, str]:
        """Where to save a plot, and its path relative to the results folder."""
        (self.out / "plots").mkdir(parents=True, exist_ok=True)
        return self.out / "plots" / f"{name}.png", f"plots/{name}.png"

    @contextlib.contextmanager
    def rig(
        self, name: str, *, broker: bool = True, keep: bool = False, redis_cluster: bool = False
    ) -> Iterator[Rig]:
        """A fresh Redis (one server, or a 3-primary cluster) and broker; closed at the end
        unless ``keep`` (then by :meth:`close`)."""
        rig = Rig(self.workdir / name)
        try:
            rig.start(broker=broker, redis_cluster=redis_cluster)
            yield rig
        except BaseException:
            rig.close()
            raise
        if keep:
            self._rigs.append(rig)
        else:
            rig.close()

    def close(self) -> None:
        for rig in self._rigs:
            rig.close()
        self._rigs.clear()
