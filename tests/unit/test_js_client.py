"""The JavaScript client (``clients/js``): its own Node test suite, and its contract.

Node is required in CI; elsewhere these tests skip when ``node`` is not installed.
The contract tests make the client build events and read requests with a fake fetch
and validate them with the Python contract (the event models, the recommendations
request model, the query parameters the routes declare), so the two cannot drift apart.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from recstream.contract.events import WRITTEN_BY_API, EventType, ProductView, validate_event
from recstream_api.identity_routes import IdentifyRequest
from recstream_api.main import create_app
from recstream_api.recommendation_schemas import RecommendationsRequest
from recstream_api.routes import PREFIX
from recstream_api.settings import ApiSettings, AuthSettings

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
    assert set(declared["types"]) == {t.value for t in APP_TYPES}
    assert set(declared["fields"]) == set(ProductView.model_fields)


# the types apps send (the API writes the others itself)
APP_TYPES = [t for t in EventType if t not in WRITTEN_BY_API]

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
    assert len(events) == len(APP_TYPES)
    sessions = {e["session_id"] for e in events}
    assert len(sessions) == 1
    for raw in events:
        event = validate_event(raw)
        assert event.user_id == "u-js"
        assert event.occurred_at.tzinfo is not None
    assert len({e["event_id"] for e in events}) == len(events)


@pytest.mark.parametrize("event_type", APP_TYPES)
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


BUILD_READS = """
import { RecstreamClient } from './recstream.js';
const calls = [];
const fetch = async (url, init) => {
  calls.push({ url, method: init.method, headers: init.headers,
               body: init.body === undefined ? null : JSON.parse(init.body) });
  return { status: 200, ok: true, headers: { get: () => null }, json: async () => ({}) };
};
const client = new RecstreamClient({
  endpoint: '/api/behavioral-ml', userId: 'u-js', token: 't', fetch, storage: null,
  lifecycleTarget: null,
});
const onScreen = { kind: 'product', id: 'p-9' };
await client.recommendations({
  limit: 8, kind: 'both', filters: { max_per_category: 2, exclude_categories: ['gifts'] },
  currentItem: onScreen, shownItems: [{ kind: 'group', id: 'g-2' }, { kind: 'product', id: 'p-3' }],
  page: 'product', includeSeen: false, includeReasons: true,
});
await client.recommendations({ limit: 3, currentItem: { kind: 'group', id: 'g-2' } });
await client.sessionRecommendations({
  limit: 5, kind: 'products', currentItem: onScreen, includeSeen: true, userId: 'u-js',
});
await client.sessionRecommendations({ limit: 5, currentItem: { kind: 'group', id: 'g-2' } });
await client.nextProducts({ productId: 'p-9', limit: 4, includeSeen: false, userId: 'u-js' });
console.log(JSON.stringify(calls));
"""


def _query_parameters(path: str, method: str) -> set[str]:
    settings = ApiSettings(
        environment="dev",
        auth=AuthSettings(jwt_secret=SecretStr("unit-js-client-secret-0123456789abcdef0123")),
    )
    operation = create_app(settings).openapi()["paths"][f"{PREFIX}{path}"][method]
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}


def test_reads_the_client_sends_are_requests_the_api_declares() -> None:
    calls = _run_module(BUILD_READS)
    assert [c["method"] for c in calls] == ["POST", "POST", "GET", "GET", "GET"]
    assert all(c["headers"]["Authorization"] == "Bearer t" for c in calls)

    product_page, group_page = (RecommendationsRequest.model_validate(c["body"]) for c in calls[:2])
    assert calls[0]["url"] == calls[1]["url"] == f"{PREFIX}/recommendations"
    assert product_page.context is not None
    assert product_page.context.product_id == "p-9"
    assert product_page.context.group_id is None
    assert product_page.include_reasons is True
    assert group_page.include_reasons is False, "left out: the API's default"
    assert product_page.model_dump(include={"context", "include_seen"}) == {
        "context": {
            "product_id": "p-9",
            "group_id": None,
            "shown_product_ids": ["p-3"],
            "shown_group_ids": ["g-2"],
            "page": "product",
        },
        "include_seen": False,
    }
    assert group_page.context is not None
    assert (group_page.context.product_id, group_page.context.group_id) == (None, "g-2")

    for call in calls[2:]:
        path, _, query = call["url"].partition("?")
        assert path.startswith(PREFIX)
        sent = {name for name, _ in (pair.split("=", 1) for pair in query.split("&"))}
        declared = _query_parameters(path.removeprefix(PREFIX), "get")
        assert sent <= declared, (call["url"], sorted(declared))
    assert calls[2]["url"] == (
        f"{PREFIX}/session/recommendations?limit=5&kind=products&product_id=p-9"
        "&include_seen=true&user_id=u-js"
    )
    assert calls[3]["url"] == f"{PREFIX}/session/recommendations?limit=5&group_id=g-2"
    assert calls[4]["url"] == (
        f"{PREFIX}/sequential/next-products?product_id=p-9&limit=4&include_seen=false&user_id=u-js"
    )


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


IDENTIFY = """
import { RecstreamClient } from './recstream.js';
const calls = [];
const answers = {
  '/anonymous': { anonymous_id: 'anon-js', token: 'anon-token',
                  expires_at: new Date(Date.now() + 86400000).toISOString() },
  '/track-interaction': { accepted: 1, event_ids: ['e'],
                          events: [{ event_id: 'e', partition: 2, offset: 9 }] },
  '/identify': { user_id: 'u-js', anonymous_id: 'anon-js', merged_events: 1 },
};
const fetch = async (url, init) => {
  calls.push({ url, body: init.body === undefined ? null : JSON.parse(init.body) });
  const body = answers[url.slice('/api/behavioral-ml'.length)];
  return { ok: true, status: 200, headers: { get: () => null }, json: async () => body };
};
const client = await RecstreamClient.anonymous({
  fetch, storage: null, queueStorage: null, anonymousStorage: null, lifecycleTarget: null,
});
client.track('product_view', { product_id: 'p-1' });
await client.identify({ userId: 'u-js', token: 'user-token' });
console.log(JSON.stringify(calls));
"""


def test_the_identify_call_is_a_request_the_api_declares() -> None:
    """The client's anonymous flow sends what the routes take: a bodiless POST /anonymous,
    events of the anonymous id, and an identify body that IdentifyRequest accepts."""
    anonymous, tracked, identify = _run_module(IDENTIFY)
    assert anonymous == {"url": f"{PREFIX}/anonymous", "body": None}
    [event] = tracked["body"]["events"]
    assert validate_event(event).user_id == "anon-js"
    request = IdentifyRequest.model_validate(identify["body"])
    assert identify["url"] == f"{PREFIX}/identify"
    assert request.anonymous_token == "anon-token"
    assert request.after is not None
    assert (request.after.partition, request.after.offset) == (2, 9)
