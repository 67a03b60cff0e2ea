"""The consumer's core compiled with mypyc against the same source interpreted:
``uv run python -m bench.compiled_core``.

The wheel of ``shared/`` is built with its mypyc hook on (``HATCH_BUILD_HOOK_ENABLE_MYPYC``,
as the consumer's image builds it; the modules are listed in ``shared/pyproject.toml``),
from a copy of the folder so that no compiled module lands beside the sources, and
unpacked into a folder. The benchmark workload (:mod:`bench.workload`, with a list of
recommendations shown before 30% of the views, so that attribution runs too; the same
log for both) is then applied through the batch-apply core into a memory store by child
processes that import the core from either the sources or that folder, blocks
alternated so that the machine's noise falls on both alike. Printed: records per
CPU-second of each (median of the blocks), the ratio, and whether the two stores end
bit for bit the same (a digest of every user state with its watermark, statistic and
partition watermark); the exit status is 1 when they do not.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

from bench.attribution_cost import records, with_lists
from bench.context import DEFAULT_DATASETS
from bench.workload import generate, load_sessions
from recstream.apply.batch import apply_batch
from recstream.model.config import CoreConfig
from recstream.store.memory import MemoryStore

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "shared" / "src"


class Block(TypedDict):
    """What one child process reports."""

    records: int
    cpu: float
    digest: str
    compiled: bool  # the fold came from an extension module


def build_compiled(into: Path) -> float:
    """The core's wheel built with mypyc, unpacked into ``into``; the build's seconds."""
    with tempfile.TemporaryDirectory(prefix="recstream-mypyc-") as scratch:
        project = Path(scratch) / "shared"
        shutil.copytree(
            ROOT / "shared", project, ignore=shutil.ignore_patterns("__pycache__", "*.so")
        )
        uv = os.environ.get("UV") or shutil.which("uv")  # ``uv run`` sets UV
        if uv is None:
            raise SystemExit("the compiled core is built with uv, and no uv was found")
        build = [uv, "build", "--wheel", "--python", sys.executable, "--out-dir", scratch]
        started = time.perf_counter()
        _run([*build, str(project)], env={**os.environ, "HATCH_BUILD_HOOK_ENABLE_MYPYC": "true"})
        seconds = time.perf_counter() - started
        (wheel,) = Path(scratch).glob("recstream-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(into)
    return seconds


def digest(store: MemoryStore) -> str:
    """A digest of everything ``store`` holds: user states with their watermarks,
    statistics, partition watermarks."""
    h = hashlib.sha256()
    for user in sorted(store.users):
        state = store.users[user]
        h.update(f"{user}@{state.watermark}".encode())
        h.update(state.to_stored())
    h.update(repr(sorted((t, sorted(p.items())) for t, p in store.watermarks.items())).encode())
    for table in (store.zsets, store.hashes):
        for key in sorted(table):
            h.update(key.encode())
            h.update(repr(sorted(table[key].items())).encode())
    for key in sorted(store.strings):
        h.update(f"{key}={store.strings[key]}".encode())
    return h.hexdigest()


async def apply_log(users: int, end: float, datasets: Path) -> Block:
    """The workload, with a list shown before 30% of the views (so that attribution runs),
    applied to a fresh memory store."""
    workload = generate(load_sessions(datasets), users, end=end, span_seconds=86_400)
    log = with_lists(workload.events, 0.3, seed=7)
    batches = records(log, int(end * 1000) + 60_000)
    config = CoreConfig(decay_landmark=end - 30 * 86_400)
    store = MemoryStore()
    started = time.process_time()
    for batch in batches:
        report = await apply_batch(store, batch, config)
        assert not report.dead_letters, report.dead_letters[:1]
    cpu = time.process_time() - started
    fold_module = sys.modules["recstream.model.fold"].__file__ or ""
    return {
        "records": len(log),
        "cpu": cpu,
        "digest": digest(store),
        "compiled": not fold_module.endswith(".py"),
    }


def child(path: Path, users: int, end: float, datasets: Path) -> Block:
    """One block, in a fresh process importing the core from ``path``."""
    pythonpath = os.pathsep.join([str(path), str(ROOT)])
    env = {**os.environ, "PYTHONPATH": pythonpath, "PYTHONHASHSEED": "0"}
    argv = ["--child", "--users", str(users), "--end", repr(end), "--datasets", str(datasets)]
    out = _run([sys.executable, "-m", "bench.compiled_core", *argv], env=env, cwd=ROOT)
    result: Block = json.loads(out.strip().splitlines()[-1])
    return result


def _run(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    """``argv``'s standard output; its standard error in the error when it fails."""
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{argv[0]} exited {done.returncode}: {done.stderr[-4000:]}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument(
        "--build",
        type=Path,
        help="compile into this new folder and keep it (PYTHONPATH=BUILD runs anything on it)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--end", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(apply_log(args.users, args.end, args.datasets))))
        return
    end = datetime.now(UTC).timestamp() - 60
    with tempfile.TemporaryDirectory(prefix="recstream-mypyc-") as scratch:
        build = args.build or Path(scratch)
        seconds = build_compiled(build)
        compiled = list(build.glob("recstream/**/*.so"))
        print(f"built the core, {len(compiled)} modules compiled, into {build} in {seconds:.0f} s")
        runs: dict[str, list[Block]] = {"interpreted": [], "compiled": []}
        paths = {"interpreted": SOURCE, "compiled": build}
        for _ in range(args.blocks):
            for name, path in paths.items():
                runs[name].append(child(path, args.users, end, args.datasets))
    if not all(r["compiled"] for r in runs["compiled"]):
        raise SystemExit("the compiled build was not imported")
    if any(r["compiled"] for r in runs["interpreted"]):
        raise SystemExit("the sources' run imported a compiled module")
    count = runs["interpreted"][0]["records"]
    rates = {name: statistics.median(count / r["cpu"] for r in rs) for name, rs in runs.items()}
    print(
        f"{count:,} records (events of {args.users:,} users and the lists shown to them), "
        f"{args.blocks} blocks of each, alternated"
    )
    for name, rate in rates.items():
        print(f"  {name}: {rate:,.0f} records per CPU-second (median)")
    print(f"  ratio compiled / interpreted: {rates['compiled'] / rates['interpreted']:.3f}")
    digests = {r["digest"] for rs in runs.values() for r in rs}
    print(f"  the stores are {'bit for bit the same' if len(digests) == 1 else 'DIFFERENT'}")
    if len(digests) != 1:
        sys.exit(1)


if __name__ == "__main__":
    main()
