"""Evaluation results as plain data: JSON-ready dictionaries, table rows, Markdown (pure).

Fractions in the JSON (0..1, rounded to 6 places), percentages in tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from recstream.evaluation.metrics import NextItemMetrics, percentile
from recstream.evaluation.next_item import NextItemResult
from recstream.evaluation.top_n import TopNResult

NEXT_ITEM_HEADERS = ("method", "HR@{k}", "MRR@{k}", "NDCG@{k}", "coverage", "p50 ms", "p99 ms")
TOP_N_HEADERS = (
    "method", "P@{k}", "R@{k}", "NDCG@{k}", "hit rate", "coverage", "p50 ms", "p99 ms",
)  # fmt: skip


def _round(value: float) -> float:
    return round(value, 6)


def _latency(latencies: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(1000 * percentile(latencies, 50), 3),
        "p99": round(1000 * percentile(latencies, 99), 3),
    }


def next_item_method(metrics: NextItemMetrics, catalogue: int) -> dict[str, Any]:
    k = metrics.k
    revisit, new = metrics.split_hit_rates()
    return {
        "cases": metrics.cases,
        "revisit_cases": metrics.revisit_cases,
        f"hr@{k}_revisit": _round(revisit),
        f"hr@{k}_new": _round(new),
        f"hr@{k}": _round(metrics.hit_rate(k)),
        f"mrr@{k}": _round(metrics.mrr(k)),
        f"ndcg@{k}": _round(metrics.ndcg(k)),
        "coverage": _round(metrics.coverage(catalogue)),
        "latency_ms": _latency(metrics.latencies),
        "hr": [_round(metrics.hit_rate(c)) for c in range(1, k + 1)],
        "mrr": [_round(metrics.mrr(c)) for c in range(1, k + 1)],
        "ndcg": [_round(metrics.ndcg(c)) for c in range(1, k + 1)],
    }


def next_item_summary(result: NextItemResult, k: int) -> dict[str, Any]:
    return {
        "protocol": "next-item",
        "k": k,
        "mode": result.mode,
        "sessions": result.sessions,
        "cases": result.cases,
        "catalogue": result.catalogue,
        "targets_in_catalogue": result.targets_in_catalogue,
        "methods": {
            name: next_item_method(metrics, result.catalogue)
            for name, metrics in result.methods.items()
        },
    }


def top_n_summary(result: TopNResult, k: int) -> dict[str, Any]:
    methods: dict[str, Any] = {}
    for name, m in result.methods.items():
        k = m.k
        methods[name] = {
            "users": m.users,
            f"precision@{k}": _round(m.mean(m.precision_sum)),
            f"recall@{k}": _round(m.mean(m.recall_sum)),
            f"ndcg@{k}": _round(m.mean(m.ndcg_sum)),
            "hit_rate": _round(m.hits / m.users if m.users else 0.0),
            "coverage": _round(m.coverage(result.catalogue)),
            "latency_ms": _latency(m.latencies),
        }
    return {
        "protocol": "top-n",
        "k": k,
        "users": result.users,
        "catalogue": result.catalogue,
        "min_events": result.min_events,
        "holdout_fraction": result.holdout_fraction,
        "methods": methods,
    }


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def headers(summary: Mapping[str, Any]) -> list[str]:
    k = summary["k"]
    names = NEXT_ITEM_HEADERS if summary["protocol"] == "next-item" else TOP_N_HEADERS
    return [h.format(k=k) for h in names]


def rows(summary: Mapping[str, Any]) -> list[list[str]]:
    """One row per method: percentages (coverage too) and latency in ms."""
    k = summary["k"]
    out: list[list[str]] = []
    for name, m in summary["methods"].items():
        latency = m["latency_ms"]
        if summary["protocol"] == "next-item":
            values = [m[f"hr@{k}"], m[f"mrr@{k}"], m[f"ndcg@{k}"], m["coverage"]]
        else:
            values = [
                m[f"precision@{k}"], m[f"recall@{k}"], m[f"ndcg@{k}"], m["hit_rate"],
                m["coverage"],
            ]  # fmt: skip
        out.append(
            [name, *(_pct(v) for v in values), f"{latency['p50']:.2f}", f"{latency['p99']:.2f}"]
        )
    return out


def markdown_table(summary: Mapping[str, Any]) -> str:
    head = headers(summary)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(summary)]
    return "\n".join(lines)


def revisit_table(summary: Mapping[str, Any]) -> str:
    """HR@k split by target: already in the session (a re-visit) or new to it."""
    k = summary["k"]
    methods = summary["methods"]
    revisits = next(iter(methods.values()))["revisit_cases"] if methods else 0
    lines = [
        f"| method | HR@{k} re-visit ({revisits:,} cases) | "
        f"HR@{k} new item ({summary['cases'] - revisits:,} cases) |",
        "|---|---|---|",
    ]
    lines += [
        f"| {name} | {_pct(m[f'hr@{k}_revisit'])} | {_pct(m[f'hr@{k}_new'])} |"
        for name, m in methods.items()
    ]
    return "\n".join(lines)


def describe(summary: Mapping[str, Any]) -> str:
    if summary["protocol"] == "next-item":
        return (
            f"next-item, {summary['mode']} mode: {summary['cases']:,} cases in "
            f"{summary['sessions']:,} test sessions; catalogue {summary['catalogue']:,} items; "
            f"{summary['targets_in_catalogue']:,} targets in the catalogue"
        )
    return (
        f"per-user top-N: {summary['users']:,} users with >= {summary['min_events']} item "
        f"events, last {100 * summary['holdout_fraction']:.0f}% held out; catalogue "
        f"{summary['catalogue']:,} items"
    )


def markdown_report(meta: Mapping[str, Any], summaries: Sequence[Mapping[str, Any]]) -> str:
    """The whole report: what was run, then one table per protocol and mode."""
    lines = [f"# recstream evaluation: {meta['title']}", ""]
    lines += [f"- {key}: `{value}`" for key, value in meta.items() if key != "title"]
    lines.append("")
    for summary in summaries:
        lines += [f"## {describe(summary)}", "", markdown_table(summary), ""]
        if summary["protocol"] == "next-item":
            lines += [revisit_table(summary), ""]
    lines += [
        "Percentages; coverage = share of the training catalogue recommended at least once; "
        "latency = one request (read model load + ranking) in this process.",
        "",
    ]
    return "\n".join(lines)
