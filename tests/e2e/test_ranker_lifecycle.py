"""End to end: a learned ranker trained by ``recstream train`` on a small log file, published,
served by a running ``recstream api``, hot-swapped for a second version, then removed.

Real processes throughout: the log is applied to Redis with ``recstream replay --to redis``
(the consumer's core), the models are trained and published with the CLI, and the API
process picks each change up within its poll interval, without a restart. The log is the
start of yoochoose-100k's training file, moved in time so that it ends a minute ago (its
sessions are current when the API reads them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from recstream.contract.events import encode_event
from recstream.offline.datasets import session_tsv_events
from recstream.offline.ranking.train import promotion_check
from recstream_api.auth import issue_token
from recstream_api.settings import ApiSettings, AuthSettings
from recstream_cli.localstack import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

SECRET = "e2e-ranker-0123456789abcdef0123456789abcdef"
PREFIX = "/api/behavioral-ml"
EVENTS = 6_000
USERS = 8  # users whose rankings are compared
START_TIMEOUT = 60.0
SWAP_TIMEOUT = 20.0  # the API polls every 0.2 s
RECSTREAM = str(Path(sys.executable).with_name("recstream"))


def recent_log(source: Path, path: Path) -> list[str]:
    """The first ``EVENTS`` events of ``source`` as contract JSON lines, ending a minute ago;
    the users of the latest sessions, latest first."""
    with source.open() as lines:
        events = [e for _, e in zip(range(EVENTS), session_tsv_events(lines), strict=False)]
    shift = datetime.now(UTC) - timedelta(minutes=1) - max(e.occurred_at for e in events)
    moved = [e.model_copy(update={"occurred_at": e.occurred_at + shift}) for e in events]
    path.write_bytes(b"".join(encode_event(e) + b"\n" for e in moved))
    latest: dict[str, datetime] = {}
    for event in moved:
        latest[event.user_id] = max(latest.get(event.user_id, event.occurred_at), event.occurred_at)
    return sorted(latest, key=lambda u: latest[u], reverse=True)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RECSTREAM, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def cli(*args: str, env: dict[str, str]) -> str:
    done = run_cli(*args, env=env)
    assert done.returncode == 0, f"recstream {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def token(user_id: str) -> str:
    settings = ApiSettings(auth=AuthSettings(jwt_secret=SecretStr(SECRET)))
    return issue_token(settings, user_id, ttl=timedelta(minutes=30))


def rankings(client: httpx.Client, users: list[str]) -> tuple[set[str], list[list[str]]]:
    """The rankers that served and each user's list."""
    served, lists = set(), []
    for user in users:
        response = client.post(
            f"{PREFIX}/recommendations",
            json={"limit": 10},
            headers={"Authorization": f"Bearer {token(user)}"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        served.add(body["ranker"])
        lists.append([f"{item['kind']}:{item['id']}" for item in body["items"]])
    return served, lists


def served_by(client: httpx.Client, users: list[str], ranker: str) -> list[list[str]]:
    deadline = time.monotonic() + SWAP_TIMEOUT
    while True:
        served, lists = rankings(client, users)
        if served == {ranker}:
            return lists
        if time.monotonic() > deadline:
            pytest.fail(f"still served by {served}, not {ranker}, after {SWAP_TIMEOUT}s")
        time.sleep(0.2)


@pytest.fixture
def environment(redis_url: str, kafka_bootstrap: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    env.update(
        RECSTREAM_REDIS__URL=redis_url,
        RECSTREAM_REDIS__KEY_PREFIX=f"e2e{uuid.uuid4().hex[:8]}",
        RECSTREAM_KAFKA__BOOTSTRAP_SERVERS=kafka_bootstrap,
        RECSTREAM_KAFKA__ERASURES_TOPIC=f"erasures-{uuid.uuid4().hex[:8]}",
        RECSTREAM_AUTH__JWT_SECRET=SECRET,
        RECSTREAM_RANKER__POLL_SECONDS="0.2",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def api(environment: dict[str, str], tmp_path: Path) -> Iterator[httpx.Client]:
    port = free_port()
    log = (tmp_path / "api.log").open("w")
    process = subprocess.Popen(
        [RECSTREAM, "api", "--port", str(port)],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if client.get(f"{PREFIX}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the API did not start:\n{(tmp_path / 'api.log').read_text()}")
            time.sleep(0.2)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(30)
        log.close()


def test_a_trained_model_is_served_swapped_and_removed(
    datasets: Path, tmp_path: Path, environment: dict[str, str], api: httpx.Client
) -> None:
    events = tmp_path / "events.jsonl"
    users = recent_log(
        datasets / "yoochoose-100k" / "yoochoose-clicks-100k_train_full.txt", events
    )[:USERS]
    prefix = environment["RECSTREAM_REDIS__KEY_PREFIX"]
    redis = ("--redis-url", environment["RECSTREAM_REDIS__URL"], "--prefix", prefix)
    cli("replay", str(events), "--to", "redis", "--key-prefix", prefix, env=environment)

    served, blend = rankings(api, users)
    assert served == {"blend"}

    # --force: what this small log's model does against the blend is not the point here
    cli("train", "--train", str(events), "--out", str(tmp_path / "v1"), "--publish", "--force",
        *redis, env=environment)  # fmt: skip
    [first] = (tmp_path / "v1").glob("ranker-*.json")
    v1 = json.loads(first.read_bytes())["version"]
    learned = served_by(api, users, v1)
    assert learned != blend, "the model ranks differently from the blend"
    health = api.get(f"{PREFIX}/health").json()
    assert health["ranker"]["active"] == v1

    # a scheduled retrain on the same log and seed makes the same model: nothing to do
    again = cli("train", "--train", str(events), "--out", str(tmp_path / "again"), "--publish",
                *redis, env=environment)  # fmt: skip
    assert f"the same model is already active: {v1}" in again
    # a challenger is played against the active model on the same validation sessions and
    # replaces it only when it does at least as well (and as well as the blend)
    challenger = tmp_path / "challenger"
    done = run_cli("train", "--train", str(events), "--out", str(challenger), "--seed", "5",
                   "--publish", *redis, env=environment)  # fmt: skip
    said = done.stdout + done.stderr
    report = json.loads((challenger / "report.json").read_bytes())
    assert report["validation"]["active"]["version"] == v1, said
    refused = promotion_check(report)
    [made] = challenger.glob("ranker-*.json")
    if refused is None:
        assert done.returncode == 0, said
        served_by(api, users, json.loads(made.read_bytes())["version"])
        cli("model", "activate", v1, *redis, env=environment)
        served_by(api, users, v1)
    else:
        assert done.returncode == 1, said
        assert f"not published: {refused}; the active model {v1} keeps serving" in said
        assert api.get(f"{PREFIX}/health").json()["ranker"]["active"] == v1

    cli("train", "--train", str(events), "--out", str(tmp_path / "v2"), "--seed", "11",
        "--without", "context", env=environment)  # fmt: skip
    [second] = (tmp_path / "v2").glob("ranker-*.json")
    v2 = json.loads(second.read_bytes())["version"]
    assert v2 != v1
    cli("model", "publish", str(second), *redis, env=environment)
    served_by(api, users, v2)
    listed = cli("model", "list", *redis, env=environment)
    assert f"* {v2}" in listed
    assert f"  {v1}" in listed

    cli("model", "remove", v2, *redis, env=environment)
    assert served_by(api, users, "blend") == blend, "the blend serves again, as before"
