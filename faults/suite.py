"""The scenario registry and the suite runner."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faults.report import ScenarioResult, machine, write_report
from faults.scenarios import (
    backlog,
    broker,
    crash,
    hotkeys,
    inputs,
    outages,
    rebalance,
    rebuild,
)
from faults.scenarios.common import Scenario, SuiteOptions

log = logging.getLogger("faults")


@dataclass(frozen=True)
class Entry:
    name: str
    run: Scenario
    budget_s: float  # the scenario is cancelled after this long (full mode)
    on_demand: bool = False  # only with --only (the soak)


SCENARIOS: tuple[Entry, ...] = (
    Entry("kill9", crash.kill9, 600),
    Entry("sigterm", crash.sigterm, 600),
    Entry("broker-restart", broker.broker_restart, 600),
    Entry("redis-stop", outages.redis_stop, 600),
    Entry("redis-hang", outages.redis_hang, 600),
    Entry("redis-lost", rebuild.redis_lost, 600),
    Entry("redis-primary-killed", outages.redis_primary_killed, 600),
    Entry("poison", inputs.poison, 600),
    Entry("duplicates", inputs.duplicates, 600),
    Entry("lateness", inputs.lateness, 600),
    Entry("hot-keys", hotkeys.hot_keys, 900),
    Entry("rebalance", rebalance.rebalance, 900),
    Entry("backlog", backlog.backlog, 1200),
    Entry("soak", backlog.soak, 900, on_demand=True),
)


def entries(only: Sequence[str] = ()) -> list[Entry]:
    known = {e.name: e for e in SCENARIOS}
    unknown = [n for n in only if n not in known]
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; known: {sorted(known)}")
    if only:
        return [known[n] for n in only]
    return [e for e in SCENARIOS if not e.on_demand]


def _commit() -> str:
    """The code under test: the commit of the folder the suite was loaded from."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except OSError:
        return "unknown"
    return found.stdout.strip() or "unknown (no git checkout)"


def _dump_tasks() -> str:
    """Where every task waits (shown when a scenario overruns its budget)."""
    lines = []
    for task in asyncio.all_tasks():
        where: list[str] = []
        awaited: Any = task.get_coro()
        while awaited is not None and len(where) < 30:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
            if frame is not None:
                where.append(f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
        lines.append(f"{task.get_name()}: {' -> '.join(where)}")
    return "\n".join(lines)


async def run_one(entry: Entry, options: SuiteOptions) -> ScenarioResult:
    started = time.monotonic()
    budget = entry.budget_s + (options.soak_seconds * 1.5 if entry.on_demand else 0.0)
    watchdog = asyncio.get_running_loop().call_later(
        budget - 5, lambda: log.error("scenario %s overruns:\n%s", entry.name, _dump_tasks())
    )
    try:
        return await asyncio.wait_for(entry.run(options), budget)
    except Exception as exc:
        result = ScenarioResult(entry.name, entry.name)
        result.error = f"{type(exc).__name__}: {exc}"
        log.error("scenario %s failed:\n%s", entry.name, traceback.format_exc())
        return result.finish(started)
    finally:
        watchdog.cancel()


async def run_suite(
    names: Sequence[str], options: SuiteOptions, out: Path, command: str
) -> list[ScenarioResult]:
    results: list[ScenarioResult] = []
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "mode": "quick" if options.quick else "full",
        "runtime": options.runtime,
        "redis": "a 3-primary Redis Cluster" if options.redis_cluster else "one redis-server",
        "command": command,
        "commit": _commit(),
    }
    for entry in entries(names):
        log.info("scenario %s: starting", entry.name)
        result = await run_one(entry, options)
        log.info(
            "scenario %s: %s in %.0f s %s",
            entry.name,
            "pass" if result.passed else "FAIL",
            result.duration_s,
            result.failures,
        )
        results.append(result)
        write_report(results, out, meta)
    return results
