"""The shipped PromQL: every alerting rule's and Grafana panel's expression parses, reads only
metrics the API and the consumer export (under the names Prometheus stores them), and routes
that exist; the Prometheus Operator's PrometheusRule carries the rule file's groups exactly;
the compose Prometheus loads the rule file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry

from recstream_api.main import create_app
from recstream_api.metrics import ApiMetrics
from recstream_consumer.metrics import ConsumerMetrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/monitoring/recstream-alerts.yml"
OPERATOR_RULE = ROOT / "deploy/monitoring/prometheusrule.yaml"
DASHBOARD = ROOT / "docs/grafana/recstream.json"

# the sample names Prometheus stores for each type of metric family
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _exported() -> set[str]:
    """Every sample name the API's and the consumer's registries can expose."""
    names: set[str] = set()
    for registry in (ApiMetrics().registry, ConsumerMetrics(CollectorRegistry()).registry):
        for family in registry.collect():
            names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def _selectors(node: Any) -> Iterator[Any]:
    """The vector selectors of a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        yield node
        return
    for child in ("lhs", "rhs", "expr", "param", "vector_selector"):
        if (found := getattr(node, child, None)) is not None:
            yield from _selectors(found)
    for arg in getattr(node, "args", None) or ():
        yield from _selectors(arg)


def _labels(selector: Any) -> dict[str, str]:
    """The equality matchers of a selector, name -> value (``name="value"`` in its text)."""
    return dict(re.findall(r'(\w+)="([^"]*)"', str(selector)))


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["alert"])
def test_each_alert_reads_metrics_that_exist(rule: dict[str, Any]) -> None:
    expression = promql_parser.parse(rule["expr"])  # raises on PromQL that does not parse
    exported = _exported()
    selectors = list(_selectors(expression))
    assert selectors, "an alert that reads no metric"
    routes = set(create_app().openapi()["paths"])
    for selector in selectors:
        assert selector.name in exported, f"{selector.name} is not exported"
        route = _labels(selector).get("route")
        assert route is None or route in routes, f"no route {route}"
    assert rule["labels"]["severity"] in {"info", "warning", "critical"}
    assert rule["annotations"]["summary"]
    assert rule["annotations"]["description"]


def _panel_exprs() -> list[tuple[str, str]]:
    """(panel title, expression) of every dashboard target, Grafana's variables replaced by
    values PromQL parses (``$__rate_interval`` a range, the others a label value)."""
    found = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "5m")
            found.append((panel["title"], re.sub(r"\$\{?\w+\}?", "x", expr)))
    return found


@pytest.mark.parametrize(("title", "expr"), _panel_exprs(), ids=lambda v: str(v)[:40])
def test_each_dashboard_panel_reads_metrics_that_exist(title: str, expr: str) -> None:
    selectors = list(_selectors(promql_parser.parse(expr)))
    assert selectors, f"{title}: reads no metric"
    exported = _exported()
    for selector in selectors:
        assert selector.name in exported, f"{title}: {selector.name} is not exported"


def test_a_misspelled_metric_would_be_caught() -> None:
    """The check above can fail: a name the exporters do not have is not among them."""
    [selector] = _selectors(promql_parser.parse("sum(rate(recstream_consumer_event_total[5m]))"))
    assert selector.name not in _exported()
    assert "recstream_consumer_events_total" in _exported()
    with pytest.raises(ValueError, match="subquery"):
        promql_parser.parse("time()[1h:]")


def test_alert_names_are_unique() -> None:
    names = [rule["alert"] for rule in _rules()]
    assert len(names) == len(set(names))
    assert "RecstreamRankerStale" in names  # the one docs/ranker.md describes


def test_the_operators_rule_carries_the_rule_files_groups() -> None:
    operator = yaml.safe_load(OPERATOR_RULE.read_text())
    assert (operator["apiVersion"], operator["kind"]) == (
        "monitoring.coreos.com/v1",
        "PrometheusRule",
    )
    assert operator["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_the_compose_prometheus_loads_the_rule_file() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = dict(
        reversed(volume.rsplit(":", 2)[:2])
        for volume in compose["services"]["prometheus"]["volumes"]
        if volume.startswith("./")
    )
    config = yaml.safe_load((ROOT / mounts["/etc/prometheus/prometheus.yml"]).read_text())
    [loaded] = config["rule_files"]
    assert (ROOT / mounts[loaded]).resolve() == RULES
