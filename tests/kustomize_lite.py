"""A small kustomize for the tests: builds deploy/k8s/ kustomizations without the kustomize
binary, which neither PyPI nor Debian ship in a usable version (Debian's kubectl 1.20 has
kustomize v2, which predates Components).

It does what deploy/k8s/ uses and nothing more: ``resources`` (files and directories),
``components``, ``namespace``, ``images`` (newName/newTag) and ``patches`` given by path
as strategic-merge patches. The merge follows kustomize's rules for the fields the
manifests patch: maps merge key by key; lists of containers, env, volumes, ports and
volume mounts merge item by item on their merge key (``name``, ``containerPort``,
``mountPath``); any other list is replaced. Anything else in a kustomization is refused,
so the loader cannot silently build something kustomize would not.
``tests/test_k8s_manifests.py`` compares its output with ``kubectl kustomize`` where that
binary exists.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

_SUPPORTED = {"apiVersion", "kind", "resources", "components", "namespace", "images", "patches"}
_MERGE_KEYS = {"volumeMounts": "mountPath", "ports": "containerPort"}
# Kinds without a namespace among those deploy/k8s uses.
_CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "StorageClass", "ClusterRole"}


def load_yaml_documents(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def build(directory: Path) -> list[Manifest]:
    """The objects the kustomization in ``directory`` produces."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - _SUPPORTED
    if unknown:
        raise ValueError(f"{directory}: kustomize_lite does not support {sorted(unknown)}")
    objects: list[Manifest] = []
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        objects += build(target) if target.is_dir() else load_yaml_documents(target)
    for entry in spec.get("components", []):
        objects = _apply_component((directory / entry).resolve(), objects)
    for patch_entry in spec.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise ValueError(f"{directory}: only path patches are supported: {patch_entry}")
        for patch in load_yaml_documents(directory / patch_entry["path"]):
            _apply_patch(objects, patch)
    for image in spec.get("images", []):
        _set_image(objects, image)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in _CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = spec["namespace"]
    return objects


def _apply_component(directory: Path, objects: list[Manifest]) -> list[Manifest]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    if spec.get("kind") != "Component":
        raise ValueError(f"{directory} is not a kustomize Component")
    added = build(directory)
    return objects + added


def _apply_patch(objects: list[Manifest], patch: Manifest) -> None:
    name = patch["metadata"]["name"]
    matches = [o for o in objects if o["kind"] == patch["kind"] and o["metadata"]["name"] == name]
    if len(matches) != 1:
        raise ValueError(f"patch for {patch['kind']}/{name} matches {len(matches)} objects")
    merged = merge(matches[0], patch)
    matches[0].clear()
    matches[0].update(merged)


def merge(base: Any, patch: Any, key: str | None = None) -> Any:
    """Strategic merge of ``patch`` into ``base`` (copies; the inputs are not changed)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for k, v in patch.items():
            out[k] = merge(base[k], v, k) if k in base else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list):
        merge_key = _MERGE_KEYS.get(key or "", "name")
        if all(isinstance(i, dict) and merge_key in i for i in base + patch):
            merged = copy.deepcopy(base)
            added: list[Any] = []
            for item in patch:
                for n, existing in enumerate(merged):
                    if existing[merge_key] == item[merge_key]:
                        merged[n] = merge(existing, item)
                        break
                else:
                    added.append(copy.deepcopy(item))
            return added + merged  # kustomize puts the patch's new items first
    return copy.deepcopy(patch)


def _set_image(objects: list[Manifest], image: dict[str, str]) -> None:
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            current = container["image"]
            name = current.rsplit(":", 1)[0] if ":" in current.rsplit("/", 1)[-1] else current
            if name == image["name"]:
                new_name = image.get("newName", name)
                tag = image.get("newTag") or (current.rsplit(":", 1)[1] if ":" in current else "")
                container["image"] = f"{new_name}:{tag}" if tag else new_name
