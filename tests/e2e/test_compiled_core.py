"""The core compiled with mypyc (as the consumer's and the CLI's images build it) applies a
log bit for bit as the interpreted sources do, and the test run itself uses the sources."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from bench.compiled_core import SOURCE, build_compiled, child

import recstream.model.fold

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_tests_import_the_core_from_its_sources() -> None:
    # a compiled module left beside the sources (a build in place) would shadow them
    assert Path(recstream.model.fold.__file__ or "").suffix == ".py"
    assert not list(SOURCE.glob("**/*.so"))


def test_the_compiled_core_applies_a_log_bit_for_bit_as_the_sources_do(
    tmp_path: Path, datasets: Path
) -> None:
    build = tmp_path / "compiled"
    build_compiled(build)
    assert list(build.glob("recstream/model/fold.*.so")), "the fold was not compiled"
    end = time.time() - 60
    interpreted = child(SOURCE, 400, end, datasets)
    compiled = child(build, 400, end, datasets)
    assert interpreted["compiled"] is False
    assert compiled["compiled"] is True
    assert compiled["records"] == interpreted["records"] > 1_000
    assert compiled["digest"] == interpreted["digest"]
