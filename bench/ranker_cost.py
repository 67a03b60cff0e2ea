"""What the learned ranker costs per request, stage by stage: ``python -m bench.ranker_cost``.

The training file of yoochoose-100k is folded into a memory store through the
batch-apply core, a ranker is trained on it (or ``--model``), and then, for test cases
replayed in frozen mode, each stage of a learned recommendation is timed in CPU seconds
(``time.process_time``), with the candidate bound set so that requests hold about 100
and about 300 candidates.

``--clones N`` measures a real-size catalogue instead: the benchmark workload of
:mod:`bench.workload` (real YooChoose sessions replayed by generated users in ``N``
copies of the catalogue, 2,933 items each, with categories, prices, group views, cart
adds and purchases), every product also in the catalog with its category, price and
creation time; the sessions that end last (10%) are the test cases. ``--clones 17
--users 48000`` gives a catalogue of 40,448 items. Stages:

- ``read``: loading the read model from the store (in process: the memory store; on
  Redis add the round trips);
- ``sources``: every candidate source's scores (the sequential and session-kNN
  components are the blend's own) and their bounded union;
- ``features``: the feature matrix of the bounded candidates;
- ``predict``: LightGBM's scores;
- ``reasons``: ``pred_contrib`` of the 20 items shown (only when asked for);
- ``blend``: the hand-tuned blend's whole ranking of the same context, for comparison.

Beside them, the limit measured in the same run: LightGBM's predict on a prepared
matrix of the same size, in a tight loop. Medians over the cases (machines here are
noisy); every figure is per request. A digest of every request's candidates and feature
matrix comes with each bound: two versions of the scoring code (one of them in a
worktree, on ``PYTHONPATH``) that print the same digest build the same candidates and
features, bit for bit.

``--compiled-predictor`` also times lleaves, which compiles the model's trees to
machine code with LLVM, on the same matrices, and counts the requests whose top 20
differ from LightGBM's. lleaves is not a dependency of the project
(docs/quality.md#cost says why); pull it in for the run::

    uv run --with lleaves==1.3.0 --with 'llvmlite<0.45' python -m bench.ranker_cost \
        --compiled-predictor
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.context import DEFAULT_DATASETS
from bench.workload import apply_catalog, catalog_records, generate, load_sessions
from recstream.apply.batch import RawRecord
from recstream.contract.events import Event, decode_event
from recstream.model.config import CoreConfig
from recstream.offline.datasets import session_tsv_events
from recstream.offline.evaluation.next_item import play_frozen
from recstream.offline.evaluation.protocol import group_sessions, split_by_session_end
from recstream.offline.evaluation.records import RecordLog
from recstream.offline.evaluation.training import build_state, landmark_for
from recstream.offline.ranking.train import TrainSetup, train_ranker
from recstream.readmodel.context import RecommendationContext
from recstream.readmodel.load import load_context
from recstream.scoring.candidates import Candidates, bound, source_scores
from recstream.scoring.config import ScoringConfig
from recstream.scoring.learned import LearnedRanker, LearnedScores, RankerArtifact
from recstream.scoring.models import RecommendationRequest
from recstream.scoring.ranker_features import Matrix, feature_matrix
from recstream.scoring.recommender import rank
from recstream.store.memory import MemoryStore

STAGES = ("read", "sources", "features", "predict", "reasons", "blend")


class CompiledPredictor:
    """The model's trees compiled by lleaves (imported here: not a project dependency)."""

    def __init__(self, ranker: LearnedRanker) -> None:
        try:
            import lleaves  # type: ignore[import-not-found, unused-ignore]
        except ImportError as exc:
            raise SystemExit(
                "--compiled-predictor needs lleaves: uv run --with lleaves==1.3.0 "
                "--with 'llvmlite<0.45' python -m bench.ranker_cost --compiled-predictor"
            ) from exc
        self.ranker = ranker
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.txt"
            path.write_text(ranker.artifact.model)
            self.model = lleaves.Model(model_file=str(path))
            started = time.perf_counter()
            self.model.compile()
            self.compile_seconds = time.perf_counter() - started

    def scores(self, matrix: Matrix) -> Matrix:
        return np.asarray(self.model.predict(self.ranker.select(matrix), n_jobs=1))


def cpu(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.process_time()
    value = call()
    return value, time.process_time() - started


async def measure(
    store: MemoryStore,
    contexts: list[tuple[RecommendationContext, str]],
    ranker: LearnedRanker,
    core: CoreConfig,
    scoring: ScoringConfig,
    compiled: CompiledPredictor | None = None,
) -> dict[str, Any]:
    spent: dict[str, list[float]] = {s: [] for s in STAGES}
    compiled_spent: list[float] = []
    orders_differ = 0
    sizes: list[int] = []
    matrices: list[Matrix] = []
    digest = hashlib.sha256()
    per_source = ranker.artifact.per_source
    for case, (ctx, _) in enumerate(contexts):
        started = time.process_time()
        await load_context(store, ctx.user_id, ctx.now, core, state=ctx.state)
        spent["read"].append(time.process_time() - started)
        sources = ranker.artifact.sources  # the API computes the model's sources only
        candidates, seconds = cpu(
            lambda: bound(ctx, source_scores(ctx, scoring, core, sources), per_source, sources)  # noqa: B023
        )
        spent["sources"].append(seconds)
        matrix, seconds = cpu(lambda: feature_matrix(ctx, candidates, scoring, core))  # noqa: B023
        spent["features"].append(seconds)
        # with --compiled-predictor the two predictors take turns going first, so that
        # neither always finds the matrix warm in the caches
        if compiled is not None and case % 2 == 0:
            fast, seconds = cpu(lambda: compiled.scores(matrix))  # noqa: B023
            compiled_spent.append(seconds)
        scores, seconds = cpu(lambda: ranker.scores(matrix))  # noqa: B023
        spent["predict"].append(seconds)
        if compiled is not None:
            if case % 2 == 1:
                fast, seconds = cpu(lambda: compiled.scores(matrix))  # noqa: B023
                compiled_spent.append(seconds)
            top = scores.argsort(kind="stable")[::-1][:20]
            orders_differ += not np.array_equal(top, fast.argsort(kind="stable")[::-1][:20])
        learned = LearnedScores(ranker, candidates, matrix, scores)
        shown = [candidates.items[i] for i in scores.argsort()[::-1][:20]]
        _, seconds = cpu(lambda: learned.reasons(shown))  # noqa: B023
        spent["reasons"].append(seconds)
        request = RecommendationRequest(limit=20)
        _, seconds = cpu(lambda: rank(ctx, request, scoring, core))  # noqa: B023
        spent["blend"].append(seconds)
        sizes.append(len(candidates.items))
        matrices.append(matrix)
        digest.update(_fingerprint(candidates, matrix))
    limit_matrix = sorted(matrices, key=len)[len(matrices) // 2]  # a median-sized request
    loops = 200
    _, seconds = cpu(lambda: [ranker.scores(limit_matrix) for _ in range(loops)])
    extra: dict[str, Any] = {}
    if compiled is not None:
        extra = {
            "predict, compiled (lleaves) ms": round(1000 * statistics.median(compiled_spent), 3),
            "requests whose top 20 differ, compiled": orders_differ,
            "compile seconds": round(compiled.compile_seconds, 2),
        }
    return {
        "candidates (median)": statistics.median(sizes),
        "candidates (max)": max(sizes),
        **{f"{s} ms": round(1000 * statistics.median(v), 3) for s, v in spent.items()},
        "ranker ms (sources + features + predict)": round(
            1000
            * statistics.median(
                a + b + c
                for a, b, c in zip(
                    spent["sources"], spent["features"], spent["predict"], strict=True
                )
            ),
            3,
        ),
        f"limit: predict on {len(limit_matrix)} prepared rows, ms": round(
            1000 * seconds / loops, 3
        ),
        "candidates and features digest": digest.hexdigest()[:16],
        **extra,
    }


def _fingerprint(candidates: Candidates, matrix: Matrix) -> bytes:
    """The request's candidates (order, scores, ranks, deals) and feature matrix as bytes:
    two versions of the code that give the same digest over the cases rank the same."""
    described = (
        candidates.items,
        sorted((source, list(scores.items())) for source, scores in candidates.scores.items()),
        sorted((source, list(ranks.items())) for source, ranks in candidates.ranks.items()),
        sorted(candidates.groups.items()),
    )
    return repr(described).encode() + matrix.tobytes()


def yoochoose(datasets: Path) -> tuple[list[Event], list[Event]]:
    folder = datasets / "yoochoose-100k"
    with (folder / "yoochoose-clicks-100k_train_full.txt").open() as lines:
        train = list(session_tsv_events(lines))
    with (folder / "yoochoose-clicks-100k_test.txt").open() as lines:
        test = list(session_tsv_events(lines))
    return train, test


SYNTHETIC_END = 1_780_000_000.0  # 2026-05-28: any fixed time (the decay landmark follows it)


def synthetic(
    datasets: Path, users: int, clones: int
) -> tuple[list[Event], list[Event], list[RawRecord]]:
    """The workload's training and test events, and every product of it in the catalog."""
    workload = generate(
        load_sessions(datasets), users, end=SYNTHETIC_END, span_seconds=28 * 86_400.0, clones=clones
    )
    events = [decode_event(value) for _, value in workload.events]
    train, test = split_by_session_end(events, 0.1, CoreConfig().session_gap_minutes * 60.0)
    return train, test, catalog_records(workload)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    catalog: list[RawRecord] = []
    if args.clones:
        train, test, catalog = synthetic(args.datasets, args.users, args.clones)
    else:
        train, test = yoochoose(args.datasets)
    core, scoring = CoreConfig(decay_landmark=landmark_for(train)), ScoringConfig()
    if args.model is not None:
        artifact = RankerArtifact.from_bytes(args.model.read_bytes())
    else:
        trained = await train_ranker(train, TrainSetup(core, scoring, validate=False))
        artifact = trained.artifact
    store, log = MemoryStore(), RecordLog("bench", 4)
    await build_state(store, train, log, core)
    await apply_catalog(store, catalog)
    contexts: list[tuple[RecommendationContext, str]] = []

    def keep(ctx: RecommendationContext, _s: float, _items: Any, target: str) -> None:
        contexts.append((ctx, target))

    sessions = group_sessions(test, core.session_gap_minutes * 60.0)[: args.sessions]
    await play_frozen(store, sessions, log, core, keep)
    results: dict[str, Any] = {
        "workload": f"{args.clones} catalogue clones, {args.users} users"
        if args.clones
        else "yoochoose-100k",
        "catalogue items": len({e.product_id for e in train + test if e.product_id}),
        "catalog entries": len(catalog),
        "training events": len(train),
        "cases": len(contexts),
        "model": artifact.version,
    }
    for per_source in args.per_source:
        sized = LearnedRanker(dataclasses.replace(artifact, per_source=per_source))
        compiled = CompiledPredictor(sized) if args.compiled_predictor else None
        results[f"per_source={per_source}"] = await measure(
            store, contexts, sized, core, scoring, compiled
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--model", type=Path, help="an artifact of recstream train")
    parser.add_argument("--sessions", type=int, default=400, help="test sessions replayed")
    parser.add_argument(
        "--per-source", type=int, nargs="+", default=[18, 50], help="candidate bounds"
    )
    parser.add_argument(
        "--clones", type=int, default=0, help="the workload in this many catalogue copies"
    )
    parser.add_argument("--users", type=int, default=40_000, help="users of the workload")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument(
        "--compiled-predictor",
        action="store_true",
        help="also time lleaves' compiled trees (needs lleaves, see above)",
    )
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    text = json.dumps(results, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
