"""Process supervision for the dev stack: start in order, watch, stop in reverse.

Every child runs in its own session, so a Ctrl-C in the terminal reaches only
the supervisor, which then stops the children one by one, last started
first: the API, the consumer, the broker, Redis.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

from recstream_cli.localstack import LocalService, free_port, terminate_with_parent


class StackError(RuntimeError):
    """A process of the dev stack could not be started or died."""


def consumer_argv() -> list[str]:
    return [sys.executable, "-m", "recstream_consumer"]


def api_argv(host: str, port: int) -> list[str]:
    """uvicorn with the API's factory, which sets up the log lines (RECSTREAM_LOG_FORMAT,
    RECSTREAM_LOG_LEVEL) and writes the one access line per request itself."""
    return [
        sys.executable, "-m", "uvicorn", "recstream_api.main:create_app", "--factory",
        "--host", host, "--port", str(port), "--no-access-log",
    ]  # fmt: skip


@dataclass
class ManagedProcess:
    name: str
    process: subprocess.Popen[bytes]
    stop: Callable[[], None]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL when it has not exited after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


class Supervisor:
    """The processes of one dev stack, in start order."""

    def __init__(self, stop_timeout: float = 15.0) -> None:
        self._processes: list[ManagedProcess] = []
        self._stop_timeout = stop_timeout

    @property
    def processes(self) -> Sequence[ManagedProcess]:
        return tuple(self._processes)

    def adopt(self, service: LocalService) -> ManagedProcess:
        """Take over a local Redis or broker started by :mod:`recstream_cli.localstack`."""
        managed = ManagedProcess(
            service.name, service.process, lambda: service.stop(self._stop_timeout)
        )
        self._processes.append(managed)
        return managed

    def spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> ManagedProcess:
        """Start a child in its own session; its output goes to this terminal."""
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=terminate_with_parent,
        )
        managed = ManagedProcess(name, process, lambda: stop_process(process, self._stop_timeout))
        self._processes.append(managed)
        return managed

    def first_exited(self) -> ManagedProcess | None:
        return next((p for p in self._processes if not p.alive()), None)

    def stop_all(self) -> None:
        """Stop every process, last started first; a failure to stop one does not skip others."""
        while self._processes:
            managed = self._processes.pop()
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                managed.stop()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def port_or_free(preferred: int) -> int:
    """``preferred`` when nothing listens on it and it can be bound, else a free port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def wait_http_ok(
    url: str, timeout: float, supervisor: Supervisor, stop: threading.Event | None = None
) -> None:
    """Poll ``url`` until it answers 200; fail early when a supervised process exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if stop is not None and stop.is_set():
            raise StackError("stopped while waiting for the API")
        exited = supervisor.first_exited()
        if exited is not None:
            code = exited.process.returncode
            raise StackError(f"{exited.name} exited with status {code} during start-up")
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise StackError(f"{url} did not answer 200 within {timeout:.0f}s (last: {last})")


@contextlib.contextmanager
def stop_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while the block runs; the old handlers come back after."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
