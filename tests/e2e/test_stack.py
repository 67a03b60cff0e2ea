"""End to end: `recstream run` as a process, events POSTed to the API, the profile read back.

The stack starts its own redis-server and Tansu broker on free ports, the
consumer and the API as child processes; SIGINT must stop all of them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from recstream_api.auth import issue_token
from recstream_api.settings import ApiSettings, AuthSettings
from recstream_cli.localstack import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(480)]

SECRET = "e2e-secret-0123456789abcdef0123456789abcdef"
PREFIX = "/api/behavioral-ml"
START_TIMEOUT = 120.0
APPLY_TIMEOUT = 20.0
STOP_TIMEOUT = 60.0
PID_LINE = re.compile(r"^\s+(API|consumer|Redis|broker)\s.*\(pid (\d+)\)")


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    base_url: str
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "".join(self.lines[-200:])

    def child_pids(self) -> dict[str, int]:
        return {m.group(1): int(m.group(2)) for line in self.lines if (m := PID_LINE.match(line))}

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.process.poll() is not None:
                pytest.fail(
                    f"recstream run exited with {self.process.returncode}:\n{self.output()}"
                )
            time.sleep(0.1)
        pytest.fail(f"no {text!r} from recstream run after {timeout}s:\n{self.output()}")


def _pump(stream: Any, lines: list[str]) -> None:
    for line in iter(stream.readline, ""):
        lines.append(line)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except OSError:
        return False


def _children_of(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc (they run in sessions of their own)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _kill_leftovers(stack: RunningStack) -> None:
    pids = {*_children_of(stack.process.pid), *stack.child_pids().values(), stack.process.pid}
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[RunningStack]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RECSTREAM_") or k.startswith("RECSTREAM_TEST_")
    }
    env["RECSTREAM_AUTH__JWT_SECRET"] = SECRET
    env["PYTHONUNBUFFERED"] = "1"
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("recstream")), "run",
        "--port", str(port),
        "--redis-port", str(free_port()),
        "--broker-port", str(free_port()),
        "--log-dir", str(tmp_path / "logs"),
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    running = RunningStack(process, f"http://127.0.0.1:{port}")
    assert process.stdout is not None
    reader = threading.Thread(target=_pump, args=(process.stdout, running.lines), daemon=True)
    reader.start()
    try:
        running.wait_for_line("Press Ctrl-C to stop.", START_TIMEOUT)
        yield running
    finally:
        _kill_leftovers(running)
        process.wait(10)
        reader.join(10)  # ends when every holder of the pipe has exited


def _token(user_id: str, admin: bool = False) -> str:
    settings = ApiSettings(auth=AuthSettings(jwt_secret=SecretStr(SECRET)))
    return issue_token(settings, user_id, admin=admin, ttl=timedelta(minutes=10))


def _event(user_id: str, event_type: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"e2e-{uuid.uuid4().hex}",
        "event_type": event_type,
        "user_id": user_id,
        "session_id": "s-e2e",
        "occurred_at": at.isoformat(),
        **fields,
    }


def _events_for(user_id: str) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(minutes=10)
    return [
        _event(user_id, "product_view", start, product_id="p-1", category="shoes"),
        _event(user_id, "product_view", start + timedelta(minutes=1), product_id="p-2"),
        _event(user_id, "product_view", start + timedelta(minutes=2), product_id="p-1"),
        _event(user_id, "add_to_cart", start + timedelta(minutes=3), product_id="p-1", price=19.9),
        _event(user_id, "purchase_completed", start + timedelta(minutes=4), product_id="p-1"),
        _event(user_id, "group_view", start + timedelta(minutes=5), group_id="g-7"),
        _event(user_id, "product_search", start + timedelta(minutes=6), query="running shoes"),
    ]


def _poll_profile(client: httpx.Client, token: str, total: int) -> dict[str, Any]:
    deadline = time.monotonic() + APPLY_TIMEOUT
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(
            f"{PREFIX}/user-profile/behavioral", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        if body["features"]["total_events"] >= total:
            return body
        time.sleep(0.2)
    pytest.fail(f"profile did not reach {total} events in {APPLY_TIMEOUT}s: {body}")


def test_events_posted_to_the_api_come_back_in_the_profile(stack: RunningStack) -> None:
    user = f"u-{uuid.uuid4().hex[:10]}"
    token = _token(user)
    events = _events_for(user)
    with httpx.Client(base_url=stack.base_url, timeout=10.0) as client:
        health = client.get(f"{PREFIX}/health")
        assert health.status_code == 200, health.text

        posted = client.post(
            f"{PREFIX}/track-interaction",
            json={"events": events},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert posted.status_code == 202, posted.text
        assert posted.json()["event_ids"] == [e["event_id"] for e in events]

        profile = _poll_profile(client, token, len(events))
        features = profile["features"]
        assert profile["user_id"] == user
        assert profile["source"] == "stream"
        assert features["total_events"] == 7
        assert features["product_views"] == 3
        assert features["cart_adds"] == 1
        assert features["purchases"] == 1
        assert features["group_views"] == 1
        assert features["searches"] == 1
        assert features["unique_products"] == 2
        assert features["unique_groups"] == 1
        assert profile["watermark"] is not None

        rating = client.get(
            f"{PREFIX}/features/implicit-rating",
            params={"product_id": "p-1"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert rating.status_code == 200, rating.text
        assert rating.json()["events"] == 4
        assert 0 < rating.json()["rating"] <= 5

        other = _token(f"other-{uuid.uuid4().hex[:8]}")
        forbidden = client.get(
            f"{PREFIX}/user-profile/behavioral",
            params={"user_id": user},
            headers={"Authorization": f"Bearer {other}"},
        )
        assert forbidden.status_code == 403, forbidden.text
        foreign_post = client.post(
            f"{PREFIX}/track-interaction",
            json=_event(user, "page_view", datetime.now(UTC)),
            headers={"Authorization": f"Bearer {other}"},
        )
        assert foreign_post.status_code == 403, foreign_post.text

        as_admin = client.get(
            f"{PREFIX}/user-profile/behavioral",
            params={"user_id": user},
            headers={"Authorization": f"Bearer {_token('ops', admin=True)}"},
        )
        assert as_admin.status_code == 200, as_admin.text
        assert as_admin.json()["features"]["total_events"] == 7

    children = stack.child_pids()
    assert set(children) == {"API", "consumer", "Redis", "broker"}, stack.output()
    stack.process.send_signal(signal.SIGINT)
    try:
        code = stack.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"recstream run did not stop within {STOP_TIMEOUT}s:\n{stack.output()}")
    assert code == 0, stack.output()
    still_running = {name: pid for name, pid in children.items() if _alive(pid)}
    assert not still_running, stack.output()
