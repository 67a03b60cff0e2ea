"""The demo event generator's pure parts: interleaving, re-stamping, pacing, loading."""

from __future__ import annotations

import ast
import itertools
import random
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from recstream.contract.events import MAX_ID_LENGTH, Event, validate_event
from recstream_cli.demo_generator import (
    demo_generate,
    group_sessions,
    interleave,
    live_event,
    load_sessions,
    pace_delay,
    tagged,
)

from .eventgen import make_event

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
GENERATOR = Path(__file__).resolve().parents[2] / "services/cli/src/recstream_cli/demo_generator.py"


def _sessions(lengths: list[int]) -> list[list[Event]]:
    return [
        [
            validate_event(
                make_event(f"e{s}-{i}", "product_view", f"u{s}", minutes=i, product_id=f"p{i}")
                | {"session_id": f"s{s}"}
            )
            for i in range(length)
        ]
        for s, length in enumerate(lengths)
    ]


def test_interleave_emits_every_event_once_in_session_order() -> None:
    sessions = _sessions([3, 1, 5, 2, 4])
    emitted = list(interleave(sessions, concurrency=2, rng=random.Random(1), loop=False))
    assert sorted(e.event_id for _, e in emitted) == sorted(e.event_id for s in sessions for e in s)
    assert {r for r, _ in emitted} == {0}
    by_session: dict[str, list[str]] = defaultdict(list)
    for _, event in emitted:
        by_session[event.user_id].append(event.event_id)
    for session in sessions:
        assert by_session[session[0].user_id] == [e.event_id for e in session]


def test_interleave_keeps_at_most_concurrency_sessions_open_and_mixes_them() -> None:
    sessions = _sessions([4] * 10)
    emitted = [e for _, e in interleave(sessions, 3, random.Random(2), loop=False)]
    seen: set[str] = set()
    remaining = {s[0].user_id: len(s) for s in sessions}
    for event in emitted:
        seen.add(event.user_id)
        remaining[event.user_id] -= 1
        open_now = {u for u in seen if remaining[u] > 0}
        assert len(open_now) <= 3
    users = [e.user_id for e in emitted]
    switches = sum(a != b for a, b in itertools.pairwise(users))
    assert switches > len(sessions), "sessions are interleaved, not played one after another"


def test_interleave_loops_with_increasing_rounds() -> None:
    stream = interleave(_sessions([2, 3]), 4, random.Random(3), loop=True)
    rounds = [next(stream)[0] for _ in range(23)]
    assert rounds[0] == 0
    assert max(rounds) >= 3
    assert list(interleave([[], []], 2, random.Random(0), loop=True)) == []


def test_live_event_is_new_traffic_now_with_tagged_ids() -> None:
    source = _sessions([1])[0][0]
    live = live_event(source, NOW, "ab12.3")
    assert live.occurred_at == NOW
    assert live.event_id == f"{source.event_id}-ab12.3"
    assert live.session_id == "s0-ab12.3"
    assert (live.user_id, live.product_id, live.event_type) == (
        source.user_id,
        source.product_id,
        source.event_type,
    )


def test_tagged_ids_stay_within_the_contract_length() -> None:
    long_id = "x" * MAX_ID_LENGTH
    result = tagged(long_id, "run.1")
    assert len(result) <= MAX_ID_LENGTH
    assert result.endswith("-run.1")
    assert tagged(long_id, "run.1") != tagged("y" * MAX_ID_LENGTH, "run.1")
    assert tagged("short", "t") == "short-t"


@pytest.mark.parametrize(
    ("sent", "rate", "elapsed", "expected"),
    [(0, 10.0, 0.0, 0.0), (10, 10.0, 0.5, 0.5), (10, 10.0, 2.0, 0.0), (3, 2.0, 1.0, 0.5)],
)
def test_pace_delay_holds_sends_to_the_rate(
    sent: int, rate: float, elapsed: float, expected: float
) -> None:
    assert pace_delay(sent, rate, elapsed) == pytest.approx(expected)


def test_group_sessions_reads_at_most_max_events() -> None:
    events = [e for s in _sessions([3, 3, 3]) for e in s]
    grouped = group_sessions(events, max_events=5)
    assert [len(s) for s in grouped] == [3, 2]


def test_load_sessions_reads_the_diginetica_sample(datasets: Path) -> None:
    sessions = load_sessions(datasets / "diginetica-sample" / "events.csv", "auto", 1000)
    assert sum(map(len, sessions)) == 1000
    assert len(sessions) > 50
    assert all(e.category for s in sessions for e in s)


def test_cli_refuses_a_run_id_that_is_not_an_id(datasets: Path) -> None:
    dataset = str(datasets / "diginetica-sample" / "events.csv")
    result = CliRunner().invoke(demo_generate, ["--dataset", dataset, "--run-id", "a|b"])
    assert result.exit_code == 2
    assert "--run-id" in result.output


def test_the_module_runs_as_a_plain_script() -> None:
    """docker-compose runs the file with ``python demo_generator.py`` in the API image."""
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=GENERATOR.parent.parent.parent.parent,
    )
    assert result.returncode == 0, result.stderr
    assert "--rate" in result.stdout


def test_the_module_needs_only_what_the_api_image_has() -> None:
    """The API image has the core library, aiokafka and click (uvicorn's), not the CLI."""
    tree = ast.parse(GENERATOR.read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
    }
    outside = imported - set(sys.stdlib_module_names) - {"__future__"}
    assert outside == {"recstream", "aiokafka", "click"}
