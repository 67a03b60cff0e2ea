"""Scenario results and the suite report (Markdown + JSON)."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from faults.checker import CheckResult


@dataclass
class ScenarioResult:
    name: str
    title: str
    passed: bool = False
    figure: str = ""  # the number the fault is judged by, in words
    resume_s: float | None = None  # time to resume (or to converge) after the fault
    timings: dict[str, float | None] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    check: dict[str, Any] | None = None
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None

    def require(self, condition: bool, failure: str) -> bool:
        if not condition:
            self.failures.append(failure)
        return condition

    def add_check(self, label: str, check: CheckResult) -> None:
        """Record an oracle comparison; anything but an exact match fails the scenario."""
        summary = check.summary()
        if self.check is None:
            self.check = {"label": label, **summary}
        else:
            self.check.setdefault("more", []).append({"label": label, **summary})
        self.require(check.exact, f"{label}: {check.describe()}; e.g. {summary['examples'][:3]}")

    def finish(self, started: float) -> ScenarioResult:
        self.duration_s = round(time.monotonic() - started, 1)
        self.passed = not self.failures and self.error is None
        return self


def seconds(values: Sequence[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "n/a"
    if len(known) == 1:
        return f"{known[0]:.2f} s"
    return f"median {statistics.median(known):.2f} s, max {max(known):.2f} s (n={len(known)})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(results: Sequence[ScenarioResult], meta: dict[str, Any]) -> str:
    lines = [
        "# recstream fault-injection report",
        "",
        f"{meta['date']} on {meta['machine']}; mode {meta['mode']}; runtime {meta['runtime']}; "
        f"Redis {meta.get('redis', 'one redis-server')}; commit {meta.get('commit', 'unknown')}; "
        f"command `{meta['command']}`",
        "",
        "| fault | result | time to resume / converge | figure | lost | double-counted |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        check = r.check or {}
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in [
                    r.title,
                    "pass" if r.passed else "FAIL",
                    "n/a" if r.resume_s is None else f"{r.resume_s:.2f} s",
                    r.figure,
                    str(check.get("lost", "-")),
                    str(check.get("double_counted", "-")),
                ]
            )
            + " |"
        )
    for r in results:
        lines += ["", f"## {r.title} (`{r.name}`): {'pass' if r.passed else 'FAIL'}", ""]
        if r.figure:
            lines.append(f"- figure: {r.figure}")
        for check in [r.check, *r.check.get("more", [])] if r.check else []:
            lines.append(
                f"- oracle ({check['label']}): lost {check['lost']}, double-counted "
                f"{check['double_counted']}, mismatched {check['mismatched']}; compared "
                + ", ".join(f"{k} {v}" for k, v in check["compared"].items())
                + f"; largest score deviation {check['max_score_deviation']:.1e}"
            )
        lines += [f"- {k}: {_fmt(v)}" for k, v in r.timings.items()]
        lines += [f"- {k}: {_fmt(v)}" for k, v in r.counts.items()]
        lines += [f"- note: {n}" for n in r.notes]
        lines += [f"- **failure**: {f}" for f in r.failures]
        if r.error:
            lines.append(f"- **error**: {r.error}")
        lines.append(f"- duration: {r.duration_s} s")
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def machine() -> str:
    import os

    python = platform.python_version()
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {python}"


def write_report(
    results: Sequence[ScenarioResult], out: Path, meta: dict[str, Any]
) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "report.md", out / "report.json"
    md.write_text(markdown(results, meta), encoding="utf-8")
    payload = {"meta": meta, "results": [asdict(r) for r in results]}
    js.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return md, js
