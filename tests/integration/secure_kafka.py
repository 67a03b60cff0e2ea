"""Brokers that need TLS or a SASL login, for the managed-Kafka tests.

- TLS: Debian's ``stunnel4`` terminates TLS in front of a Tansu broker that advertises
  the TLS port, so every connection a client makes (bootstrap and after the metadata)
  goes through the handshake. stunnel requires a client certificate signed by the
  test CA (mutual TLS), as managed Kafka services with mTLS do.
- SASL: Tansu with ``--authentication`` (SCRAM-SHA-256 and SCRAM-SHA-512).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from recstream_cli.localstack import LocalService, free_port, tansu_binary, wait_for_port

from ..pki import Pki


def start_tls_broker(pki: Pki, workdir: Path) -> tuple[LocalService, LocalService]:
    """A Tansu broker reachable only through stunnel's mutual-TLS port; returns
    (stunnel, broker), the stunnel's address being the bootstrap server."""
    tls_port, plain_port = free_port(), free_port()
    broker = _start_tansu(plain_port, f"tcp://127.0.0.1:{tls_port}", workdir, [])
    config = workdir / "stunnel.conf"
    log_path = workdir / "stunnel.log"
    config.write_text(
        "foreground = yes\n"
        "pid =\n"
        f"output = {log_path}\n"
        "[kafka]\n"
        f"accept = 127.0.0.1:{tls_port}\n"
        f"connect = 127.0.0.1:{plain_port}\n"
        f"cert = {pki.server_cert}\n"
        f"key = {pki.server_key}\n"
        f"CAfile = {pki.ca}\n"
        "requireCert = yes\n"
        "verifyChain = yes\n"
    )
    binary = shutil.which("stunnel4") or shutil.which("stunnel")
    if binary is None:
        broker.stop()
        raise RuntimeError("stunnel4 is not installed: run scripts/bootstrap.sh --compose")
    process = subprocess.Popen(
        [binary, str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(tls_port, 10.0, process)
    stunnel = LocalService("stunnel", f"127.0.0.1:{tls_port}", tls_port, process, log_path)
    return stunnel, broker


def start_sasl_broker(workdir: Path) -> LocalService:
    """A Tansu broker that refuses every request before a SASL login."""
    port = free_port()
    return _start_tansu(port, f"tcp://127.0.0.1:{port}", workdir, ["--authentication"])


def _start_tansu(port: int, advertised: str, workdir: Path, extra: list[str]) -> LocalService:
    log_path = workdir / f"tansu-{port}.log"
    command = [
        tansu_binary(),
        "broker",
        "--listener-url", f"tcp://127.0.0.1:{port}",
        "--advertised-listener-url", advertised,
        "--storage-engine", "memory://tansu/",
        *extra,
    ]  # fmt: skip
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={"RUST_LOG": "warn", "PATH": "/usr/bin:/bin"},
            start_new_session=True,
        )
    wait_for_port(port, 15.0, process)
    return LocalService("tansu", f"127.0.0.1:{port}", port, process, log_path)
