"""The deployment files agree with the code: compose, Dockerfiles, .env.example, Prometheus,
Grafana (the Kubernetes manifests: test_deploy.py)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from recstream_api.demo import CLIENT, DATASET
from recstream_api.settings import ApiSettings
from recstream_consumer.settings import ConsumerSection, ConsumerSettings
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


def test_the_trainer_is_a_one_off_gated_publish_of_the_cli_image() -> None:
    trainer = _compose()["services"]["trainer"]
    assert trainer["profiles"] == ["training"], "not started by docker compose up"
    assert trainer["build"]["dockerfile"] == "services/cli/Dockerfile"
    assert trainer["command"][:2] == ["train", "--from-topic"]
    assert "--publish" in trainer["command"]
    assert "--force" not in trainer["command"]
    consumer = _compose()["services"]["consumer"]["environment"]
    shared = {
        k: v for k, v in consumer.items() if k.startswith(("RECSTREAM_REDIS", "RECSTREAM_KAFKA"))
    }
    assert shared, "the consumer's Redis and Kafka settings"
    assert shared.items() <= trainer["environment"].items(), "the same Redis, Kafka and prefix"


def test_compose_sets_only_real_settings() -> None:
    known = known_settings()
    for name in SERVICES:
        environment = _compose()["services"][name]["environment"]
        unknown = {k for k in environment if k.startswith("RECSTREAM_")} - known
        assert not unknown, f"{name}: {unknown}"


@pytest.mark.parametrize(
    ("service", "package"), sorted({**SERVICES, "cli": "recstream-cli"}.items())
)
def test_dockerfile_is_a_multistage_uv_build_running_as_non_root(
    service: str, package: str
) -> None:
    text = _dockerfile(service)
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


@pytest.mark.parametrize("service", ["consumer", "api", "cli"])
def test_the_image_rebuilds_every_workspace_package_it_installs(service: str) -> None:
    # uv keys a local package's cached wheel by its pyproject.toml, not its sources: with
    # the build's cache mount, a package not rebuilt could be a wheel of older sources
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
    packages = {project["project"]["name"]} | {
        d for d in project["project"]["dependencies"] if d.startswith("recstream")
    }
    text = _dockerfile(service)
    (install,) = re.findall(r"uv sync [^\n]*--no-editable[^\n]*", text)
    rebuilt = set(re.findall(r"--reinstall-package (\S+)", install))
    assert rebuilt == packages, f"{service}: rebuilt {sorted(rebuilt)}, installs {sorted(packages)}"


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    documented = set(re.findall(r"^#?\s*(RECSTREAM_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M))
    known = known_settings()
    assert not known - documented, f"undocumented: {sorted(known - documented)}"
    stale = {n for n in documented - known if n != "RECSTREAM_IMAGE_TAG"}
    assert not stale, f"not a setting: {sorted(stale)}"


# lines that show an example rather than the default
EXAMPLE_VALUES = {
    "RECSTREAM_CORE__WEIGHTS", "RECSTREAM_AUTH__API_KEYS", "RECSTREAM_CONSUMER__INSTANCE_ID",
}  # fmt: skip


def test_env_example_shows_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in [v for v in os.environ if v.startswith("RECSTREAM_")]:
        monkeypatch.delenv(variable)
    # the API's defaults as they are (their dev secret is refused in prod, the default)
    api = ApiSettings.model_construct().model_dump(mode="json")
    settings = ConsumerSettings().model_dump(mode="json") | api
    shown = re.findall(r"^# (RECSTREAM_[A-Z0-9_]+)=(.*)$", ENV_EXAMPLE.read_text(), re.M)
    assert shown
    for name, text in shown:
        if name in EXAMPLE_VALUES:
            continue
        value: Any = settings
        for part in name.removeprefix("RECSTREAM_").lower().split("__"):
            value = value[part]
        if value is None or value == "":
            assert text == "", name
        elif isinstance(value, bool):
            assert text == str(value).lower(), name
        elif isinstance(value, int | float):
            assert float(text) == value, name
        elif isinstance(value, str) and name != "RECSTREAM_AUTH__JWT_SECRET":
            assert text == value, name


# --- the observability and demo services ---------------------------------------------


def _bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (with ${VAR:-default} resolved to the default)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", volume).split(":")[:2]
        mounts[target] = source
    return mounts


def _dockerfile(service: str) -> str:
    """The service's Dockerfile, its continued lines joined (one instruction per line)."""
    return (ROOT / "services" / service / "Dockerfile").read_text().replace("\\\n", " ")


def test_every_bind_mount_of_the_repository_exists() -> None:
    for name, service in _compose()["services"].items():
        for source in _bind_mounts(service).values():
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} is missing"


def test_two_consumers_form_one_group_and_report_health_on_their_port() -> None:
    services = _compose()["services"]
    consumer = services["consumer"]
    assert consumer["deploy"]["replicas"] == "${CONSUMER_REPLICAS:-2}"
    assert "ports" not in consumer, "replicas cannot share a host port"
    assert "container_name" not in consumer
    probe = " ".join(consumer["healthcheck"]["test"])
    assert "127.0.0.1:9100/healthz" in probe
    assert "EXPOSE 9100" in _dockerfile("consumer")
    # loopback by default; Prometheus scrapes the port over the compose network
    assert ConsumerSection().http_host == "127.0.0.1"
    assert consumer["environment"]["RECSTREAM_CONSUMER__HTTP_HOST"] == "0.0.0.0"


def test_prometheus_scrapes_the_api_and_every_consumer_replica() -> None:
    services = _compose()["services"]
    mounts = _bind_mounts(services["prometheus"])
    config = yaml.safe_load((ROOT / mounts["/etc/prometheus/prometheus.yml"]).read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["recstream-api"]
    assert api["static_configs"][0]["targets"] == ["api:8000"]
    assert api.get("metrics_path", "/metrics") == "/metrics"
    consumer = jobs["recstream-consumer"]["dns_sd_configs"][0]
    assert consumer["names"] == ["consumer"]
    assert (consumer["type"], consumer["port"]) == ("A", 9100)
    assert set(services["prometheus"]["healthcheck"]["test"]) >= {"wget"}


def test_grafana_provisions_the_prometheus_datasource_and_the_dashboard() -> None:
    services = _compose()["services"]
    grafana = services["grafana"]
    mounts = _bind_mounts(grafana)
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    datasources = yaml.safe_load(
        (ROOT / mounts["/etc/grafana/provisioning/datasources/recstream.yml"]).read_text()
    )
    [source] = datasources["datasources"]
    assert (source["type"], source["url"], source["isDefault"]) == (
        "prometheus",
        "http://prometheus:9090",
        True,
    )
    assert any(p.endswith(":9090") for p in services["prometheus"]["ports"])
    providers = yaml.safe_load(
        (ROOT / mounts["/etc/grafana/provisioning/dashboards/recstream.yml"]).read_text()
    )
    folder = providers["providers"][0]["options"]["path"]
    dashboards = {t: s for t, s in mounts.items() if t.startswith(folder + "/")}
    assert dashboards, f"no dashboard mounted under {folder}"
    for source_path in dashboards.values():
        dashboard = json.loads((ROOT / source_path).read_text())
        assert dashboard["panels"]
        variables = dashboard["templating"]["list"]
        assert {"type": "datasource", "query": "prometheus"}.items() <= variables[0].items()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home in dashboards


def test_the_api_image_serves_the_demo_client_and_reads_the_mounted_datasets() -> None:
    text = _dockerfile("api")
    workdir = Path(re.findall(r"^WORKDIR\s+(\S+)", text, re.M)[-1])
    copies = dict(re.findall(r"^COPY\s+(?!--from)(\S+)\s+(\S+)", text, re.M))
    assert copies[CLIENT.as_posix()] == CLIENT.as_posix(), "relative to the runtime WORKDIR"
    assert workdir == Path("/app")
    mounts = _bind_mounts(_compose()["services"]["api"])
    datasets_target = workdir / DATASET.parents[1]
    assert mounts[datasets_target.as_posix()] == "../shared/datasets"


def test_the_demo_generator_runs_in_the_api_image_on_the_mounted_dataset(datasets: Path) -> None:
    services = _compose()["services"]
    generator = services["generator"]
    assert generator["image"] == services["api"]["image"]
    assert generator["build"] == services["api"]["build"]
    command = generator["command"]
    mounts = _bind_mounts(generator)
    assert mounts[command[1]] == "./services/cli/src/recstream_cli/demo_generator.py"
    dataset = Path(command[command.index("--dataset") + 1])
    assert mounts[dataset.parents[1].as_posix()] == "../shared/datasets"
    assert (datasets / dataset.relative_to(dataset.parents[1])).is_file()
    assert "--rate" in command
    assert generator["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    # the API image holds the generator's imports: the core, aiokafka and click (uvicorn's)
    closure = _locked_closure("recstream-api")
    assert {"aiokafka", "click", "recstream"} <= closure


def _locked_closure(package: str) -> set[str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    by_name = {p["name"]: p for p in lock["package"]}
    seen: set[str] = set()
    stack = [package]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack += [d["name"] for d in by_name[name].get("dependencies", [])]
    return seen


def test_dockerignore_keeps_every_copied_source() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for service in SERVICES:
        for source in re.findall(r"^COPY\s+(?!--from)(\S+)", _dockerfile(service), re.M):
            parts = Path(source).parts
            prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            for pattern in patterns:
                ignored = any(fnmatch.fnmatch(p, pattern.removeprefix("**/")) for p in prefixes)
                assert not ignored, f"{service}: COPY {source} is excluded by {pattern}"


def test_deploy_readme_documents_every_service_and_variable() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text()
    documented = readme + ENV_EXAMPLE.read_text()
    for name in _compose()["services"]:
        assert f"| `{name}` |" in readme, name
    variables = set(re.findall(r"\$\{(\w+)(?::-[^}]*)?\}", COMPOSE.read_text()))
    missing = {v for v in variables if v not in documented}
    assert not missing, f"compose variables not documented: {sorted(missing)}"
