"""The JavaScript tracking client (``clients/js``): its own Node test suite, and its contract.

Node is required in CI; elsewhere these tests skip when ``node`` is not installed.
The contract tests make the client build events with a fake fetch and validate
them with the Python contract, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from recstream.events import EventType, ProductView, validate_event

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "js"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("node is required in CI for the JavaScript client tests")
        pytest.skip("node is not installed")
    return node


def _run_module(source: str) -> Any:
    """Run ES module ``source`` next to the client; its stdout parsed as JSON."""
    result = subprocess.run(
        [_node(), "--input-type=module", "-e", source],
        cwd=CLIENT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_node_test_suite_passes() -> None:
    result = subprocess.run(
        [_node(), "--test", "test/"],
        cwd=CLIENT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
    passed = int(result.stdout.rsplit("# pass ", 1)[1].split()[0])
    assert passed >= 25, result.stdout[-2000:]


def test_client_knows_every_event_type_and_field_of_the_contract() -> None:
    declared = _run_module(
        "import { EVENT_TYPES, EVENT_FIELDS } from './recstream.js';"
        "console.log(JSON.stringify({ types: EVENT_TYPES, fields: EVENT_FIELDS }));"
    )
    assert set(declared["types"]) == {t.value for t in EventType}
    assert set(declared["fields"]) == set(ProductView.model_fields)


SAMPLE_VALUES: dict[str, Any] = {
    "product_id": "p-9",
    "group_id": "g-2",
    "rating": 4,
    "query": "tea",
}

BUILD_EVENTS = """
import { EVENT_TYPES, RecstreamClient } from './recstream.js';
const bodies = [];
const fetch = async (url, init) => {
  bodies.push({ url, headers: init.headers, body: JSON.parse(init.body) });
  return { status: 202, ok: true, headers: { get: () => null }, json: async () => ({}) };
};
const client = new RecstreamClient({
  endpoint: '/api/behavioral-ml', userId: 'u-js', token: 't', fetch, storage: null,
  lifecycleTarget: null, batchSize: 100,
});
const values = JSON.parse(process.argv[1]);
for (const [type, required] of Object.entries(EVENT_TYPES)) {
  const fields = Object.fromEntries(required.map((name) => [name, values[name]]));
  client.track(type, { ...fields, category: 'tea', price: 3.5, properties: { ab: 'b' } });
}
await client.flush();
console.log(JSON.stringify({ bodies, required: EVENT_TYPES }));
"""


def test_events_the_client_sends_are_valid_contract_events() -> None:
    result = subprocess.run(
        [_node(), "--input-type=module", "-e", BUILD_EVENTS, json.dumps(SAMPLE_VALUES)],
        cwd=CLIENT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    [request] = output["bodies"]
    assert request["url"] == "/api/behavioral-ml/track-interaction"
    assert request["headers"]["Authorization"] == "Bearer t"
    events = request["body"]["events"]
    assert len(events) == len(EventType)
    sessions = {e["session_id"] for e in events}
    assert len(sessions) == 1
    for raw in events:
        event = validate_event(raw)
        assert event.user_id == "u-js"
        assert event.occurred_at.tzinfo is not None
    assert len({e["event_id"] for e in events}) == len(events)


@pytest.mark.parametrize("event_type", list(EventType))
def test_the_client_requires_exactly_the_fields_the_contract_requires(
    event_type: EventType,
) -> None:
    required = _required_fields()[event_type.value]
    base = {
        "event_id": "e-1",
        "event_type": event_type.value,
        "user_id": "u-1",
        "occurred_at": "2025-03-14T09:00:00Z",
    }
    validate_event({**base, **{name: SAMPLE_VALUES[name] for name in required}})
    for missing in required:
        kept = {name: SAMPLE_VALUES[name] for name in required if name != missing}
        with pytest.raises(ValidationError):
            validate_event({**base, **kept})


_REQUIRED_CACHE: dict[str, list[str]] = {}


def _required_fields() -> dict[str, list[str]]:
    if not _REQUIRED_CACHE:
        _REQUIRED_CACHE.update(
            _run_module(
                "import { EVENT_TYPES } from './recstream.js';"
                "console.log(JSON.stringify(EVENT_TYPES));"
            )
        )
    return _REQUIRED_CACHE
