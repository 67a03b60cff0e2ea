"""``recstream eval``: offline quality of the recommender and the baselines on a dataset.

The composition root of :mod:`recstream.offline.evaluation`: reads the files, builds
the chosen store (memory, or a private key prefix on a real Redis), applies the
training events through the batch-apply core, runs the protocol, and writes a
table (terminal), ``results.json``, ``report.md`` and ``hr_mrr.png`` to ``--out``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shlex
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import click
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from recstream.contract.events import Event
from recstream.contract.keyspace import Keyspace
from recstream.model.config import CoreConfig
from recstream.offline.datasets import FORMATS, BadRow
from recstream.offline.evaluation.baselines import PARAMS
from recstream.offline.evaluation.methods import (
    BASELINE_METHODS,
    DEFAULT_METHODS,
    UnknownMethodError,
    parse_methods,
)
from recstream.offline.evaluation.next_item import MODES, Mode, NextItemSetup, evaluate_next_item
from recstream.offline.evaluation.protocol import count_cases, group_sessions, split_by_session_end
from recstream.offline.evaluation.records import RecordLog
from recstream.offline.evaluation.report import (
    describe,
    headers,
    markdown_report,
    next_item_summary,
    rows,
    top_n_summary,
)
from recstream.offline.evaluation.top_n import TopNSetup, evaluate_top_n, holdout_split
from recstream.offline.evaluation.training import EvalStore, build_state, landmark_for
from recstream.offline.ranking.train import NotEnoughDataError, TrainSetup, train_ranker
from recstream.platform.redis import redis_client
from recstream.scoring.candidates import SOURCES
from recstream.scoring.config import ScoringConfig
from recstream.scoring.learned import ArtifactError, LearnedRanker, RankerArtifact
from recstream.store.memory import MemoryStore
from recstream.store.redis import RedisStore
from recstream_cli.localstack import start_redis
from recstream_cli.loop import load_experiment, loop_markdown, print_loop, run_loop
from recstream_cli.reachability import check_redis
from recstream_cli.replay import (
    advancer,
    count_lines,
    iter_source,
    progress_bar,
    report_bad_rows,
    source_format,
)

Protocol = Literal["next-item", "top-n", "loop"]
TOPIC = "eval"


def read_file(path: Path, fmt: str, console: Console) -> tuple[list[Event], list[BadRow]]:
    bad_rows: list[BadRow] = []
    with progress_bar(console) as progress:
        task = progress.add_task(f"read {path.name}", total=count_lines(path))
        chosen = source_format(path, fmt)
        events = list(iter_source(path, chosen, bad_rows, advancer(progress, task)))
    report_bad_rows(console, path, bad_rows)
    return events, bad_rows


class RankerOptions(BaseModel):
    """The ``ranker`` section of ``--config``: how the learned ranker is trained (the
    fields of :class:`~recstream.offline.ranking.train.TrainSetup` a run may set)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label_share: float | None = Field(None, gt=0, lt=1)
    validation_share: float | None = Field(None, gt=0, lt=1)
    per_source: int | None = Field(None, ge=1, le=1000)
    sources: tuple[str, ...] | None = None
    negatives: int | None = Field(None, ge=1)
    later_label: float | None = Field(None, ge=0, le=2)
    rounds: int | None = Field(None, ge=1, le=10_000)
    learning_rate: float | None = Field(None, gt=0, le=1)
    num_leaves: int | None = Field(None, ge=2)
    min_data_in_leaf: int | None = Field(None, ge=1)
    early_stopping_rounds: int | None = Field(None, ge=1)
    min_groups: int | None = Field(None, ge=1)
    seed: int | None = None

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, sources: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if sources is not None and (not sources or set(sources) - set(SOURCES)):
            raise ValueError(f"choose one or more of {', '.join(SOURCES)}")
        return sources

    def given(self) -> dict[str, Any]:
        """The options the file sets, as TrainSetup keyword arguments."""
        return self.model_dump(exclude_none=True)


def _config_file(path: Path | None) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(path.read_text()) if path else {}
    unknown = set(raw) - {"core", "scoring", "ranker"}
    if unknown:
        raise click.BadParameter(f"unknown sections {sorted(unknown)}", param_hint="--config")
    return raw


def load_configs(path: Path | None, train: Sequence[Event]) -> tuple[CoreConfig, ScoringConfig]:
    """``--config`` JSON ``{"core": {...}, "scoring": {...}, "ranker": {...}}``; the decay
    landmark defaults to the first training day, since forward-decayed statistics are
    relative to it."""
    raw = _config_file(path)
    core = dict(raw.get("core", {}))
    core.setdefault("decay_landmark", landmark_for(train))
    return CoreConfig(**core), ScoringConfig(**raw.get("scoring", {}))


def load_ranker_options(path: Path | None) -> RankerOptions:
    """The ``ranker`` section of ``--config`` (empty: ``TrainSetup``'s defaults)."""
    try:
        return RankerOptions(**_config_file(path).get("ranker", {}))
    except ValidationError as exc:
        raise click.BadParameter(f"ranker: {exc}", param_hint="--config") from exc


@contextlib.asynccontextmanager
async def open_store(backend: str, redis_url: str | None, console: Console) -> AsyncIterator[Any]:
    """The evaluated store; on Redis a fresh key prefix, deleted afterwards."""
    if backend == "memory":
        yield MemoryStore()
        return
    url = redis_url or os.environ.get("RECSTREAM_REDIS__URL")
    with contextlib.ExitStack() as stack:
        if url is None:
            service = start_redis()
            stack.callback(service.stop)
            url = service.address
            console.print(f"started a local redis-server at {url}", highlight=False, soft_wrap=True)
        client = redis_client(url)
        keyspace = Keyspace(prefix=f"eval{uuid.uuid4().hex[:10]}")
        try:
            yield RedisStore(client, keyspace)
        finally:
            async for key in client.scan_iter(match=f"{keyspace.prefix}:*", count=1000):
                await client.delete(key)
            await client.aclose()


def method_bars(
    progress: Progress, methods: Sequence[str], what: str, total: int
) -> Callable[[str, float], None]:
    """One bar per method, each with the mean milliseconds it spends on a case so far."""
    tasks = {m: progress.add_task(f"{what} {m}", total=total) for m in methods}
    spent = dict.fromkeys(methods, 0.0)
    done = dict.fromkeys(methods, 0)

    def advance(method: str, seconds: float) -> None:
        spent[method] += seconds
        done[method] += 1
        mean = 1000.0 * spent[method] / done[method]
        description = f"{what} {method} ({mean:.2f} ms/case)"
        progress.update(tasks[method], advance=1, description=description)

    return advance


async def ranker_for(
    methods: Sequence[str],
    train: Sequence[Event],
    core: CoreConfig,
    scoring: ScoringConfig,
    model: Path | None,
    console: Console,
    options: RankerOptions | None = None,
) -> LearnedRanker | None:
    """The ``ranker`` method's model: ``--model``, else one trained here on ``train`` (the
    training events only, with ``recstream train``'s defaults and ``options``); None when
    there is too little data to train one (the method then ranks with the blend, as the
    API does)."""
    if "ranker" not in methods:
        return None
    if model is not None:
        try:
            data = await asyncio.to_thread(model.read_bytes)
            return LearnedRanker(RankerArtifact.from_bytes(data))
        except ArtifactError as exc:
            raise click.ClickException(f"{model}: {exc}") from exc
    with progress_bar(console) as progress:

        def stage(name: str, total: int) -> Callable[[int], None]:
            return advancer(progress, progress.add_task(f"ranker: {name}", total=total))

        try:
            given = options.given() if options is not None else {}
            setup = TrainSetup(core, scoring, validate=False, **given)
            trained = await train_ranker(train, setup, stage)
        except NotEnoughDataError as exc:
            console.print(f"no ranker: {exc}; the ranker method is the blend", highlight=False)
            return None
    console.print(f"trained ranker {trained.artifact.version}", highlight=False)
    return trained.ranker


async def run_next_item(
    store: EvalStore,
    train: list[Event],
    test: list[Event],
    setup: NextItemSetup,
    modes: Sequence[Mode],
    console: Console,
    model: Path | None = None,
    options: RankerOptions | None = None,
) -> list[dict[str, Any]]:
    ranker = await ranker_for(
        setup.methods, train, setup.core, setup.scoring, model, console, options
    )
    setup = dataclasses.replace(setup, ranker=ranker)
    log = RecordLog(TOPIC, 4)
    with progress_bar(console) as progress:
        task = progress.add_task("apply training events", total=len(train))
        stats = await build_state(store, train, log, setup.core, progress=advancer(progress, task))
    if stats.dead_letters:
        raise click.ClickException(f"{len(stats.dead_letters)} training events were rejected")
    cases = count_cases(group_sessions(test, setup.core.session_gap_minutes * 60.0))
    summaries = []
    for mode in modes:
        with progress_bar(console) as progress:
            result = await evaluate_next_item(
                store, train, test, log, setup, mode,
                on_method=method_bars(progress, setup.methods, f"{mode} next-item", cases),
            )  # fmt: skip
        summaries.append(next_item_summary(result, setup.k))
    return summaries


async def run_top_n(
    store: EvalStore,
    events: list[Event],
    setup: TopNSetup,
    min_events: int,
    fraction: float,
    console: Console,
    model: Path | None = None,
    options: RankerOptions | None = None,
) -> list[dict[str, Any]]:
    gap = setup.core.session_gap_minutes * 60.0
    train, holdouts = holdout_split(
        events, min_events=min_events, fraction=fraction, gap_seconds=gap
    )
    ranker = await ranker_for(
        setup.methods, train, setup.core, setup.scoring, model, console, options
    )
    setup = dataclasses.replace(setup, ranker=ranker)
    with progress_bar(console) as progress:
        task = progress.add_task("apply training events", total=len(train))
        await build_state(
            store, train, RecordLog(TOPIC, 4), setup.core, progress=advancer(progress, task)
        )
        result = await evaluate_top_n(
            store, train, holdouts, setup, min_events=min_events, fraction=fraction,
            on_method=method_bars(progress, setup.methods, "top-N", len(holdouts)),
        )  # fmt: skip
    return [top_n_summary(result, setup.k)]


def plot(summaries: Sequence[dict[str, Any]], path: Path) -> None:
    """HR@K and MRR@K for K = 1..k per method, one row of plots per mode.

    matplotlib is the CLI's dependency for the benchmark harness's charts (``bench/``,
    launched by ``recstream bench``); this chart reuses it, imported only here."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    fig, axes = pyplot.subplots(
        len(summaries), 2, figsize=(12, 4.5 * len(summaries)), squeeze=False
    )
    for row, summary in zip(axes, summaries, strict=True):
        ks = list(range(1, summary["k"] + 1))
        for name, metrics in summary["methods"].items():
            style = "--" if name in BASELINE_METHODS else "-"
            for ax, metric in zip(row, ("hr", "mrr"), strict=True):
                values = [100 * v for v in metrics[metric]]
                ax.plot(ks, values, style, marker=".", label=name)
        for ax, label in zip(row, ("HR@K (%)", "MRR@K (%)"), strict=True):
            ax.set_title(f"{label}, {summary['mode']} mode")
            ax.set_xlabel("K")
            ax.grid(alpha=0.3)
        row[0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    pyplot.close(fig)


def print_tables(summaries: Sequence[dict[str, Any]]) -> None:
    console = Console()
    for summary in summaries:
        table = Table(title=describe(summary), title_justify="left")
        for i, head in enumerate(headers(summary)):
            table.add_column(head, justify="left" if i == 0 else "right")
        for row in rows(summary):
            table.add_row(*row)
        console.print(table)


def validation_split(
    train: Sequence[Event],
    protocol: Protocol,
    test_fraction: float,
    min_events: int,
    holdout_fraction: float,
    gap_seconds: float,
) -> tuple[list[Event], list[Event]]:
    """The training events of a validation run and its held-out events, both from
    ``train``: the protocol's own split applied to the training part. For top-n the
    held-out events are left to :func:`run_top_n`, which splits the training part again."""
    if protocol == "top-n":
        inner, _ = holdout_split(
            train, min_events=min_events, fraction=holdout_fraction, gap_seconds=gap_seconds
        )
        return inner, []
    try:
        return split_by_session_end(train, test_fraction, gap_seconds)
    except ValueError as exc:
        raise click.ClickException(f"no validation split: {exc}") from exc


def _files(train: Path, test: Path | None) -> Iterator[tuple[str, str]]:
    yield "train", str(train)
    if test is not None:
        yield "test", str(test)


@click.command("eval")
@click.option(
    "--train", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True
)
@click.option("--test", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["auto", *FORMATS]), default="auto", show_default=True
)
@click.option(
    "--protocol",
    type=click.Choice(["next-item", "top-n", "loop"]),
    default="next-item",
    show_default=True,
    help="loop: the feedback loop simulated on the test sessions (lists shown, clicks, an "
    "experiment and its bandit; docs/experiments.md)",
)
@click.option(
    "--k", type=click.IntRange(1, 1000), help="Cut-off [default: 20 next-item, 10 top-n]."
)
@click.option("--mode", type=click.Choice([*MODES, "both"]), default="frozen", show_default=True)
@click.option(
    "--backend", type=click.Choice(["memory", "redis"]), default="memory", show_default=True
)
@click.option("--methods", default=",".join(DEFAULT_METHODS), show_default=True)
@click.option(
    "--baseline-params",
    type=click.Choice(PARAMS),
    default="default",
    show_default=True,
    help="The baselines' parameters: their defaults, or session-rec's tuned values for a "
    "dataset (rsc15 = YooChoose).",
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.2,
    show_default=True,
    help="next-item, loop: without --test, the share of sessions (the last to end) held out; "
    "with --validation, also the share of the training sessions held out to validate.",
)
@click.option(
    "--min-events",
    type=click.IntRange(2),
    default=5,
    show_default=True,
    help="top-n: users with this many item events.",
)
@click.option(
    "--holdout-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.2,
    show_default=True,
    help="top-n: the share of each user's item events (the last) held out; with "
    "--validation, held out twice.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON {"core": {...}, "scoring": {...}, "ranker": {...}} overriding the defaults '
    "(ranker: how the ranker method's model is trained, as recstream train's options).",
)
@click.option(
    "--redis-url",
    help="Redis for --backend redis [default: RECSTREAM_REDIS__URL, else a local redis-server].",
)
@click.option(
    "--model",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The ranker method's model (recstream train) [default: train one on the training "
    "events of this run, with --config's ranker section]. Not with --validation: a model "
    "trained elsewhere may have seen the validation split.",
)
@click.option(
    "--experiment",
    "experiment_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="loop: the experiment, a JSON object as in RECSTREAM_EXPERIMENTS [default: three "
    "blend weight vectors, fixed, and a bandit over them].",
)
@click.option("--cases", type=click.IntRange(1), help="loop: at most this many lists.")
@click.option("--seed", type=int, default=7, show_default=True, help="loop: the bandit's draws.")
@click.option(
    "--validation",
    is_flag=True,
    help="Score a validation split carved from the training data, for tuning, never the "
    "test split: next-item and loop hold out the last-ending --test-fraction of the "
    "training sessions; top-n holds out each user's last events of the training part (the "
    "per-user split applied twice).",
)
@click.option("--title", help="Report title [default: the training file's name].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def evaluate(
    train: Path, test: Path | None, fmt: str, protocol: Protocol, k: int | None, mode: str,
    backend: str, methods: str, baseline_params: str, test_fraction: float, min_events: int,
    holdout_fraction: float, validation: bool,
    config_path: Path | None, redis_url: str | None, model: Path | None,
    experiment_path: Path | None, cases: int | None, seed: int, title: str | None, out: Path,
) -> None:  # fmt: skip
    """Evaluate the recommender and the baselines (next-item or per-user top-N protocol)."""
    try:
        chosen = parse_methods(methods)
    except UnknownMethodError as exc:
        raise click.BadParameter(str(exc), param_hint="--methods") from exc
    if protocol == "top-n" and test is not None:
        raise click.UsageError("top-n holds out each user's last events of --train; omit --test")
    if validation and model is not None:
        raise click.UsageError(
            "--validation trains the ranker on the validation run's training part; a --model "
            "trained elsewhere may have seen the validation split"
        )
    if backend == "redis" and (url := redis_url or os.environ.get("RECSTREAM_REDIS__URL")):
        check_redis(url)  # before minutes of reading, not after
    console = Console(stderr=True)
    started = time.monotonic()
    options = load_ranker_options(config_path)
    train_events, train_bad = read_file(train, fmt, console)
    test_bad: list[BadRow] = []
    test_events: list[Event] = []
    if protocol != "top-n" and test is not None and not validation:  # validation: unread
        test_events, test_bad = read_file(test, fmt, console)
    core, scoring = load_configs(config_path, train_events)
    gap = core.session_gap_minutes * 60.0
    if protocol != "top-n" and test is None:
        train_events, test_events = split_by_session_end(train_events, test_fraction, gap)
    if validation:
        train_events, test_events = validation_split(
            train_events, protocol, test_fraction, min_events, holdout_fraction, gap
        )
    default_title = f"{train.name} (validation split)" if validation else train.name
    cutoff = k or (20 if protocol == "next-item" else 10)
    if protocol == "loop":
        experiment = load_experiment(experiment_path)

        async def looped() -> dict[str, Any]:
            async with open_store(backend, redis_url, console) as store:
                return await run_loop(
                    store, train_events, test_events, core, scoring, experiment,
                    k=cutoff, cases=cases, seed=seed, console=console,
                )  # fmt: skip

        summary = asyncio.run(looped())
        command = "recstream " + shlex.join(sys.argv[1:])
        about = {"title": title or default_title, "command": command}
        out.mkdir(parents=True, exist_ok=True)
        written = {"meta": about, "results": summary}
        (out / "results.json").write_text(json.dumps(written, indent=2) + "\n")
        (out / "report.md").write_text(loop_markdown(about, summary))
        print_loop(summary)
        console.print(f"wrote {out}/ in {round(time.monotonic() - started, 1)}s", highlight=False)
        return

    async def run() -> list[dict[str, Any]]:
        async with open_store(backend, redis_url, console) as store:
            if protocol == "top-n":
                setup_n = TopNSetup(cutoff, chosen, core, scoring, baseline_params)
                return await run_top_n(
                    store, train_events, setup_n, min_events, holdout_fraction, console, model,
                    options,
                )  # fmt: skip
            modes: list[Mode] = list(MODES) if mode == "both" else [cast(Mode, mode)]
            setup = NextItemSetup(cutoff, chosen, core, scoring, baseline_params)
            return await run_next_item(
                store, train_events, test_events, setup, modes, console, model, options
            )

    summaries = asyncio.run(run())
    meta: dict[str, Any] = {
        "title": title or default_title,
        "command": "recstream " + shlex.join(sys.argv[1:]),
        **dict(_files(train, None if validation else test)),
        "backend": backend,
        "split": "validation (carved from the training data)" if validation else "test",
        "train events": len(train_events),
        "test events": len(test_events),
        "bad rows": len(train_bad) + len(test_bad),
        "decay landmark": core.decay_landmark,
        "baseline parameters": baseline_params,
    }
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "meta": meta,
        "config": {
            "core": core.model_dump(mode="json"),
            "scoring": scoring.model_dump(mode="json"),
            "ranker": options.given(),
        },
        "results": summaries,
        "seconds": round(time.monotonic() - started, 1),
    }
    (out / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    (out / "report.md").write_text(markdown_report(meta, summaries))
    if protocol == "next-item":
        plot(summaries, out / "hr_mrr.png")
    print_tables(summaries)
    console.print(f"wrote {out}/ in {document['seconds']}s", highlight=False, soft_wrap=True)
