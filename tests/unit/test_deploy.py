"""The Kubernetes manifests in deploy/ render, validate offline and agree with the code.

The kustomizations are rendered in Python (tests/unit/kustomization.py), compared with
``kubectl kustomize`` where kubectl is installed, and every object is validated against
the Kubernetes OpenAPI schemas shipped by kubernetes-validate; KEDA's ScaledObject (a
CRD) is checked field by field (tests/unit/manifest_checks.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from recstream.platform.settings import RedisSettings
from recstream_api.settings import DEV_JWT_SECRET
from recstream_consumer.aiokafka_source import COMMIT_TIMEOUT_SECONDS
from tests.unit.kustomization import KustomizeError, Manifest, identity, pod_spec, render
from tests.unit.manifest_checks import (
    all_problems,
    config,
    named,
    scaled_object_problems,
    training_problems,
)
from tests.unit.settings_names import known_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TARGETS = ("base", "overlays/dev", "overlays/prod", "overlays/managed")
OVERLAYS = ("overlays/dev", "overlays/prod")


@cache
def _render(target: str) -> tuple[Manifest, ...]:
    return tuple(render(DEPLOY / target))


def rendered(target: str) -> list[Manifest]:
    """A fresh copy of the target's render (tests may change it)."""
    return yaml.safe_load(yaml.safe_dump(list(_render(target))))


def test_every_kustomization_is_a_target_and_every_manifest_is_used() -> None:
    folders = {p.parent.relative_to(DEPLOY).as_posix() for p in DEPLOY.rglob("kustomization.yaml")}
    assert folders == set(TARGETS)
    used: set[Path] = set()
    for folder in folders:
        spec = yaml.safe_load((DEPLOY / folder / "kustomization.yaml").read_text())
        entries = spec.get("resources", []) + [
            p["path"] for p in spec.get("patches", []) if "path" in p
        ]
        used |= {(DEPLOY / folder / e).resolve() for e in entries}
    manifests = {p.resolve() for t in TARGETS for p in (DEPLOY / t).glob("*.yaml")}
    unused = {p for p in manifests if p.name != "kustomization.yaml"} - used
    assert not unused, f"not referenced by any kustomization: {sorted(map(str, unused))}"


@pytest.mark.parametrize("target", TARGETS)
def test_render_is_valid_and_consistent(target: str) -> None:
    manifests = rendered(target)
    assert {m["kind"] for m in manifests} >= {
        "ConfigMap", "Deployment", "Service", "ScaledObject", "HorizontalPodAutoscaler",
        "PodDisruptionBudget", "NetworkPolicy",
    }  # fmt: skip
    assert all_problems(manifests) == []


@pytest.mark.parametrize("target", TARGETS)
def test_python_render_equals_kubectl_kustomize(target: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl (its built-in kustomize) is missing in CI")
        pytest.skip("kubectl is not installed")
    result = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / target)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    theirs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert sorted(theirs, key=identity) == sorted(rendered(target), key=identity)


@pytest.mark.parametrize("target", OVERLAYS)
def test_consumers_fit_the_partitions_and_shut_down_within_the_grace_period(target: str) -> None:
    manifests = rendered(target)
    partitions = int(config(manifests)["RECSTREAM_KAFKA__PARTITIONS"])
    scaled = named(manifests, "ScaledObject", "recstream-consumer")
    assert scaled is not None
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"] <= partitions
    consumer = named(manifests, "Deployment", "recstream-consumer")
    assert consumer is not None
    assert consumer["spec"].get("replicas", 1) <= partitions
    # readiness needs a partition: a rollout replaces members, it never adds one
    assert consumer["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    grace = consumer["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # the in-flight Redis step, the final commit and leaving the group, with margin
    assert grace >= RedisSettings().socket_timeout_seconds + COMMIT_TIMEOUT_SECONDS + 5
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["consumer"]["stop_grace_period"] == f"{grace}s"
    # the status port listens on loopback unless told otherwise: probes and Prometheus
    # come from outside the pod
    (container,) = consumer["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env["RECSTREAM_CONSUMER__HTTP_HOST"] == "0.0.0.0"
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    host = trigger["bootstrapServers"].split(",")[0].rsplit(":", 1)[0]
    assert host.endswith(".svc.cluster.local"), "KEDA resolves it from its own namespace"


def test_kubernetes_settings_are_real_settings() -> None:
    known = known_settings()
    for target in TARGETS:
        manifests = rendered(target)
        assert not set(config(manifests)) - known
        for workload in (m for m in manifests if m["kind"] in ("Deployment", "CronJob")):
            spec = pod_spec(workload)
            assert spec is not None
            assert spec["securityContext"]["runAsNonRoot"] is True
            for container in spec["containers"]:
                names = {e["name"] for e in container.get("env", [])}
                assert not names - known, names - known
        api = named(manifests, "Deployment", "recstream-api")
        assert api is not None
        probe = api["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
        assert probe["httpGet"]["path"] == "/api/behavioral-ml/ready"


def test_no_secret_value_is_committed_and_prod_renders_none() -> None:
    assert not [m for m in rendered("overlays/prod") if m["kind"] == "Secret"]
    assert not [m for m in rendered("base") if m["kind"] == "Secret"]
    for secret in (m for m in rendered("overlays/dev") if m["kind"] == "Secret"):
        assert set(secret.get("stringData", {}).values()) <= {DEV_JWT_SECRET}
        assert "data" not in secret
    assert config(rendered("overlays/prod"))["RECSTREAM_ENVIRONMENT"] == "prod"


def test_prod_images_come_from_a_registry_at_a_release_tag() -> None:
    workloads = [m for m in rendered("overlays/prod") if pod_spec(m) is not None]
    assert {m["kind"] for m in workloads} == {"Deployment", "CronJob"}
    for workload in workloads:
        image = (pod_spec(workload) or {})["containers"][0]["image"]
        assert re.fullmatch(r"[a-z0-9.-]+\.[a-z]+/[\w./-]+:\d+\.\d+\.\d+", image), image


# --- a broken manifest fails ------------------------------------------------------------


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    return tmp_path / "deploy"


def test_a_missing_resource_or_bad_yaml_fails_the_render(tmp_path: Path) -> None:
    deploy = _copy(tmp_path)
    (deploy / "base" / "api-pdb.yaml").unlink()
    with pytest.raises(KustomizeError, match=r"api-pdb\.yaml: no such file"):
        render(deploy / "overlays" / "prod")
    deploy = _copy(tmp_path / "again")
    (deploy / "base" / "api-hpa.yaml").write_text("kind: [unclosed\n")
    with pytest.raises(KustomizeError, match="not YAML"):
        render(deploy / "overlays" / "dev")


def test_a_patch_that_matches_nothing_fails_the_render(tmp_path: Path) -> None:
    deploy = _copy(tmp_path)
    kustomization = deploy / "overlays" / "prod" / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("name: recstream-redis", "name: nope")
    )
    with pytest.raises(KustomizeError, match="matches no resource"):
        render(deploy / "overlays" / "prod")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("periodSecs", 10, "'periodSecs' was unexpected"),
        ("periodSeconds", "10", "'10' is not of type 'integer'"),
    ],
)
def test_schema_errors_are_found(field: str, value: object, message: str) -> None:
    manifests = rendered("overlays/prod")
    api = named(manifests, "Deployment", "recstream-api")
    assert api is not None
    api["spec"]["template"]["spec"]["containers"][0]["readinessProbe"][field] = value
    problems = all_problems(manifests)
    assert any(message in p and "Deployment/recstream-api" in p for p in problems), problems


def test_scaled_object_errors_are_found() -> None:
    manifests = rendered("overlays/prod")
    scaled = named(manifests, "ScaledObject", "recstream-consumer")
    assert scaled is not None
    scaled["spec"]["maxReplicaCount"] = 48
    metadata = scaled["spec"]["triggers"][0]["metadata"]
    del metadata["lagThreshold"]
    metadata["topic"] = "other"
    problems = scaled_object_problems(manifests)
    assert any("maxReplicaCount 48 > 12 partitions" in p for p in problems), problems
    assert any("lacks lagThreshold" in p for p in problems), problems
    assert any("topic 'other'" in p for p in problems), problems


def test_broken_references_are_found() -> None:
    manifests = rendered("overlays/dev")
    hpa = named(manifests, "HorizontalPodAutoscaler", "recstream-api")
    pdb = named(manifests, "PodDisruptionBudget", "recstream-consumer")
    policy = named(manifests, "NetworkPolicy", "recstream-consumer")
    assert hpa is not None
    assert pdb is not None
    assert policy is not None
    hpa["spec"]["scaleTargetRef"]["name"] = "recstream-apii"
    pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "consumer"
    policy["spec"]["ingress"][0]["ports"][0]["port"] = 9200
    problems = all_problems(manifests)
    assert any("HorizontalPodAutoscaler/recstream-api: scales" in p for p in problems), problems
    assert any("PodDisruptionBudget/recstream-consumer: selects no pod" in p for p in problems)
    assert any("no ingress on 9100" in p for p in problems), problems


def test_the_managed_overlay_logs_in_everywhere_and_its_errors_are_found() -> None:
    manifests = rendered("overlays/managed")
    settings = config(manifests)
    assert settings["RECSTREAM_KAFKA__SECURITY__PROTOCOL"] == "SASL_SSL"
    for name in ("recstream-consumer", "recstream-api"):
        deployment = named(manifests, "Deployment", name)
        assert deployment is not None
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        secrets = {
            e["name"]: e["valueFrom"]["secretKeyRef"]["key"]
            for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert secrets["RECSTREAM_KAFKA__SECURITY__SASL_PASSWORD"] == "kafka-password"
    assert not [m for m in manifests if m["kind"] == "Secret"]

    scaled = named(manifests, "ScaledObject", "recstream-consumer")
    auth = named(manifests, "TriggerAuthentication", "recstream-kafka")
    policy = named(manifests, "NetworkPolicy", "recstream-api")
    assert scaled is not None
    assert auth is not None
    assert policy is not None
    del scaled["spec"]["triggers"][0]["metadata"]["tls"]
    auth["spec"]["secretTargetRef"] = auth["spec"]["secretTargetRef"][:1]
    policy["spec"]["egress"][1]["ports"] = [
        p for p in policy["spec"]["egress"][1]["ports"] if p["port"] != 443
    ]
    problems = all_problems(manifests)
    assert any("trigger tls None, settings SASL_SSL" in p for p in problems), problems
    assert any("no username and password for SASL" in p for p in problems), problems
    assert any("NetworkPolicy recstream-api: no egress to ('TCP', 443)" in p for p in problems)
    manifests.remove(auth)
    assert any("'recstream-kafka' is not in the render" in p for p in all_problems(manifests))


@pytest.mark.parametrize("target", TARGETS)
def test_the_scheduled_training_is_a_valid_gated_publish_and_its_errors_are_found(
    target: str,
) -> None:
    manifests = rendered(target)
    assert training_problems(manifests) == []
    job = named(manifests, "CronJob", "recstream-ranker-training")
    policy = named(manifests, "NetworkPolicy", "recstream-ranker-training")
    assert job is not None
    assert policy is not None
    (container,) = (pod_spec(job) or {})["containers"]
    if target == "overlays/managed":
        secrets = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
        assert "RECSTREAM_KAFKA__SECURITY__SASL_PASSWORD" in secrets
    job["spec"]["concurrencyPolicy"] = "Allow"
    job["spec"]["jobTemplate"]["spec"]["backoffLimit"] = 6
    args = container["args"]
    args[args.index("--publish")] = "--force"
    policy["spec"]["ingress"] = [{"ports": [{"protocol": "TCP", "port": 8000}]}]
    policy["spec"]["egress"][1]["ports"] = policy["spec"]["egress"][1]["ports"][:1]
    problems = training_problems(manifests)
    assert any("two trainings may run at once" in p for p in problems), problems
    assert any("a failed training is retried" in p for p in problems), problems
    assert any("does not train from interactions and publish" in p for p in problems), problems
    assert any("allows ingress" in p for p in problems), problems
    assert any("no egress to ('TCP', " in p for p in problems), problems
    args.append("--no-such-option")
    assert any("does not parse" in p for p in training_problems(manifests))
    container["envFrom"] = []
    args.pop()
    assert any("lacks the consumer's" in p for p in training_problems(manifests))
