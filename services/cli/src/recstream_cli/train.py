"""``recstream train``: a learned ranker from the event log; ``recstream model``: publish it.

The training events come from a file (any format ``recstream eval`` reads) or
from the interactions topic, read from its start to its current end. Only
training data is used: with ``--test-fraction`` the sessions that end last are
left out first (as ``recstream eval`` splits), so a model trained here and
evaluated there never saw the test sessions.

Writes ``ranker-<version>.json`` (the artifact the API serves), ``report.json``,
``report.md`` (validation figures, candidate recall per source, feature
importance) and ``importance.png``. ``--publish`` (or ``recstream model publish``)
puts the artifact into Redis and makes it the active version, which every API
replica picks up within its poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.console import Console

from recstream.contract.erasures import ErasureNoticeError, decode_notice
from recstream.contract.events import WRITTEN_BY_API, Event, decode_event
from recstream.contract.keyspace import DEFAULT_PREFIX, Keyspace
from recstream.contract.units import DAY
from recstream.offline.datasets import FORMATS
from recstream.offline.evaluation.protocol import (
    TrailingWindow,
    recent_sessions,
    split_by_session_end,
)
from recstream.offline.ranking.train import (
    TrainSetup,
    promotion_check,
    same_model,
    train_ranker,
)
from recstream.plan.erasure import is_erased
from recstream.platform.kafka import (
    KafkaConnectError,
    KafkaSecurityError,
    client_options,
    security_from_environ,
    start_client,
)
from recstream.platform.redis import redis_client
from recstream.platform.settings import KafkaSecurity
from recstream.scoring.candidates import DEFAULT_SOURCES, SOURCES
from recstream.scoring.learned import ArtifactError, LearnedRanker, RankerArtifact
from recstream.scoring.ranker_features import FEATURE_GROUPS, features_for
from recstream.store.rankers import RankerRegistry
from recstream_cli.evaluate import load_configs, load_ranker_options, read_file
from recstream_cli.replay import advancer, progress_bar


def _redis_url(url: str | None) -> str:
    found = url or os.environ.get("RECSTREAM_REDIS__URL")
    if not found:
        raise click.UsageError("give --redis-url or set RECSTREAM_REDIS__URL")
    return found


# --window-days from a topic holds this much before the window for the sessions that end in it
SESSION_LOOKBACK_DAYS = 1.0


class NoSuchTopic(LookupError):
    """The topic does not exist."""


async def read_topic(
    bootstrap: str,
    topic: str,
    console: Console,
    security: KafkaSecurity | None = None,
    erasures_topic: str | None = None,
    keep_seconds: float | None = None,
) -> list[Event]:
    """Every decodable event of ``topic`` from its start to its end now (bad records are
    skipped and counted: the consumer has dead-lettered them already), without the
    events of users the erasure log (``erasures_topic``) says were erased after them:
    a model is not trained on what a user had erased.

    With ``keep_seconds``, only the events within that long of the latest are kept, as
    the topic is read (:class:`TrailingWindow`): memory follows the window, not the
    topic's retention."""
    security = security or KafkaSecurity()
    window = TrailingWindow(keep_seconds) if keep_seconds is not None else None
    events: list[Event] = []
    bad = 0
    try:
        async for values in _topic_batches(bootstrap, topic, security):
            for value in values:
                try:
                    event = decode_event(value or b"")
                except ValueError:
                    bad += 1
                    continue
                if event.event_type in WRITTEN_BY_API:  # impressions: not behaviour
                    continue
                if window is not None:
                    window.add(event)
                else:
                    events.append(event)
    except NoSuchTopic as exc:
        raise click.ClickException(f"topic {topic!r} does not exist on {bootstrap}") from exc
    read = window.seen if window is not None else len(events)
    if window is not None:
        events = window.events()
    erased_at: dict[str, float] = {}
    if erasures_topic:
        with contextlib.suppress(NoSuchTopic):  # no erasure yet
            async for values in _topic_batches(bootstrap, erasures_topic, security):
                for value in values:
                    with contextlib.suppress(ErasureNoticeError):
                        notice = decode_notice(None, value)
                        erased_at[notice.user_id] = max(
                            notice.erased_at, erased_at.get(notice.user_id, 0)
                        )
    kept = [e for e in events if not is_erased(e.occurred_at.timestamp(), erased_at.get(e.user_id))]
    held = "" if window is None else f", {len(events)} within {window.seconds / DAY:g} days"
    console.print(
        f"read {read} events from {topic} ({bad} undecodable skipped{held}, "
        f"{len(events) - len(kept)} of {len(erased_at)} erased users left out)"
    )
    kept.sort(key=lambda e: e.occurred_at)
    return kept


async def _topic_batches(
    bootstrap: str, topic: str, security: KafkaSecurity
) -> AsyncIterator[list[bytes | None]]:
    """The values of ``topic`` from its start to its end now, a fetch at a time;
    :class:`NoSuchTopic` without the topic.

    "Now" is the end offsets read at the start and the time then: a partition is done
    once its position passes its end offset and it has nothing more from before that
    time. (The second condition keeps the read complete on a broker whose end offsets
    lag behind what it serves, as the embedded test broker's can.)"""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **client_options(security)
    )
    try:
        await start_client(consumer, bootstrap, security)
    except KafkaConnectError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            raise NoSuchTopic(topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        cutoff_ms = int(time.time() * 1000)
        ends = await consumer.end_offsets(partitions)
        left = set(partitions)
        while left:
            batches = await consumer.getmany(*left, timeout_ms=1000)
            for tp in list(left):
                records = batches.get(tp, [])
                yield [
                    r.value
                    for r in records
                    if r.offset < ends[tp] or r.timestamp <= cutoff_ms  # else written after
                ]
                past_end = await consumer.position(tp) >= ends[tp]
                if past_end and (not records or records[-1].timestamp > cutoff_ms):
                    left.discard(tp)
    finally:
        await consumer.stop()


def write_report(out: Path, artifact: RankerArtifact, meta: dict[str, Any]) -> None:
    report = dict(artifact.report)
    (out / "report.json").write_text(
        json.dumps({"meta": meta, "version": artifact.version, **report}, indent=2) + "\n"
    )
    (out / "report.md").write_text(markdown(artifact, meta))
    plot_importance(report["feature importance"], out / "importance.png")


def markdown(artifact: RankerArtifact, meta: dict[str, Any]) -> str:
    report = artifact.report
    lines = [f"# Ranker {artifact.version}", "", f"`{meta['command']}`", ""]
    cases = report["cases"]
    lines += ["## Training data", ""]
    lines += [f"- {name}: {value}" for name, value in cases.items()]
    lines += [
        f"- trees: {report['trees']} (best iteration {report['best iteration']})",
        f"- seconds: {report['seconds']}",
        "",
        "## Validation (sessions carved from the training data; frozen next-item protocol)",
        "",
    ]
    validation = report["validation"]
    heads = list(next(iter(validation.values()), {}))
    lines += ["| method | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for method, figures in validation.items():
        name = f"{method} ({figures['version']})" if "version" in figures else method
        lines.append(f"| {name} | " + " | ".join(str(figures[h]) for h in heads) + " |")
    lines += ["", "## Candidate recall: cases whose target is in a source's top K", ""]
    ks = list(next(iter(report["recall"].values())))
    lines += ["| source | " + " | ".join(f"@{k}" for k in ks) + " |", "|---" * (len(ks) + 1) + "|"]
    lines += [
        f"| {s} | " + " | ".join(f"{100 * v[k]:.2f}" for k in ks) + " |"
        for s, v in report["recall"].items()
    ]
    lines += ["", "## Feature importance (gain)", "", "| feature | group | gain % | splits |"]
    lines += ["|---|---|---|---|"]
    lines += [
        f"| {r['feature']} | {r['group']} | {r['share']:.2f} | {r['splits']} |"
        for r in report["feature importance"]
    ]
    return "\n".join(lines) + "\n"


def plot_importance(rows: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    shown = [r for r in rows if r["gain"] > 0][:25][::-1]
    fig, ax = pyplot.subplots(figsize=(8, 0.3 * len(shown) + 1.2))
    ax.barh([r["feature"] for r in shown], [r["share"] for r in shown])
    ax.set_xlabel("share of the total gain (%)")
    ax.set_title("Learned ranker: feature importance")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    pyplot.close(fig)


@click.command("train")
@click.option("--train", "train_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["auto", *FORMATS]), default="auto")
@click.option("--from-topic", help="Read the events from this topic instead of a file.")
@click.option(
    "--bootstrap-servers",
    help="Kafka for --from-topic [default: RECSTREAM_KAFKA__BOOTSTRAP_SERVERS].",
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Leave out this share of sessions (the last to end) first, as recstream eval does "
    "without --test.",
)
@click.option(
    "--window-days",
    type=click.FloatRange(0, min_open=True),
    help="Train on the sessions that end within this many days of the log's last event "
    "(the whole log if not given). From a topic, only the events of the window and of the "
    f"{SESSION_LOOKBACK_DAYS:g} day(s) before it are held while it is read: a session that "
    "started longer before the window keeps that part only.",
)
@click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--label-share",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.3,
    show_default=True,
    help="Share of the training sessions (the last to end) whose cases teach the ranker.",
)
@click.option("--per-source", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option(
    "--later-label",
    type=click.FloatRange(0, 2),
    default=1.0,
    show_default=True,
    help="Label of the items the session engages with after the target (the target's is 2); "
    "fractions too: a label x is worth the gain 2^x - 1.",
)
@click.option(
    "--min-cases",
    type=click.IntRange(1),
    default=200,
    show_default=True,
    help="Refuse to train on fewer cases with a labelled item among their candidates.",
)
@click.option("--rounds", type=click.IntRange(1, 10_000), default=300, show_default=True)
@click.option(
    "--sources",
    default=",".join(DEFAULT_SOURCES),
    show_default=True,
    help=f"Candidate sources, of: {', '.join(SOURCES)}.",
)
@click.option(
    "--without",
    "without",
    default="",
    help=f"Feature groups left out (ablation): {', '.join(FEATURE_GROUPS)}.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--publish",
    is_flag=True,
    help="Publish to Redis and activate it, when it does at least as well as the blend and "
    "the active model on the validation sessions (widget HR@20 and MRR@20); else exit 1 and "
    "what serves keeps serving.",
)
@click.option("--force", is_flag=True, help="With --publish: publish even if it does worse.")
@click.option("--redis-url", help="Redis for --publish [default: RECSTREAM_REDIS__URL].")
@click.option(
    "--prefix", default=DEFAULT_PREFIX, show_default=True, help="Key prefix of the deployment."
)
def train(
    train_path: Path | None, fmt: str, from_topic: str | None, bootstrap_servers: str | None,
    test_fraction: float, window_days: float | None, config_path: Path | None, seed: int,
    label_share: float,
    per_source: int, later_label: float, min_cases: int, rounds: int, sources: str,
    without: str, out: Path, publish: bool, force: bool, redis_url: str | None, prefix: str,
) -> None:  # fmt: skip
    """Train the learned ranker (LightGBM LambdaMART) on the event log. The ``ranker``
    section of ``--config`` sets the training's options; an option given on the command
    line wins over it."""
    if (train_path is None) == (from_topic is None):
        raise click.UsageError("give exactly one of --train FILE or --from-topic TOPIC")
    chosen_sources = tuple(s.strip() for s in sources.split(",") if s.strip())
    unknown = sorted(set(chosen_sources) - set(SOURCES))
    if unknown or not chosen_sources:
        raise click.BadParameter(
            f"unknown sources {unknown}; choose from {SOURCES}", param_hint="--sources"
        )
    flags = {
        "seed": seed, "label_share": label_share, "per_source": per_source,
        "later_label": later_label, "min_groups": min_cases, "rounds": rounds,
        "sources": chosen_sources,
    }  # fmt: skip
    options = _training_options(flags, load_ranker_options(config_path).given())
    dropped = tuple(g.strip() for g in without.split(",") if g.strip())
    if set(dropped) - set(FEATURE_GROUPS):
        raise click.BadParameter(f"choose from {', '.join(FEATURE_GROUPS)}", param_hint="--without")
    url = _redis_url(redis_url) if publish else None
    console = Console(stderr=True)
    started = time.monotonic()
    if train_path is not None:
        events, _ = read_file(train_path, fmt, console)
    else:
        bootstrap = bootstrap_servers or os.environ.get("RECSTREAM_KAFKA__BOOTSTRAP_SERVERS")
        if not bootstrap:
            raise click.UsageError(
                "give --bootstrap-servers or set RECSTREAM_KAFKA__BOOTSTRAP_SERVERS"
            )
        try:
            security = security_from_environ()
        except KafkaSecurityError as exc:
            raise click.ClickException(str(exc)) from exc
        erasures = os.environ.get("RECSTREAM_KAFKA__ERASURES_TOPIC") or "erasures"
        keep = None if window_days is None else (window_days + SESSION_LOOKBACK_DAYS) * DAY
        events = asyncio.run(
            read_topic(
                bootstrap, str(from_topic), console, security, erasures_topic=erasures,
                keep_seconds=keep,
            )
        )  # fmt: skip
    gap = load_configs(config_path, events)[0].session_gap_minutes * 60.0
    if window_days is not None:
        read = len(events)
        events = recent_sessions(events, window_days, gap)
        console.print(f"{len(events):,} of {read:,} events in the last {window_days:g} days")
    core, scoring = load_configs(config_path, events)  # the landmark: the first day kept
    if test_fraction > 0:
        events, _ = split_by_session_end(events, test_fraction, gap)
    incumbent = _active_model(url, prefix, console) if url is not None else None
    setup = TrainSetup(
        core, scoring, features=features_for(options["sources"], dropped), incumbent=incumbent,
        **options,
    )  # fmt: skip
    with progress_bar(console) as progress:

        def stage(name: str, total: int) -> Any:
            return advancer(progress, progress.add_task(name, total=total))

        try:
            trained = asyncio.run(train_ranker(events, setup, stage))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    artifact = trained.artifact
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / f"ranker-{artifact.version}.json"
    model_path.write_bytes(artifact.to_bytes())
    meta = {
        "command": "recstream " + shlex.join(sys.argv[1:]),
        "source": str(train_path) if train_path else f"topic {from_topic}",
        "events": len(events),
        "seconds": round(time.monotonic() - started, 1),
    }
    write_report(out, artifact, meta)
    for method, figures in artifact.report["validation"].items():
        console.print(f"validation {method}: {figures}", highlight=False, soft_wrap=True)
    console.print(f"wrote {model_path} and the report in {out}/", highlight=False)
    if url is not None:
        serving = f"the active model {incumbent.version}" if incumbent else "the blend"
        if incumbent is not None and same_model(incumbent.version, artifact.version):
            console.print(f"the same model is already active: {incumbent.version}", highlight=False)
            return
        refused = promotion_check(artifact.report)
        if refused is not None and not force:
            raise click.ClickException(
                f"not published: {refused}; {serving} keeps serving (--force publishes anyway)"
            )
        data = artifact.to_bytes()
        _registry_call(url, prefix, lambda r: r.publish(artifact.version, data, activate=True))
        console.print(f"published and activated {artifact.version}", highlight=False)


# TrainSetup's field -> the command-line option that sets it, where the names differ
_OPTION_OF = {"min_groups": "min_cases"}


def _training_options(flags: dict[str, Any], configured: dict[str, Any]) -> dict[str, Any]:
    """TrainSetup's options: a flag given on the command line, else the ``--config`` file's
    ``ranker`` section, else the flag's default."""
    ctx = click.get_current_context()
    typed = {}
    for name, value in flags.items():
        source = ctx.get_parameter_source(_OPTION_OF.get(name, name))
        if source is None:  # not an option of this command: a name out of step
            raise RuntimeError(f"recstream train has no option for {name}")
        if source is not ParameterSource.DEFAULT:
            typed[name] = value
    return {**flags, **configured, **typed}


@click.group("model")
def model() -> None:
    """Publish, activate and deactivate learned ranker models (in Redis)."""


_REDIS = click.option("--redis-url", help="Redis [default: RECSTREAM_REDIS__URL].")
_PREFIX = click.option("--prefix", default=DEFAULT_PREFIX, show_default=True)


def _active_model(url: str, prefix: str, console: Console) -> LearnedRanker | None:
    """The model the API serves (the incumbent a new one must match), or None: the blend
    serves, or the active artifact does not load (said, then the blend is the bar)."""

    async def read(registry: RankerRegistry) -> tuple[str | None, bytes | None]:
        version = await registry.active_version()
        return version, await registry.artifact(version) if version else None

    version, data = _registry_call(url, prefix, read)
    if version is None:
        return None
    try:
        if data is None:
            raise ArtifactError(f"the active version {version} has no published artifact")
        return LearnedRanker(RankerArtifact.from_bytes(data))
    except ArtifactError as exc:
        console.print(f"the active model is not compared: {exc}", highlight=False)
        return None


def _registry_call(url: str | None, prefix: str, action: Any) -> Any:
    async def run() -> Any:
        client = redis_client(_redis_url(url))
        try:
            return await action(RankerRegistry(client, Keyspace(prefix=prefix)))
        finally:
            await client.aclose()

    return asyncio.run(run())


@model.command("publish")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-activate", is_flag=True, help="Store it without serving it.")
@_REDIS
@_PREFIX
def publish_model(path: Path, no_activate: bool, redis_url: str | None, prefix: str) -> None:
    """Publish an artifact written by recstream train (checked to load first)."""
    data = path.read_bytes()
    try:
        artifact = RankerArtifact.from_bytes(data)
        LearnedRanker(artifact)
    except ArtifactError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    _registry_call(
        redis_url, prefix, lambda r: r.publish(artifact.version, data, activate=not no_activate)
    )
    click.echo(f"published {artifact.version}" + ("" if no_activate else " (active)"))


@model.command("activate")
@click.argument("version")
@_REDIS
@_PREFIX
def activate_model(version: str, redis_url: str | None, prefix: str) -> None:
    """Serve a published version."""
    try:
        _registry_call(redis_url, prefix, lambda r: r.activate(version))
    except KeyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"active: {version}")


@model.command("deactivate")
@_REDIS
@_PREFIX
def deactivate_model(redis_url: str | None, prefix: str) -> None:
    """Serve the hand-tuned blend again."""
    _registry_call(redis_url, prefix, lambda r: r.deactivate())
    click.echo("active: blend")


@model.command("list")
@_REDIS
@_PREFIX
def list_models(redis_url: str | None, prefix: str) -> None:
    """The published versions; the active one is marked."""

    async def both(registry: RankerRegistry) -> tuple[list[str], str | None]:
        return await registry.versions(), await registry.active_version()

    versions, active = _registry_call(redis_url, prefix, both)
    for version in versions:
        click.echo(f"{'*' if version == active else ' '} {version}")
    if active is None:
        click.echo("(no active model: the blend serves)")


@model.command("remove")
@click.argument("version")
@_REDIS
@_PREFIX
def remove_model(version: str, redis_url: str | None, prefix: str) -> None:
    """Delete a published version (deactivated first when it is active)."""
    _registry_call(redis_url, prefix, lambda r: r.remove(version))
    click.echo(f"removed {version}")
