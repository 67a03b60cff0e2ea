"""The API's log lines on a real Redis and a real broker: in process (who called, and no
credential in any line), and as a uvicorn process (every line of the process in one
format, exactly one access line per request)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from recstream.contract.keyspace import Keyspace
from recstream_api.auth import issue_token
from recstream_api.settings import ApiSettings, AuthSettings
from recstream_cli.localstack import free_port
from tests.unit.logcapture import CapturedLog, captured_api_log

from .test_api import (
    ADMIN_KEY,
    PREFIX,
    SECRET,
    TRACK_KEY,
    api_settings,
    bearer,
    closed_address,
    create_topic,
    event,
    serve,
)

pytestmark = pytest.mark.integration

PROFILE = f"{PREFIX}/user-profile/behavioral"
TRACK = f"{PREFIX}/track-interaction"
HEALTH = f"{PREFIX}/health"
START_TIMEOUT = 60.0


@pytest.fixture
def settings(
    redis_url: str, kafka_bootstrap: str, keyspace: Keyspace, topic_name: str, redis_client: Redis
) -> ApiSettings:
    return api_settings(redis_url, kafka_bootstrap, keyspace, topic_name)


@pytest.fixture(params=["logfmt", "json"])
def log(request: pytest.FixtureRequest, settings: ApiSettings) -> Iterator[CapturedLog]:
    with captured_api_log(settings.model_copy(update={"log_format": request.param})) as captured:
        yield captured


@pytest.fixture
async def client(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    await create_topic(settings.kafka.bootstrap_servers, settings.kafka.interactions_topic)
    async with serve(settings) as api:
        yield api


async def test_access_lines_name_the_caller_and_never_show_a_credential(
    client: httpx.AsyncClient, settings: ApiSettings, log: CapturedLog
) -> None:
    user = bearer(settings, "u-log")
    other = AuthSettings(jwt_secret=SecretStr("another-secret-that-is-long-enough-0123456789"))
    forged = issue_token(ApiSettings(auth=other), "u-log")  # signed with the wrong secret
    answers = [
        await client.get(PROFILE, headers=user),
        await client.post(TRACK, json=event("u-log"), headers={"X-API-Key": TRACK_KEY}),
        await client.get(PROFILE, params={"user_id": "u-log"}, headers={"X-API-Key": ADMIN_KEY}),
        await client.get(PROFILE, headers={"Authorization": f"Bearer {forged}"}),
        await client.get(PROFILE, headers={"X-API-Key": "not-a-key-at-all"}),
    ]
    assert [a.status_code for a in answers] == [200, 202, 200, 401, 401]
    lines = log.access()
    assert [line["request_id"] for line in lines] == [a.headers["X-Request-ID"] for a in answers]
    assert [line.get("subject") for line in lines] == [
        "user:u-log", "api-key:shop", "api-key:ops", None, None,
    ]  # fmt: skip
    assert [line["route"] for line in lines] == [PROFILE, TRACK, PROFILE, PROFILE, PROFILE]
    assert [str(line["status"]) for line in lines] == ["200", "202", "200", "401", "401"]
    assert answers[3].json()["error"]["request_id"] == answers[3].headers["X-Request-ID"]
    text = log.stream.getvalue()
    token = user["Authorization"].removeprefix("Bearer ")
    for secret in (token, forged, TRACK_KEY, ADMIN_KEY, "not-a-key-at-all", SECRET):
        assert secret not in text
    for part in token.split(".") + forged.split("."):  # nor a piece of a token
        assert part not in text
    assert lines[2]["path"] == PROFILE  # without the query string


async def test_a_line_the_store_logs_during_a_request_has_its_request_id(
    kafka_bootstrap: str, keyspace: Keyspace, topic_name: str
) -> None:
    down = api_settings(f"redis://{closed_address()}/0", kafka_bootstrap, keyspace, topic_name)
    with captured_api_log(down.model_copy(update={"log_format": "json"})) as log:
        async with serve(down) as api:
            response = await api.get(PROFILE, headers=bearer(down, "u-log"))
    assert response.status_code == 503
    request_id = response.headers["X-Request-ID"]
    assert response.json()["error"]["request_id"] == request_id
    records = log.api_records()
    # the ranker holder could not read its registry at start either: said once, no request's
    [ranker] = [r for r in records if r["logger"] == "recstream_api.rankers"]
    assert (ranker["level"], ranker["ranker"], ranker["reason"]) == ("WARNING", "blend", "redis")
    assert "request_id" not in ranker
    warning, access = [r for r in records if r["logger"] != "recstream_api.rankers"]
    assert (warning["logger"], warning["level"]) == ("recstream_api.errors", "WARNING")
    assert warning["msg"].startswith("store unavailable")
    assert warning["request_id"] == access["request_id"] == request_id
    assert (access["status"], access["subject"]) == (503, "user:u-log")


# --- the process ------------------------------------------------------------------------


def api_environment(settings: ApiSettings) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RECSTREAM_") or k.startswith("RECSTREAM_TEST_")
    }
    env.update(
        RECSTREAM_REDIS__URL=settings.redis.url,
        RECSTREAM_REDIS__KEY_PREFIX=settings.redis.key_prefix,
        RECSTREAM_KAFKA__BOOTSTRAP_SERVERS=settings.kafka.bootstrap_servers,
        RECSTREAM_KAFKA__INTERACTIONS_TOPIC=settings.kafka.interactions_topic,
        RECSTREAM_AUTH__JWT_SECRET=SECRET,
        RECSTREAM_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    return env


def wait_until_healthy(base: str, process: subprocess.Popen[str], seen: list[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the API exited with status {process.returncode}")
        try:
            response = httpx.get(f"{base}{HEALTH}", timeout=2.0)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        seen.append(response.headers["X-Request-ID"])
        if response.status_code == 200:
            return
        time.sleep(0.2)
    pytest.fail(f"the API did not answer 200 on {HEALTH} within {START_TIMEOUT}s")


@pytest.mark.timeout(300)
def test_the_uvicorn_process_writes_json_lines_with_one_access_line_per_request(
    settings: ApiSettings,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # as the Dockerfile starts it: uvicorn's own access log is not turned off on the command line
    command = [
        sys.executable, "-m", "uvicorn", "recstream_api.main:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        env=api_environment(settings),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    request_ids: list[str] = []
    try:
        wait_until_healthy(base, process, request_ids)
        token = issue_token(settings, "u-proc")
        with httpx.Client(base_url=base, timeout=5.0) as client:
            answers = [
                client.get(PROFILE, headers={"Authorization": f"Bearer {token}"}),
                client.get(f"{PREFIX}/nothing-here", headers={"X-Request-ID": "proc-1"}),
                client.get(HEALTH, headers={"X-Request-ID": "not ok"}),
            ]
        request_ids += [a.headers["X-Request-ID"] for a in answers]
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=30)
    assert [a.status_code for a in answers] == [200, 404, 200]
    assert stdout == ""  # uvicorn's access lines would go there
    records: list[dict[str, Any]] = [json.loads(line) for line in stderr.splitlines()]
    assert {r["service"] for r in records} == {"recstream-api"}
    access = [r for r in records if r["logger"] == "recstream_api.access"]
    assert not [r for r in records if r["logger"] == "uvicorn.access"]
    assert [r["request_id"] for r in access] == request_ids
    assert request_ids[-2] == "proc-1"
    assert request_ids[-1] != "not ok"
    assert access[-3]["subject"] == "user:u-proc"
    messages = {(r["logger"], r["msg"]) for r in records}
    assert ("uvicorn.error", "Application startup complete.") in messages
    assert ("uvicorn.error", "Shutting down") in messages
    assert token not in stderr
