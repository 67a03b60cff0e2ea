"""Checks of a rendered kustomization: schemas, the KEDA ScaledObject, cross references.

Every check returns a list of problems (empty when the manifests are right), so a
test can assert both that the real manifests pass and that a broken one fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import click
import kubernetes_validate
from kubernetes_validate.utils import latest_version

from tests.unit.kustomization import Manifest, pod_spec

# The oldest Kubernetes minor the manifests target, and the newest the package knows.
KUBERNETES_VERSIONS = ("1.29", latest_version())
CRD_KINDS = {("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication")}
# KEDA's Kafka scaler names the SASL mechanisms its own way
KEDA_SASL = {
    "PLAIN": "plaintext",
    "SCRAM-SHA-256": "scram_sha256",
    "SCRAM-SHA-512": "scram_sha512",
    "OAUTHBEARER": "oauthbearer",
}
KAFKA_TRIGGER_FIELDS = ("bootstrapServers", "consumerGroup", "topic", "lagThreshold")
CONSUMER_PORT = 9100
API_PORT = 8000
# Secrets created outside git (deploy/README.md), which a render need not contain.
EXTERNAL_SECRETS = {"recstream-secrets"}


def named(manifests: list[Manifest], kind: str, name: str) -> Manifest | None:
    return next((m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name), None)


def config(manifests: list[Manifest]) -> dict[str, str]:
    found = named(manifests, "ConfigMap", "recstream-config")
    return dict(found["data"]) if found else {}


def schema_problems(manifests: list[Manifest]) -> list[str]:
    """Every built-in object against the Kubernetes OpenAPI schemas (strict: no unknown field)."""
    problems = []
    for manifest in manifests:
        if (manifest["apiVersion"], manifest["kind"]) in CRD_KINDS:
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(str(p) for p in exc.path)
                problems.append(f"{_name(manifest)} (k8s {version}) at {where}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                problems.append(f"{_name(manifest)}: {exc.message}")
    return problems


def scaled_object_problems(manifests: list[Manifest]) -> list[str]:
    """KEDA's ScaledObject is a CRD: its required fields and its agreement with the config."""
    problems = []
    settings = config(manifests)
    partitions = int(settings.get("RECSTREAM_KAFKA__PARTITIONS", "0"))
    for scaled in (m for m in manifests if m["kind"] == "ScaledObject"):
        name, spec = _name(scaled), scaled.get("spec", {})
        target = spec.get("scaleTargetRef", {}).get("name")
        if (
            named(manifests, spec.get("scaleTargetRef", {}).get("kind", "Deployment"), target)
            is None
        ):
            problems.append(f"{name}: scaleTargetRef {target!r} is not in the render")
        low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high):
            problems.append(f"{name}: replica counts {low}..{high}")
        if high > partitions:
            problems.append(f"{name}: maxReplicaCount {high} > {partitions} partitions")
        triggers = spec.get("triggers") or []
        if not triggers:
            problems.append(f"{name}: no triggers")
        for trigger in triggers:
            problems += _kafka_trigger_problems(name, trigger, settings)
            problems += _trigger_auth_problems(name, trigger, manifests, settings)
    return problems


def _trigger_auth_problems(
    name: str, trigger: dict[str, Any], manifests: list[Manifest], settings: dict[str, str]
) -> list[str]:
    """KEDA logs in to Kafka as the consumer does: SASL and TLS in the trigger when the
    settings use them, the login from a TriggerAuthentication in the render whose
    secrets are rendered or external."""
    problems = []
    metadata = trigger.get("metadata", {})
    protocol = settings.get("RECSTREAM_KAFKA__SECURITY__PROTOCOL", "PLAINTEXT")
    mechanism = settings.get("RECSTREAM_KAFKA__SECURITY__SASL_MECHANISM", "")
    expected_sasl = KEDA_SASL.get(mechanism, mechanism) if "SASL" in protocol else "none"
    if metadata.get("sasl", "none") != expected_sasl:
        problems.append(f"{name}: trigger sasl {metadata.get('sasl')!r}, settings {protocol}")
    expected_tls = "enable" if protocol in ("SSL", "SASL_SSL") else "disable"
    if metadata.get("tls", "disable") != expected_tls:
        problems.append(f"{name}: trigger tls {metadata.get('tls')!r}, settings {protocol}")
    reference = trigger.get("authenticationRef", {}).get("name")
    if expected_sasl != "none" and reference is None:
        problems.append(f"{name}: a SASL trigger without authenticationRef")
    if reference is None:
        return problems
    auth = named(manifests, "TriggerAuthentication", reference)
    if auth is None:
        return [*problems, f"{name}: TriggerAuthentication {reference!r} is not in the render"]
    parameters = set()
    for target in auth["spec"].get("secretTargetRef", []):
        parameters.add(target["parameter"])
        if named(manifests, "Secret", target["name"]) is None and (
            target["name"] not in EXTERNAL_SECRETS
        ):
            problems.append(
                f"{_name(auth)}: Secret {target['name']!r} is neither rendered nor external"
            )
    if expected_sasl != "none" and not {"username", "password"} <= parameters:
        problems.append(f"{_name(auth)}: no username and password for SASL")
    return problems


def _kafka_trigger_problems(
    name: str, trigger: dict[str, Any], settings: dict[str, str]
) -> list[str]:
    if trigger.get("type") != "kafka":
        return [f"{name}: trigger type {trigger.get('type')!r}, expected kafka"]
    metadata = trigger.get("metadata", {})
    problems = [
        f"{name}: kafka trigger lacks {f}" for f in KAFKA_TRIGGER_FIELDS if f not in metadata
    ]
    if not all(isinstance(v, str) for v in metadata.values()):
        problems.append(f"{name}: trigger metadata values must be strings")
    if not str(metadata.get("lagThreshold", "")).isdigit():
        problems.append(f"{name}: lagThreshold must be a positive integer string")
    expected = {
        "bootstrapServers": settings.get("RECSTREAM_KAFKA__BOOTSTRAP_SERVERS"),
        "consumerGroup": settings.get("RECSTREAM_CONSUMER__GROUP_ID"),
        "topic": settings.get("RECSTREAM_KAFKA__INTERACTIONS_TOPIC"),
    }
    for field, value in expected.items():
        if metadata.get(field) != value:
            problems.append(f"{name}: {field} {metadata.get(field)!r} != ConfigMap {value!r}")
    if metadata.get("allowIdleConsumers", "false") != "false":
        problems.append(f"{name}: allowIdleConsumers would add idle members")
    return problems


def reference_problems(manifests: list[Manifest]) -> list[str]:
    """Selectors, ports, config and secret names, autoscaler targets all point at something."""
    problems = []
    pods = {m["metadata"]["name"]: m for m in manifests if pod_spec(m) is not None}
    for name, workload in pods.items():
        selector = workload["spec"].get("selector", {}).get("matchLabels")  # a CronJob has none
        if selector is not None and not _selects(selector, workload):
            problems.append(f"{name}: selector does not select its own pods")
        for kind, ref in _config_refs(pod_spec(workload) or {}):
            present = named(manifests, kind, ref) is not None
            if not present and not (kind == "Secret" and ref in EXTERNAL_SECRETS):
                problems.append(f"{name}: {kind} {ref!r} is neither rendered nor external")
    for manifest in manifests:
        kind, spec = manifest["kind"], manifest.get("spec", {})
        if kind == "HorizontalPodAutoscaler" and spec["scaleTargetRef"]["name"] not in pods:
            problems.append(f"{_name(manifest)}: scales a Deployment that is not rendered")
        if kind in {"Service", "PodDisruptionBudget", "NetworkPolicy"}:
            selector = _selector(manifest)
            if selector is not None and not any(_selects(selector, p) for p in pods.values()):
                problems.append(f"{_name(manifest)}: selects no pod")
        if kind == "Service" and spec.get("type") != "ExternalName":
            ports = {p.get("name") for p in _pod_ports(manifests, spec["selector"])}
            for port in spec["ports"]:
                if isinstance(port["targetPort"], str) and port["targetPort"] not in ports:
                    problems.append(f"{_name(manifest)}: targetPort {port['targetPort']} unknown")
    return problems


def _config_refs(spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for container in spec.get("containers", []):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                yield "ConfigMap", source["configMapRef"]["name"]
            if "secretRef" in source:
                yield "Secret", source["secretRef"]["name"]
        for variable in container.get("env", []):
            value_from = variable.get("valueFrom", {})
            if "secretKeyRef" in value_from:
                yield "Secret", value_from["secretKeyRef"]["name"]
            if "configMapKeyRef" in value_from:
                yield "ConfigMap", value_from["configMapKeyRef"]["name"]


def _selector(manifest: Manifest) -> dict[str, str] | None:
    spec = manifest["spec"]
    if manifest["kind"] == "Service":
        return spec.get("selector")
    found = spec.get("podSelector" if manifest["kind"] == "NetworkPolicy" else "selector", {})
    return found.get("matchLabels")


def pod_template(workload: Manifest) -> dict[str, Any]:
    spec = workload["spec"]
    template: dict[str, Any] = (
        spec["jobTemplate"]["spec"]["template"]
        if workload["kind"] == "CronJob"
        else spec["template"]
    )
    return template


def _selects(selector: dict[str, str], workload: Manifest) -> bool:
    return selector.items() <= pod_template(workload)["metadata"]["labels"].items()


def _pod_ports(manifests: list[Manifest], selector: dict[str, str]) -> Iterator[dict[str, Any]]:
    for workload in manifests:
        spec = pod_spec(workload)
        if spec is not None and _selects(selector, workload):
            for container in spec["containers"]:
                yield from container.get("ports", [])


def wiring_problems(manifests: list[Manifest]) -> list[str]:
    """Probes, scrape annotations and network rules agree with the services' ports."""
    problems = []
    settings = config(manifests)
    for name, port in (("recstream-consumer", CONSUMER_PORT), ("recstream-api", API_PORT)):
        workload = named(manifests, "Deployment", name)
        if workload is None:
            problems.append(f"Deployment {name} is missing")
            continue
        template = workload["spec"]["template"]
        container = template["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        if port not in ports.values():
            problems.append(f"{name}: container port {port} is not declared")
        for probe in ("livenessProbe", "readinessProbe"):
            action = container.get(probe, {})
            probe_port = (action.get("httpGet") or action.get("tcpSocket") or {}).get("port")
            if ports.get(probe_port, probe_port) != port:
                problems.append(f"{name}: {probe} does not use port {port}")
        annotations = template["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/port") != str(port):
            problems.append(f"{name}: prometheus.io/port is not {port}")
        policy = named(manifests, "NetworkPolicy", name)
        if policy is None:
            problems.append(f"NetworkPolicy {name} is missing")
            continue
        ingress = {p["port"] for rule in policy["spec"].get("ingress", []) for p in rule["ports"]}
        if port not in ingress:
            problems.append(f"NetworkPolicy {name}: no ingress on {port}")
        for needed in _egress_needed(settings) - _egress(policy):
            problems.append(f"NetworkPolicy {name}: no egress to {needed}")
    return problems


def _egress(policy: Manifest) -> set[tuple[str, int]]:
    return {
        (p.get("protocol", "TCP"), p["port"])
        for rule in policy["spec"].get("egress", [])
        for p in rule.get("ports", [])
    }


def training_problems(manifests: list[Manifest]) -> list[str]:
    """The ranker's scheduled training: one run at a time, not retried, a valid ``recstream
    train --publish`` from the interactions topic under the deployment's key prefix, the
    consumer's configuration and Redis secret, and a network policy with no ingress and the
    egress it needs."""
    from recstream_cli.main import cli

    name = "recstream-ranker-training"
    job = named(manifests, "CronJob", name)
    if job is None:
        return [f"CronJob {name} is missing"]
    problems = []
    spec = job["spec"]
    if spec.get("concurrencyPolicy") != "Forbid":
        problems.append(f"{name}: two trainings may run at once")
    if spec["jobTemplate"]["spec"].get("backoffLimit") != 0:
        problems.append(f"{name}: a failed training is retried on the same data")
    pod = pod_spec(job) or {}
    (container,) = pod["containers"]
    settings = config(manifests)
    args = [
        re.sub(r"\$\((\w+)\)", lambda m: settings.get(m[1], m[0]), a) for a in container["args"]
    ]
    try:
        with cli.make_context("recstream", list(args)) as context:
            command = cli.get_command(context, args[0])
            assert command is not None
            options = command.make_context(args[0], args[1:]).params
    except (click.ClickException, AssertionError) as exc:
        return [*problems, f"{name}: recstream {' '.join(args)} does not parse: {exc}"]
    topic = settings.get("RECSTREAM_KAFKA__INTERACTIONS_TOPIC")
    if args[0] != "train" or options["from_topic"] != topic or not options["publish"]:
        problems.append(f"{name}: does not train from {topic} and publish: {args}")
    if options["prefix"] != settings.get("RECSTREAM_REDIS__KEY_PREFIX"):
        problems.append(f"{name}: --prefix {options['prefix']} is not the deployment's")
    consumer = named(manifests, "Deployment", "recstream-consumer")
    if consumer is not None:
        theirs = set(_config_refs(pod_spec(consumer) or {}))
        if theirs - set(_config_refs(pod)):
            problems.append(
                f"{name}: lacks the consumer's {sorted(theirs - set(_config_refs(pod)))}"
            )
    policy = named(manifests, "NetworkPolicy", name)
    if policy is None or not _selects(policy["spec"]["podSelector"]["matchLabels"], job):
        return [*problems, f"NetworkPolicy {name} is missing or selects another pod"]
    if policy["spec"].get("ingress"):
        problems.append(f"NetworkPolicy {name}: allows ingress")
    for needed in _egress_needed(settings) - _egress(policy):
        problems.append(f"NetworkPolicy {name}: no egress to {needed}")
    return problems


def _egress_needed(settings: dict[str, str]) -> set[tuple[str, int]]:
    redis_port = urlsplit(settings.get("RECSTREAM_REDIS__URL", "redis://x:6379")).port or 6379
    kafka_ports = {
        int(server.rsplit(":", 1)[1])
        for server in settings.get("RECSTREAM_KAFKA__BOOTSTRAP_SERVERS", "x:9092").split(",")
    }
    needed = {("UDP", 53), ("TCP", redis_port)} | {("TCP", p) for p in kafka_ports}
    jwks = urlsplit(settings.get("RECSTREAM_AUTH__JWKS_URL", ""))
    if jwks.scheme == "https":
        needed.add(("TCP", jwks.port or 443))
    return needed


def all_problems(manifests: list[Manifest]) -> list[str]:
    return (
        schema_problems(manifests)
        + scaled_object_problems(manifests)
        + reference_problems(manifests)
        + wiring_problems(manifests)
        + training_problems(manifests)
    )


def _name(manifest: Manifest) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"
