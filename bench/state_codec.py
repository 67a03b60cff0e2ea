"""What a binary user state would save: ``uv run --with msgspec python -m bench.state_codec``.

The user state is stored as zlib-compressed JSON (``UserState.to_stored``, 40% of Redis in
the memory benchmark). This measures the binary formats that would replace it, on the
states the benchmark workload leaves (:mod:`bench.workload`, lists shown before 30% of
the views so that attribution state is there too, folded through the batch-apply core
into a memory store), each against the stored format:

- ``json``: the same document uncompressed;
- ``msgpack``: the same tree as MessagePack (msgspec);
- ``msgpack + zlib``: that, compressed at the stored format's level;
- ``msgpack, relative times + zlib``: every timestamp as integer microseconds after the
  user's first event (where that is exact; the others stay floats), and the 16-hex-digit
  dedupe tokens as 8 bytes: the "binary state with relative integer timestamps" of
  docs/performance.md. Decoding it gives back the original tree, value for value (checked).

Printed per format: mean and median bytes per state, the ratio of the means to the stored
format's, and the CPU per encode and per decode of the tree (``time.process_time``, medians
of 5 passes over every state). msgspec is not a dependency of the project; pull it in for
the run as above.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.attribution_cost import records, with_lists
from bench.context import DEFAULT_DATASETS
from bench.workload import generate, load_sessions
from recstream.apply.batch import apply_batch
from recstream.model.config import CoreConfig
from recstream.model.state import STORED_COMPRESSION_LEVEL, UserState
from recstream.store.memory import MemoryStore

Tree = dict[str, Any]
Codec = tuple[Callable[[Tree], bytes], Callable[[bytes], Tree]]


async def states(datasets: Path, users: int) -> list[UserState]:
    end = 1_765_000_000.0
    workload = generate(load_sessions(datasets), users, end=end, span_seconds=86_400)
    batches = records(with_lists(workload.events, 0.3, seed=7), int(end * 1000) + 60_000)
    store, config = MemoryStore(), CoreConfig(decay_landmark=end - 30 * 86_400)
    for batch in batches:
        await apply_batch(store, batch, config)
    return list(store.users.values())


def _times(tree: Tree, t: Callable[[Any], Any]) -> Tree:
    """``tree`` with ``t`` applied to every timestamp of the stored format, but those of the
    dedupe tokens (``dd``), whose map each direction reshapes itself."""
    out = dict(tree)
    out["la"] = t(tree["la"])
    out["act"] = [tree["act"][0], t(tree["act"][1])]
    out["it"] = {k: [v[0], t(v[1]), v[2], t(v[3]), v[4]] for k, v in tree["it"].items()}
    out["hist"] = [[*e[:2], t(e[2]), *e[3:]] for e in tree["hist"]]
    out["cp"] = {k: [v[0], t(v[1])] for k, v in tree["cp"].items()}
    if tree["se"]:
        out["se"] = [tree["se"][0], t(tree["se"][1]), t(tree["se"][2]), *tree["se"][3:]]
    if "sh" in tree:
        out["sh"] = [[*s[:2], t(s[2]), *s[3:]] for s in tree["sh"]]
    if "pd" in tree:
        out["pd"] = [[*p[:3], t(p[3]), *p[4:]] for p in tree["pd"]]
    return out


def _base(tree: Tree) -> int:
    """The user's first event in integer microseconds: what relative times count from."""
    return round(tree["fa"] * 1e6) if tree["fa"] is not None else 0


def _to_relative(tree: Tree) -> Tree:
    """``tree`` with its timestamps as microseconds after ``fa`` (see the module docstring)."""
    base = _base(tree)

    def t(x: float | None) -> float | int | None:
        if x is None:
            return None
        n = round(x * 1e6)
        return n - base if n / 1e6 == x else x

    out = _times(tree, t)
    out["dd"] = [[_token(k), t(v)] for k, v in tree["dd"].items()]
    return out


def _from_relative(tree: Tree) -> Tree:
    base = _base(tree)

    def t(x: float | int | None) -> float | None:
        return (base + x) / 1e6 if isinstance(x, int) else x

    out = _times(tree, t)
    out["dd"] = {(k.hex() if isinstance(k, bytes) else k): t(v) for k, v in tree["dd"]}
    return out


def _token(key: str) -> str | bytes:
    """A dedupe token of 16 lower-case hex digits as its 8 bytes; anything else as it is."""
    if len(key) == 16 and key == key.lower():
        try:
            return bytes.fromhex(key)
        except ValueError:
            return key
    return key


def codecs() -> dict[str, Codec]:
    try:
        import msgspec  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise SystemExit(
            "bench.state_codec needs msgspec: uv run --with msgspec python -m bench.state_codec"
        ) from exc

    level = STORED_COMPRESSION_LEVEL
    pack, unpack = msgspec.msgpack.Encoder().encode, msgspec.msgpack.Decoder().decode
    return {
        "stored (zlib JSON)": (
            lambda tree: zlib.compress(orjson.dumps(tree), level),
            lambda raw: orjson.loads(zlib.decompress(raw)),
        ),
        "json": (orjson.dumps, orjson.loads),
        "msgpack": (pack, unpack),
        "msgpack + zlib": (
            lambda tree: zlib.compress(pack(tree), level),
            lambda raw: unpack(zlib.decompress(raw)),
        ),
        "msgpack, relative times + zlib": (
            lambda tree: zlib.compress(pack(_to_relative(tree)), level),
            lambda raw: _from_relative(unpack(zlib.decompress(raw))),
        ),
    }


def measure(trees: list[Tree], passes: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, (encode, decode) in codecs().items():
        blobs = [encode(tree) for tree in trees]
        decoded = [decode(blob) for blob in blobs]
        # lossless: the JSON of every decoded tree is the original's
        assert all(orjson.dumps(a) == orjson.dumps(b) for a, b in zip(trees, decoded, strict=True))
        encoding, decoding = [], []
        for _ in range(passes):
            started = time.process_time()
            for tree in trees:
                encode(tree)
            encoding.append((time.process_time() - started) / len(trees))
            started = time.process_time()
            for blob in blobs:
                decode(blob)
            decoding.append((time.process_time() - started) / len(trees))
        sizes = [len(blob) for blob in blobs]
        rows.append(
            {
                "format": name,
                "mean bytes": round(statistics.mean(sizes), 1),
                "median bytes": statistics.median(sizes),
                "encode us": round(1e6 * statistics.median(encoding), 1),
                "decode us": round(1e6 * statistics.median(decoding), 1),
            }
        )
    stored = rows[0]["mean bytes"]
    for row in rows:
        row["ratio to stored"] = round(row["mean bytes"] / stored, 3)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--users", type=int, default=6000)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    folded = asyncio.run(states(args.datasets, args.users))
    trees = [orjson.loads(state.to_json()) for state in folded]
    print(f"{len(trees)} user states")
    for row in measure(trees, args.passes):
        print("  ".join(f"{k}: {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
