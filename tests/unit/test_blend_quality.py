"""The blend's quality, as ``recstream eval`` measures it: on ``yoochoose-100k`` and the
Diginetica sample it reproduces the figures docs/quality.md and the README give.

A change that makes the hot path cheaper must not cost a point of quality: this test runs
the documented command (next-item protocol, frozen mode, the blend alone) and pins its
HR@20 / MRR@20 on the whole list, on the cases whose target is new to the session and on
the list the API serves (the widget). The blend is deterministic, so the tolerance only
absorbs floating-point differences between platforms; a figure that moves more than that is
a change of the model, to be measured and documented, not absorbed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from recstream_cli.main import cli

# docs/quality.md, next-item frozen mode, blend, in %: (HR@20, MRR@20)
DOCUMENTED = {
    "yoochoose-100k": {
        "published": (69.77, 37.41),
        "new": (54.67, 13.71),
        "widget": (56.09, 26.22),
    },
    "diginetica": {"published": (28.43, 14.66), "new": (9.41, 2.08), "widget": (9.60, 3.53)},
}
TOLERANCE = 0.1


def run_eval(arguments: list[str], out: Path) -> dict[str, tuple[float, float]]:
    args = ["eval", *arguments, "--mode", "frozen", "--methods", "blend", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    blend = json.loads((out / "results.json").read_text())["results"][0]["methods"]["blend"]
    return {
        "published": (blend["hr@20"], blend["mrr@20"]),
        "new": (blend["hr@20_new"], blend["mrr@20_new"]),
        "widget": (blend["widget"]["hr@20"], blend["widget"]["mrr@20"]),
    }


def assert_documented(measured: dict[str, tuple[float, float]], dataset: str) -> None:
    for name, (hr, mrr) in measured.items():
        documented_hr, documented_mrr = DOCUMENTED[dataset][name]
        assert 100 * hr == pytest.approx(documented_hr, abs=TOLERANCE), (dataset, name, "HR@20")
        assert 100 * mrr == pytest.approx(documented_mrr, abs=TOLERANCE), (dataset, name, "MRR")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_blend_reproduces_its_yoochoose_figures(datasets: Path, tmp_path: Path) -> None:
    files = datasets / "yoochoose-100k" / "yoochoose-clicks-100k"
    arguments = ["--train", f"{files}_train_full.txt", "--test", f"{files}_test.txt"]
    assert_documented(run_eval(arguments, tmp_path), "yoochoose-100k")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_blend_reproduces_its_diginetica_figures(datasets: Path, tmp_path: Path) -> None:
    arguments = ["--train", str(datasets / "diginetica-sample" / "events.csv")]
    assert_documented(run_eval(arguments, tmp_path), "diginetica")
