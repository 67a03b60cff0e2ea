"""Evaluation results as plain data: JSON-ready dictionaries, table rows, Markdown (pure).

Fractions in the JSON (0..1, rounded to 6 places), percentages in tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from recstream.offline.evaluation.metrics import NextItemMetrics, TopNMetrics, percentile
from recstream.offline.evaluation.next_item import MethodScores, NextItemResult
from recstream.offline.evaluation.top_n import TopNResult, TopNScores

NEXT_ITEM_HEADERS = (
    "method", "HR@{k}", "MRR@{k}", "new HR@{k}", "new MRR@{k}", "widget HR@{k}",
    "widget MRR@{k}", "coverage", "ms/case", "fit s",
)  # fmt: skip
TOP_N_HEADERS = (
    "method", "P@{k}", "R@{k}", "NDCG@{k}", "hit rate", "widget P@{k}", "widget R@{k}",
    "widget NDCG@{k}", "coverage", "ms/user", "fit s",
)  # fmt: skip


def _round(value: float) -> float:
    return round(value, 6)


def _latency(latencies: Sequence[float]) -> dict[str, float]:
    return {
        "mean": round(1000 * sum(latencies) / len(latencies), 3) if latencies else 0.0,
        "p50": round(1000 * percentile(latencies, 50), 3),
        "p99": round(1000 * percentile(latencies, 99), 3),
    }


def _widget(metrics: NextItemMetrics) -> dict[str, Any]:
    k = metrics.k
    return {
        "cases": metrics.cases,
        f"hr@{k}": _round(metrics.hit_rate(k)),
        f"mrr@{k}": _round(metrics.mrr(k)),
        f"ndcg@{k}": _round(metrics.ndcg(k)),
        "latency_ms": _latency(metrics.latencies),
    }


def next_item_method(scores: MethodScores, catalogue: int) -> dict[str, Any]:
    metrics = scores.full
    k = metrics.k
    revisit, new = metrics.split_hit_rates()
    return {
        "cases": metrics.cases,
        "revisit_cases": metrics.revisit_cases,
        f"hr@{k}_revisit": _round(revisit),
        f"hr@{k}_new": _round(new),
        f"mrr@{k}_new": _round(metrics.new_mrr(k)),
        f"hr@{k}": _round(metrics.hit_rate(k)),
        f"mrr@{k}": _round(metrics.mrr(k)),
        f"ndcg@{k}": _round(metrics.ndcg(k)),
        "coverage": _round(metrics.coverage(catalogue)),
        "latency_ms": _latency(metrics.latencies),
        "fit_seconds": round(scores.fit_seconds, 3),
        "widget": _widget(scores.widget),
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
            name: next_item_method(scores, result.catalogue)
            for name, scores in result.methods.items()
        },
    }


def _top_n(m: TopNMetrics, catalogue: int) -> dict[str, Any]:
    k = m.k
    return {
        "users": m.users,
        f"precision@{k}": _round(m.mean(m.precision_sum)),
        f"recall@{k}": _round(m.mean(m.recall_sum)),
        f"ndcg@{k}": _round(m.mean(m.ndcg_sum)),
        "hit_rate": _round(m.hits / m.users if m.users else 0.0),
        "coverage": _round(m.coverage(catalogue)),
        "latency_ms": _latency(m.latencies),
    }


def top_n_method(scores: TopNScores, catalogue: int) -> dict[str, Any]:
    return {
        **_top_n(scores.full, catalogue),
        "fit_seconds": round(scores.fit_seconds, 3),
        "widget": _top_n(scores.widget, catalogue),
    }


def top_n_summary(result: TopNResult, k: int) -> dict[str, Any]:
    return {
        "protocol": "top-n",
        "k": k,
        "users": result.users,
        "catalogue": result.catalogue,
        "min_events": result.min_events,
        "holdout_fraction": result.holdout_fraction,
        "methods": {
            name: top_n_method(scores, result.catalogue) for name, scores in result.methods.items()
        },
    }


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def headers(summary: Mapping[str, Any]) -> list[str]:
    k = summary["k"]
    names = NEXT_ITEM_HEADERS if summary["protocol"] == "next-item" else TOP_N_HEADERS
    return [h.format(k=k) for h in names]


def rows(summary: Mapping[str, Any]) -> list[list[str]]:
    """One row per method: percentages (coverage too), ms per case and training seconds."""
    k = summary["k"]
    out: list[list[str]] = []
    for name, m in summary["methods"].items():
        w = m["widget"]
        if summary["protocol"] == "next-item":
            values = [
                m[f"hr@{k}"], m[f"mrr@{k}"], m[f"hr@{k}_new"], m[f"mrr@{k}_new"],
                w[f"hr@{k}"], w[f"mrr@{k}"], m["coverage"],
            ]  # fmt: skip
        else:
            values = [
                m[f"precision@{k}"], m[f"recall@{k}"], m[f"ndcg@{k}"], m["hit_rate"],
                w[f"precision@{k}"], w[f"recall@{k}"], w[f"ndcg@{k}"], m["coverage"],
            ]  # fmt: skip
        cost = f"{m['latency_ms']['mean']:.2f}"
        out.append([name, *(_pct(v) for v in values), cost, f"{m['fit_seconds']:.1f}"])
    return out


def markdown_table(summary: Mapping[str, Any]) -> str:
    head = headers(summary)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(summary)]
    return "\n".join(lines)


def describe(summary: Mapping[str, Any]) -> str:
    if summary["protocol"] == "next-item":
        methods = summary["methods"]
        revisits = next(iter(methods.values()))["revisit_cases"] if methods else 0
        share = revisits / summary["cases"] if summary["cases"] else 0.0
        return (
            f"next-item, {summary['mode']} mode: {summary['cases']:,} cases in "
            f"{summary['sessions']:,} test sessions ({100 * share:.1f}% re-visits, "
            f"{summary['cases'] - revisits:,} new-item cases); catalogue "
            f"{summary['catalogue']:,} items; {summary['targets_in_catalogue']:,} targets in "
            "the catalogue"
        )
    methods = summary["methods"]
    widget_users = next(iter(methods.values()))["widget"]["users"] if methods else 0
    return (
        f"per-user top-N: {summary['users']:,} users with >= {summary['min_events']} item "
        f"events, last {100 * summary['holdout_fraction']:.0f}% held out ({widget_users:,} "
        f"with held-out items new to their last session); catalogue "
        f"{summary['catalogue']:,} items"
    )


LEGEND = (
    "Percentages. HR / MRR: the published protocol, the full list (items of the session may "
    "come back) on every case; new: the same list on the cases whose target is not yet in "
    "the session; widget: the list the API serves by default (the item on screen and every "
    "item seen in the session left out, back-filled), on the new-item cases. Top-N widget: "
    "nothing of the user's last session, against the held-out items new to it. Coverage = "
    "share of the training catalogue recommended at least once; ms/case = mean cost of one "
    "full-list request in this process (the system's includes the read-model load); fit s = "
    "a baseline's training time."
)


def markdown_report(meta: Mapping[str, Any], summaries: Sequence[Mapping[str, Any]]) -> str:
    """The whole report: what was run, then one table per protocol and mode."""
    lines = [f"# recstream evaluation: {meta['title']}", ""]
    lines += [f"- {key}: `{value}`" for key, value in meta.items() if key != "title"]
    lines.append("")
    for summary in summaries:
        lines += [f"## {describe(summary)}", "", markdown_table(summary), ""]
    lines += [LEGEND, ""]
    return "\n".join(lines)
