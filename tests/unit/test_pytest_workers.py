"""``make test`` runs pytest in worker processes; a Redis shared by them is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def collect(*options: str, redis_url: str | None) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "RECSTREAM_TEST_REDIS_URL" and not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))
    }
    if redis_url is not None:
        env["RECSTREAM_TEST_REDIS_URL"] = redis_url
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *options, __file__],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_several_workers_refuse_a_redis_named_in_the_environment() -> None:
    refused = collect("-n", "2", redis_url="redis://127.0.0.1:1/0")
    assert refused.returncode == pytest.ExitCode.USAGE_ERROR, refused.stdout + refused.stderr
    assert "RECSTREAM_TEST_REDIS_URL names one Redis for every pytest worker" in refused.stderr


def test_one_process_or_workers_of_their_own_are_accepted() -> None:
    one_process = collect("-n", "0", redis_url="redis://127.0.0.1:1/0")
    assert one_process.returncode == 0, one_process.stdout + one_process.stderr
    own = collect("-n", "2", redis_url=None)
    assert own.returncode == 0, own.stdout + own.stderr
