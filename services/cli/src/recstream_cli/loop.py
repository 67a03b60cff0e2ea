"""``recstream eval --protocol loop``: the feedback loop simulated on a dataset's test
sessions (:mod:`recstream.offline.evaluation.loop`): per-variant CTR of the lists shown and
how a bandit over the blend weights divides its traffic, as it learns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from recstream.contract.events import Event
from recstream.model.config import CoreConfig
from recstream.offline.evaluation.loop import (
    LoopResult,
    LoopSetup,
    default_experiment,
    simulate_loop,
)
from recstream.offline.evaluation.protocol import count_cases, group_sessions
from recstream.offline.evaluation.records import RecordLog
from recstream.offline.evaluation.training import EvalStore, build_state
from recstream.scoring.config import ScoringConfig
from recstream.scoring.experiments import Experiment
from recstream_cli.replay import advancer, progress_bar

TOPIC = "interactions"


def load_experiment(path: Path | None) -> Experiment:
    """The experiment of ``--experiment`` (a JSON object, as in RECSTREAM_EXPERIMENTS),
    or the default: three blend weight vectors, fixed, and a bandit over them."""
    if path is None:
        return default_experiment()
    try:
        return Experiment.model_validate_json(path.read_bytes())
    except ValueError as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--experiment") from exc


async def run_loop(
    store: EvalStore,
    train: list[Event],
    test: list[Event],
    core: CoreConfig,
    scoring: ScoringConfig,
    experiment: Experiment,
    *,
    k: int,
    cases: int | None,
    seed: int,
    console: Console,
) -> dict[str, Any]:
    # a click is the next event on the list, as it names its list: with the fallback, a
    # later view of a listed item would count too, and CTR would not be widget HR@k
    core = core.model_copy(update={"attribution_fallback": False})
    log = RecordLog(TOPIC, 4)
    sessions = group_sessions(test, core.session_gap_minutes * 60.0)
    total = count_cases(sessions) if cases is None else min(cases, count_cases(sessions))
    with progress_bar(console) as progress:
        task = progress.add_task("apply training events", total=len(train))
        stats = await build_state(store, train, log, core, progress=advancer(progress, task))
        if stats.dead_letters:
            raise click.ClickException(f"{len(stats.dead_letters)} training events were rejected")
        played = progress.add_task("loop", total=total)
        setup = LoopSetup(core, scoring, experiment, k=k, max_cases=cases, seed=seed)
        result = await simulate_loop(store, sessions, log, setup, advancer(progress, played))
    return loop_summary(result, experiment, k)


def loop_summary(result: LoopResult, experiment: Experiment, k: int) -> dict[str, Any]:
    return {
        "protocol": "loop",
        "k": k,
        "experiment": experiment.model_dump(mode="json"),
        "cases": result.cases,
        "seconds": round(result.seconds, 1),
        "variants": {
            name: {
                "impressions": rate.total,
                "clicks": rate.count,
                "ctr": rate.value,
                "ci95": list(rate.interval),
            }
            for name, rate in result.counters.items()
        },
        "bandit arm shares by tenth": result.arm_shares,
    }


def loop_markdown(meta: dict[str, Any], summary: dict[str, Any]) -> str:
    lines = [f"# {meta['title']}: the feedback loop, simulated", "", f"`{meta['command']}`", ""]
    lines += [
        f"{summary['cases']} lists shown (widget, top {summary['k']}); the simulated user "
        "clicks the list's item that the log says came next.",
        "",
        "| variant | lists | clicked | CTR % | 95% interval |",
        "|---|---|---|---|---|",
    ]
    for name, v in summary["variants"].items():
        low, high = v["ci95"]
        lines.append(
            f"| {name} | {v['impressions']} | {v['clicks']} | {100 * v['ctr']:.2f} "
            f"| {100 * low:.2f}-{100 * high:.2f} |"
        )
    shares = summary["bandit arm shares by tenth"]
    if shares:
        arms = list(shares[0])
        lines += ["", "The bandit's lists by arm, per tenth of its lists (%):", ""]
        lines += ["| tenth | " + " | ".join(arms) + " |", "|---" * (len(arms) + 1) + "|"]
        for n, part in enumerate(shares, start=1):
            lines.append(f"| {n} | " + " | ".join(f"{100 * part[a]:.0f}" for a in arms) + " |")
    return "\n".join(lines) + "\n"


def print_loop(summary: dict[str, Any]) -> None:
    table = Table(title=f"feedback loop: {summary['cases']} lists", title_justify="left")
    for head in ("variant", "lists", "clicked", "CTR %", "95% interval"):
        table.add_column(head, justify="left" if head == "variant" else "right")
    for name, v in summary["variants"].items():
        low, high = v["ci95"]
        table.add_row(
            name,
            str(v["impressions"]),
            str(v["clicks"]),
            f"{100 * v['ctr']:.2f}",
            f"{100 * low:.2f}-{100 * high:.2f}",
        )
    Console().print(table)
