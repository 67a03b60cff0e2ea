"""Small PNG plots (matplotlib, Agg backend): bars, lines, latency histograms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

SIZE = (7.0, 3.6)
DPI = 80


def bar_chart(
    path: Path,
    labels: Sequence[str],
    values: Sequence[float],
    unit: str,
    title: str,
    *,
    log: bool = False,
) -> None:
    fig, ax = plt.subplots(figsize=(SIZE[0], 0.45 * len(labels) + 1.2), dpi=DPI)
    bars = ax.barh(range(len(labels)), values, color="#4c72b0")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    if log:
        ax.set_xscale("log")
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=7, padding=2)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def line_chart(
    path: Path,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str,
    title: str,
    *,
    logy: bool = False,
    hlines: Mapping[str, float] | None = None,
    markers: bool = True,
) -> None:
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o" if markers else None, markersize=3, linewidth=1, label=label)
    for label, y in (hlines or {}).items():
        ax.axhline(y, linestyle="--", linewidth=0.8, color="grey")
        ax.text(ax.get_xlim()[0], y, f" {label}", fontsize=7, va="bottom", color="grey")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def scatter_chart(
    path: Path,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str,
    title: str,
    *,
    logy: bool = True,
) -> None:
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    for label, (xs, ys) in series.items():
        ax.scatter(xs, ys, s=1.5, alpha=0.5, label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, markerscale=5)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
