"""An offline renderer of the kustomizations in ``deploy/``: the subset of Kustomize they use.

It resolves ``resources`` (files and kustomization folders), applies ``patches``
(strategic-merge files or inline documents, and JSON 6902 operations with a
``target``), ``images``, ``labels`` and ``namespace``, and fails with a
:class:`KustomizeError` on a missing file, a file that is not YAML, a document
that is not a Kubernetes object, a patch that matches nothing, or a
kustomization field it does not implement (so a new feature cannot be silently
ignored). ``tests/unit/test_deploy.py`` also compares its output with
``kubectl kustomize`` where kubectl is installed.

Why our own: Kustomize is a Go program with no Python port, and neither it nor kubectl
comes from the package registries this project installs from, so the tests could not
render the manifests at all on a fresh machine or in CI. The subset here is what
``deploy/`` uses, and anything else fails loudly.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

FIELDS = {"apiVersion", "kind", "namespace", "resources", "labels", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass"}
POD_SPEC_PATHS = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}


class KustomizeError(Exception):
    """The kustomization cannot be rendered."""


def load_documents(path: Path) -> list[Manifest]:
    """The non-empty YAML documents of a file, each a Kubernetes object."""
    if not path.is_file():
        raise KustomizeError(f"{path}: no such file")
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as exc:
        raise KustomizeError(f"{path}: not YAML: {exc}") from exc
    for document in documents:
        if not isinstance(document, dict) or not {"apiVersion", "kind"} <= document.keys():
            raise KustomizeError(f"{path}: a document without apiVersion and kind")
        if not isinstance(document.get("metadata"), dict) or not document["metadata"].get("name"):
            raise KustomizeError(f"{path}: a {document['kind']} without metadata.name")
    return documents


def identity(manifest: Manifest) -> tuple[str, str, str]:
    return (
        manifest["kind"],
        manifest["metadata"].get("namespace", ""),
        manifest["metadata"]["name"],
    )


def render(folder: Path, _seen: frozenset[Path] = frozenset()) -> list[Manifest]:
    """The manifests the kustomization in ``folder`` produces."""
    folder = folder.resolve()
    if folder in _seen:
        raise KustomizeError(f"{folder}: kustomization cycle")
    spec = load_kustomization(folder)
    manifests: list[Manifest] = []
    for entry in spec.get("resources", []):
        path = folder / entry
        if path.is_dir():
            manifests += render(path, _seen | {folder})
        else:
            manifests += load_documents(path)
    seen_ids: set[tuple[str, str, str]] = set()
    for manifest in manifests:
        if identity(manifest) in seen_ids:
            raise KustomizeError(f"{folder}: {identity(manifest)} is defined twice")
        seen_ids.add(identity(manifest))
    for patch in spec.get("patches", []):
        apply_patch(folder, manifests, patch)
    for image in spec.get("images", []):
        for manifest in manifests:
            set_image(manifest, image)
    for label_set in spec.get("labels", []):
        if label_set.get("includeSelectors") or label_set.get("includeTemplates"):
            raise KustomizeError(f"{folder}: labels into selectors or templates: not implemented")
        for manifest in manifests:
            manifest["metadata"].setdefault("labels", {}).update(label_set["pairs"])
    if "namespace" in spec:
        for manifest in manifests:
            if manifest["kind"] not in CLUSTER_SCOPED:
                manifest["metadata"]["namespace"] = spec["namespace"]
    return manifests


def load_kustomization(folder: Path) -> dict[str, Any]:
    path = folder / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{folder}: no kustomization.yaml")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise KustomizeError(f"{path}: not YAML: {exc}") from exc
    if not isinstance(spec, dict) or spec.get("kind") != "Kustomization":
        raise KustomizeError(f"{path}: not a Kustomization")
    unknown = set(spec) - FIELDS
    if unknown:
        raise KustomizeError(f"{path}: fields this renderer does not implement: {sorted(unknown)}")
    return spec


def apply_patch(folder: Path, manifests: list[Manifest], patch: dict[str, Any]) -> None:
    if "path" in patch:
        path = folder / patch["path"]
        if not path.is_file():
            raise KustomizeError(f"{path}: no such patch file")
        text = path.read_text()
    else:
        text = patch["patch"]
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KustomizeError(f"{folder}: patch is not YAML: {exc}") from exc
    target = patch.get("target")
    if isinstance(body, list):
        if target is None:
            raise KustomizeError(f"{folder}: a JSON 6902 patch needs a target")
        matched = [m for m in manifests if matches(m, target)]
        for manifest in matched:
            for operation in body:
                apply_operation(manifest, operation)
    elif isinstance(body, dict):
        target = target or {"kind": body.get("kind"), "name": body.get("metadata", {}).get("name")}
        matched = [m for m in manifests if matches(m, target)]
        for manifest in matched:
            merged = strategic_merge(manifest, body)
            manifest.clear()
            manifest.update(merged)
    else:
        raise KustomizeError(f"{folder}: a patch must be a list of operations or an object")
    if not matched:
        raise KustomizeError(f"{folder}: patch target {target} matches no resource")


def matches(manifest: Manifest, target: dict[str, Any]) -> bool:
    unknown = set(target) - {"kind", "name"}
    if unknown:
        raise KustomizeError(f"patch target fields not implemented: {sorted(unknown)}")
    return all(
        value == (manifest["kind"] if key == "kind" else manifest["metadata"]["name"])
        for key, value in target.items()
    )


def strategic_merge(base: Any, patch: Any) -> Any:
    """Objects merge key by key (``null`` deletes); lists of named objects merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        if "$patch" in patch:
            raise KustomizeError("$patch directives are not implemented")
        merged = dict(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = strategic_merge(base.get(key), value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and _named(base) and _named(patch):
        result = [copy.deepcopy(item) for item in base]
        added = []
        for item in patch:
            index = next((i for i, b in enumerate(result) if b["name"] == item["name"]), None)
            if index is None:
                added.append(copy.deepcopy(item))
            else:
                result[index] = strategic_merge(result[index], item)
        return added + result  # as kustomize: the patch's new items first, in its order
    return copy.deepcopy(patch)


def _named(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)


def apply_operation(manifest: Manifest, operation: dict[str, Any]) -> None:
    """One RFC 6902 operation (add, replace, remove, test)."""
    op, pointer = operation.get("op"), operation.get("path", "")
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    if not parts:
        raise KustomizeError(f"JSON patch path {pointer!r}: the whole document")
    parent: Any = manifest
    try:
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last: Any = parts[-1]
        if isinstance(parent, list):
            last = len(parent) if last == "-" and op == "add" else int(last)
        if op == "add":
            if isinstance(parent, list):
                parent.insert(last, copy.deepcopy(operation["value"]))
            else:
                parent[last] = copy.deepcopy(operation["value"])
        elif op == "replace":
            if isinstance(parent, dict) and last not in parent:
                raise KeyError(last)
            parent[last] = copy.deepcopy(operation["value"])
        elif op == "remove":
            del parent[last]
        elif op == "test":
            if parent[last] != operation["value"]:
                raise KustomizeError(f"JSON patch test failed at {pointer}")
        else:
            raise KustomizeError(f"JSON patch op {op!r} is not implemented")
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        raise KustomizeError(f"JSON patch {op} {pointer} on {name}: no such path") from exc


def pod_spec(manifest: Manifest) -> dict[str, Any] | None:
    node: Any = manifest
    for key in POD_SPEC_PATHS.get(manifest["kind"], ()):
        node = node.get(key) if isinstance(node, dict) else None
    return node if manifest["kind"] in POD_SPEC_PATHS and isinstance(node, dict) else None


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``name``, ``tag`` and ``digest`` of an image reference."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest or None


def set_image(manifest: Manifest, entry: dict[str, Any]) -> None:
    spec = pod_spec(manifest)
    if spec is None:
        return
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        name, tag, digest = split_image(container["image"])
        if name != entry["name"]:
            continue
        name = entry.get("newName", name)
        tag = entry.get("newTag", tag)
        digest = entry.get("digest", digest)
        container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
