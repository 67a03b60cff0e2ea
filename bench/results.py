"""The common results writer: figures next to their limits, tables, plots, notes.

Every benchmark returns a :class:`BenchResult`. A :class:`Figure` is one
measured value with the limit measured in the same run (``ratio`` =
value / limit) and, when the issue sets one, the target and whether it was
met. :func:`write_report` writes ``results.json`` and ``summary.md``; the
plots are PNG files in ``plots/`` of the same folder.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.stack import load_average


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    limit: float | None = None
    limit_name: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.limit is None or self.limit == 0:
            return None
        return self.value / self.limit

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class BenchResult:
    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)  # paths relative to the results folder
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(f"  {format_figure(figure)}", flush=True)
        return figure


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "ms":
        text = (
            f"{value:.2f}" if value < 10 else f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"
        )
    elif unit in ("bytes", "B"):
        text = human_bytes(value)
        return text
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def human_bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GiB"


def verdict(met: bool | None) -> str:
    return "" if met is None else "met" if met else "MISSED"


def format_figure(figure: Figure) -> str:
    text = f"{figure.name}: {number(figure.value, figure.unit)}"
    if figure.limit is not None:
        ratio = figure.ratio
        text += f"  | limit {figure.limit_name}: {number(figure.limit, figure.unit)}"
        text += f"  | ratio {ratio:.2f}" if ratio is not None else ""
    if figure.target:
        text += f"  | target {figure.target}: {verdict(figure.met)}"
    return text


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    try:
        redis = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        redis = "?"
    return {
        "commit": git_state(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "redis": redis,
        "load_average_at_start": load_average(),
    }


def git_state() -> str:
    """The checked-out commit, and how many tracked files differ from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    except OSError:
        return "?"
    return f"{head} ({len(changed)} tracked files changed)" if changed else head


def table_markdown(table: Table) -> list[str]:
    lines = [f"**{table.title}**", ""]
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "---|" * len(table.columns))
    for row in table.rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return [*lines, ""]


def figures_markdown(figures: Sequence[Figure]) -> list[str]:
    lines = [
        "| figure | value | limit (same run) | ratio | target | |",
        "|---|---|---|---|---|---|",
    ]
    for f in figures:
        limit = f"{number(f.limit, f.unit)} ({f.limit_name})" if f.limit is not None else "-"
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
        lines.append(
            f"| {f.name} | {number(f.value, f.unit)} | {limit} | {ratio} | {f.target or '-'} "
            f"| {verdict(f.met)} |"
        )
    return [*lines, ""]


def write_report(
    out: Path, results: Sequence[BenchResult], info: dict[str, Any], command: str
) -> None:
    info = {**info, "load_average_at_end": load_average()}
    payload = {
        "command": command,
        "machine": info,
        "benchmarks": [
            {
                **{k: v for k, v in asdict(r).items() if k != "figures"},
                "figures": [f.as_dict() for f in r.figures],
            }
            for r in results
        ],
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    lines = ["# recstream benchmark results", "", f"Command: `{command}`", ""]
    lines += [f"- {key}: {value}" for key, value in info.items()]
    lines.append("")
    for r in results:
        lines += [f"## {r.title} (`{r.name}`, {r.seconds:.0f} s)", ""]
        if r.error:
            lines += [f"**Failed:** {r.error}", ""]
        if r.figures:
            lines += figures_markdown(r.figures)
        for table in r.tables:
            lines += table_markdown(table)
        lines += [f"![{Path(p).stem}]({p})" for p in r.plots]
        if r.plots:
            lines.append("")
        lines += [f"- {note}" for note in r.notes]
        lines.append("")
    (out / "summary.md").write_text("\n".join(lines))
