"""The deployment files agree with the code: compose, Dockerfiles, .env.example, Kubernetes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.settings_names import known_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SERVICES = {"consumer": "recstream-consumer", "api": "recstream-api"}


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_docker_compose_accepts_the_file() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(
                "docker-compose is missing in CI (scripts/bootstrap.sh --compose installs it)"
            )
        pytest.skip("docker-compose is not installed (scripts/bootstrap.sh --compose)")
    for extra in ([], ["--env-file", str(ENV_EXAMPLE)]):
        result = subprocess.run(
            [binary, *extra, "-f", str(COMPOSE), "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr


def test_compose_runs_kafka_in_kraft_mode_with_healthchecks() -> None:
    services = _compose()["services"]
    assert set(services) >= {"kafka", "redis", "topics", "consumer", "api"}
    kafka = services["kafka"]
    assert "apache/kafka:" in kafka["image"]
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert "zookeeper" not in COMPOSE.read_text().lower()
    for name in ("kafka", "redis", "api"):
        assert services[name]["healthcheck"]["test"], name


def test_compose_services_wait_for_their_dependencies() -> None:
    services = _compose()["services"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in SERVICES:
        depends = services[name]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["topics"]["condition"] == "service_completed_successfully"
        assert services[name]["build"]["dockerfile"] == f"services/{name}/Dockerfile"
    assert any(p.endswith(":8000") for p in services["api"]["ports"])


def test_compose_sets_only_real_settings() -> None:
    known = known_settings()
    for name in SERVICES:
        environment = _compose()["services"][name]["environment"]
        unknown = {k for k in environment if k.startswith("RECSTREAM_")} - known
        assert not unknown, f"{name}: {unknown}"


@pytest.mark.parametrize(("service", "package"), sorted(SERVICES.items()))
def test_dockerfile_is_a_multistage_uv_build_running_as_non_root(
    service: str, package: str
) -> None:
    text = (ROOT / "services" / service / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, re.MULTILINE)
    assert len(stages) >= 3, stages
    assert any("ghcr.io/astral-sh/uv" in image for image, _ in stages)
    assert re.search(rf"uv sync --frozen --no-dev .*--package {package}\b", text)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert text.rfind("USER") > text.rfind("FROM"), "the runtime stage sets the user"
    for path in re.findall(r"^COPY\s+(?!--from)(\S+)", text, re.MULTILINE):
        assert (ROOT / path).exists(), f"COPY source {path} is missing"


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    documented = set(re.findall(r"^#?\s*(RECSTREAM_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M))
    known = known_settings()
    assert not known - documented, f"undocumented: {sorted(known - documented)}"
    stale = {n for n in documented - known if n != "RECSTREAM_IMAGE_TAG"}
    assert not stale, f"not a setting: {sorted(stale)}"


def _manifests() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted((ROOT / "deploy").rglob("*.yaml")):
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return documents


def test_kubernetes_deployments_select_their_pods_and_run_as_non_root() -> None:
    deployments = [d for d in _manifests() if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} >= {"recstream-consumer", "recstream-api"}
    for deployment in deployments:
        spec = deployment["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_kubernetes_settings_are_real_settings() -> None:
    known = known_settings()
    manifests = _manifests()
    config = next(d for d in manifests if d["kind"] == "ConfigMap")
    assert not set(config["data"]) - known
    for deployment in (d for d in manifests if d["kind"] == "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            names = {e["name"] for e in container.get("env", [])}
            assert not names - known, names - known
    api = next(d for d in manifests if d["metadata"]["name"] == "recstream-api")
    probe = api["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"]["path"] == "/api/behavioral-ml/health"
