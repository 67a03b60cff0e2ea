"""Benchmark 4: rebuilding Redis from an event file with ``recstream replay ... --to redis``.

A realistic workload (:mod:`bench.workload`; 100k users in a full run) is
written as event-contract JSON Lines and replayed by the real command, as
its own process, into a fresh Redis. The figure is the command's own
events/s (file reading, decoding, the batch-apply core, the Redis script),
with its CPU seconds and Redis's. The limits next to it are measured on
the first :data:`LIMIT_SAMPLE` records of the same log: the core alone (in
memory) and the minimal Lua write of the commits it produced.

The rebuilt Redis stays up for the memory benchmark when both run.
"""

from __future__ import annotations

import asyncio
import re
import resource
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from bench.context import PARTITIONS, BenchContext
from bench.limits import fold_only, lua_write
from bench.results import BenchResult, Figure, Table
from bench.stack import Rig, child_env, cpu_seconds
from bench.workload import generate, write_jsonl
from recstream.contract.events import decode_event
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.offline.evaluation.records import RecordLog

TARGET_RATE = 50_000
LIMIT_SAMPLE = 100_000
REPLAYED = re.compile(r"replayed ([\d,]+) events .* in ([\d.]+)s: ([\d,]+) events/s")


@dataclass
class Replayed:
    """A Redis holding a replayed workload (for the memory benchmark)."""

    rig: Rig
    prefix: str
    users: int
    items: int
    events: int
    used_memory: int  # growth of used_memory over the replay
    rate: float


def recstream_argv() -> list[str]:
    script = Path(sys.executable).parent / "recstream"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from recstream_cli.main import cli; cli()"]


async def replay(ctx: BenchContext, rig: Rig, users: int) -> tuple[Replayed, dict[str, float]]:
    """Generate, write and replay ``users`` users' events into ``rig``'s Redis."""
    workload = generate(ctx.sessions, users, end=time.time())
    path = rig.workdir / "events.jsonl"
    write_jsonl(workload, path)
    prefix, topic = f"r{uuid.uuid4().hex[:8]}", "interactions"
    redis = Redis.from_url(rig.redis_url)
    before = int((await redis.info("memory"))["used_memory"])
    argv = [
        *recstream_argv(),
        "replay",
        str(path),
        "--to",
        "redis",
        "--no-erasure-log",  # the bench's own Redis: no erasures to restore
        "--format",
        "jsonl",
        "--topic",
        topic,
        "--partitions",
        str(PARTITIONS),
        "--redis-url",
        rig.redis_url,
        "--key-prefix",
        prefix,
    ]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    redis_cpu = cpu_seconds(rig.redis_pid)
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv, env=child_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    wall = time.perf_counter() - started
    redis_cpu = cpu_seconds(rig.redis_pid) - redis_cpu
    used = int((await redis.info("memory"))["used_memory"]) - before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    await redis.aclose()
    text = output.decode(errors="replace")
    found = REPLAYED.search(text)
    if process.returncode != 0 or found is None:
        raise RuntimeError(f"recstream replay failed ({process.returncode}): {text[-1500:]}")
    events = int(found.group(1).replace(",", ""))
    rate = float(found.group(3).replace(",", ""))
    replayed = Replayed(rig, prefix, users, workload.items, events, used, rate)
    return replayed, {
        "wall": wall,
        "cpu": cpu,
        "redis_cpu": redis_cpu,
        "seconds": float(found.group(2)),
    }


async def limits(path: Path, redis_url: str, redis_pid: int) -> dict[str, float]:
    """Rates of the core alone and of the minimal Lua write on the log's first records."""
    log = RecordLog("interactions", PARTITIONS)
    records = []
    started = time.perf_counter()
    with path.open("rb") as handle:
        for line in handle:
            records.append(log.append(decode_event(line.rstrip(b"\n"))))
            if len(records) >= LIMIT_SAMPLE:
                break
    parse = len(records) / (time.perf_counter() - started)
    folded = await fold_only(
        records, 2000, CoreConfig(), Keyspace(prefix=f"l{uuid.uuid4().hex[:6]}")
    )
    lua = await lua_write(redis_url, folded.commits, len(records), redis_pid)
    return {
        "parse": parse,
        "fold": folded.rate,
        "lua": lua.rate,
        "lua_per_redis_cpu": lua.per_redis_cpu,
        "sample": len(records),
    }


async def run(ctx: BenchContext) -> BenchResult:
    result = BenchResult("rebuild", "Rebuild Redis from an event file (recstream replay)")
    users = ctx.pick(3_000, 60_000)
    with ctx.rig("rebuild", keep=True) as rig:
        replayed, timing = await replay(ctx, rig, users)
        ctx.shared["replayed"] = replayed
        bounds = await limits(rig.workdir / "events.jsonl", rig.redis_url, rig.redis_pid)
    rate = replayed.rate
    result.add(
        Figure(
            "rebuild (recstream replay --to redis)",
            rate,
            "events/s",
            bounds["lua"],
            f"minimal Lua write of the same commits (first {bounds['sample']:,.0f} records)",
            f">= {TARGET_RATE:,} events/s",
            rate >= TARGET_RATE,
        )
    )
    result.add(
        Figure(
            "rebuild vs the core alone",
            rate,
            "events/s",
            bounds["fold"],
            "fold only, in memory (same sample)",
        )
    )
    per_cpu = replayed.events / timing["cpu"] if timing["cpu"] else 0.0
    result.tables.append(
        Table(
            f"{replayed.events:,} events of {users:,} users ({replayed.items:,} items)",
            ["path", "events/s"],
            [
                ["recstream replay --to redis (the command's own figure)", f"{rate:,.0f}"],
                [
                    "same, wall clock incl. process start",
                    f"{replayed.events / timing['wall']:,.0f}",
                ],
                ["same, per CPU-second of the replay process", f"{per_cpu:,.0f}"],
                ["read + decode the file only", f"{bounds['parse']:,.0f}"],
                ["fold only (core, in-memory store)", f"{bounds['fold']:,.0f}"],
                ["Redis: minimal Lua batch write", f"{bounds['lua']:,.0f}"],
                ["Redis: same, per redis-server CPU-second", f"{bounds['lua_per_redis_cpu']:,.0f}"],
            ],
        )
    )
    result.notes.append(
        f"Replay process {timing['cpu']:.1f} CPU-s, Redis {timing['redis_cpu']:.1f} CPU-s in "
        f"{timing['wall']:.1f} s of wall clock."
    )
    return result
