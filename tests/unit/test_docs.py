"""The documents say what the code does: README commands, event examples, keyspace, settings."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import get_args

import pytest

from recstream.contract.events import DEFAULT_WEIGHTS, EventType, validate_event
from recstream.model.statistics import StatKind
from tests.unit.settings_names import known_settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
EVENTS_DOC = (ROOT / "docs" / "events.md").read_text()
KEYSPACE_DOC = (ROOT / "docs" / "keyspace.md").read_text()


def _fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def test_readme_gives_exactly_the_two_commands_and_ci_runs_the_test_one() -> None:
    assert "make run\nmake test\n" in _fenced_blocks(README, "bash")
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [
        line.strip()
        for line in ci.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "make test" in commands
    assert not [c for c in commands if "pytest" in c or "uv " in c], "CI runs only make test"


def test_make_help_lists_the_targets_the_readme_names() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    listed = set(re.findall(r"make (\S+)", result.stdout))
    named = set(re.findall(r"`make ([a-z-]+)", README))
    assert named, "the README names make targets"
    assert named <= listed, named - listed


def test_every_event_example_is_valid_and_every_type_has_one() -> None:
    examples = [json.loads(block) for block in _fenced_blocks(EVENTS_DOC, "json")]
    events = [validate_event(example) for example in examples]
    assert sorted(e.event_type for e in events) == sorted(EventType)


@pytest.mark.parametrize("event_type", list(EventType))
def test_the_weight_table_matches_the_defaults(event_type: EventType) -> None:
    row = re.search(rf"^\| `{event_type.value}` \| (-?[\d.]+) \|", EVENTS_DOC, re.MULTILINE)
    assert row is not None, event_type
    assert float(row.group(1)) == DEFAULT_WEIGHTS[event_type]


def test_the_dead_letter_reasons_are_documented() -> None:
    for reason in (
        "invalid_json",
        "schema_violation",
        "unknown_event_type",
        "oversize",
        "empty",
        "key_mismatch",
        "future_event",
    ):
        assert f"| `{reason}` |" in EVENTS_DOC, reason
    for header in ("reason", "detail", "source.topic", "source.partition", "source.offset"):
        assert f"`dlq.{header}`" in EVENTS_DOC, header


def test_every_statistic_kind_has_a_key_in_the_keyspace_document() -> None:
    for kind in get_args(StatKind):
        assert re.search(rf"`rs:v2:\{{s:<n>\}}:{kind}\b", KEYSPACE_DOC), kind
    for key in ("{u:<user_id>}:state", "{wm}:partitions:<topic>", ":catalog:<item>", "erasures"):
        assert key in KEYSPACE_DOC, key


def test_the_readme_configuration_table_names_real_settings() -> None:
    named = set(re.findall(r"^\| `(RECSTREAM_[A-Z0-9_]+)`", README, re.MULTILINE))
    assert len(named) >= 10
    assert not named - known_settings()
