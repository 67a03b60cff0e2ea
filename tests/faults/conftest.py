"""The fault suite under pytest: quick scenarios in CI, the slow ones on demand.

Scenarios marked ``slow`` are deselected unless a marker expression is given
(``pytest -m slow tests/faults``) or ``RECSTREAM_FAULTS_SLOW=1`` is set, except
those also marked ``cluster_ci`` in a cluster run (``RECSTREAM_TEST_REDIS_MODE=cluster``:
a rebalance moves partitions between writers of the per-slot commit); the whole
suite with its report is ``recstream faults --out DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from faults.report import ScenarioResult, markdown
from faults.scenarios.common import SuiteOptions

from ..conftest import cluster_mode

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.option.markexpr or os.environ.get("RECSTREAM_FAULTS_SLOW"):
        return
    slow = [
        i
        for i in items
        if HERE in i.path.parents
        and i.get_closest_marker("slow")
        and not (cluster_mode() and i.get_closest_marker("cluster_ci"))
    ]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [i for i in items if i not in slow]


@pytest.fixture
def options(tmp_path: Path, datasets: Path) -> SuiteOptions:
    """Quick mode, a working folder of the test's own."""
    return SuiteOptions(
        workdir=tmp_path, datasets=datasets, quick=True, redis_cluster=cluster_mode()
    )


def explain(result: ScenarioResult) -> str:
    return markdown(
        [result],
        {
            "date": "-",
            "machine": "-",
            "mode": "quick",
            "runtime": "-",
            "redis": "-",
            "command": "pytest",
        },
    )
