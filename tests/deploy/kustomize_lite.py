"""A small, strict renderer for the subset of kustomize that k8s/ uses.

Why: the deploy checks must run on a fresh machine that has Python but maybe no
kubectl/kustomize, and the rendered overlays (not just the raw files) must be validated.
So this implements exactly these kustomize features and raises KustomizeError on
anything else rather than guessing:

* ``resources``: files (multi-document YAML) and directories holding a kustomization,
  with kustomize's two safety rules: a file must lie in or below the kustomization's
  directory, and a directory may not contain a kustomization that is being built
  ("cycle detected"; this is why the base lives in k8s/base and not k8s/).
* ``patches`` (``path`` or inline ``patch``, optional ``target`` by
  group/version/kind/name/namespace as anchored regexes, ``options``
  allowKindChange/allowNameChange):
    - strategic-merge patches: maps merge, ``null`` deletes a key, lists are replaced
      except containers/initContainers/env/volumes (merged by ``name``) and volumeMounts
      (by ``mountPath``), whose items must already exist; a top-level
      ``$patch: delete`` removes the resource. Other ``$`` directives are refused.
    - JSON patches (RFC 6902): ``add``, ``remove``, ``replace``.
  Stricter than kustomize: a patch that matches no resource is an error.
* ``namespace``: set on every namespaced resource (Namespace itself is left alone).
* ``images``: ``name`` with ``newName``/``newTag``/``digest``, applied to the
  containers and initContainers of pod templates.

Transformers run in kustomize's order: patches, namespace, images. The output is sorted
like kustomize's default ("legacy") order. tests/deploy/test_renderer.py compares this
renderer with ``kubectl kustomize`` whenever kubectl is installed.

Usage: python tests/deploy/kustomize_lite.py DIR  (prints the rendered YAML)
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}
# Kinds whose namespace handling in kustomize goes beyond metadata.namespace.
NAMESPACE_UNSUPPORTED = {"RoleBinding", "ClusterRoleBinding", "ValidatingWebhookConfiguration",
                         "MutatingWebhookConfiguration", "APIService", "CustomResourceDefinition"}
# kustomize's legacy output order (api/resid/gvk.go); other kinds follow, by kind name.
ORDER_FIRST = [
    "Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition",
    "ServiceAccount", "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding",
    "ClusterRoleBinding", "ConfigMap", "Secret", "Endpoints", "Service", "LimitRange",
    "PriorityClass", "PersistentVolume", "PersistentVolumeClaim", "Deployment",
    "StatefulSet", "CronJob", "PodDisruptionBudget",
]
ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
# Strategic-merge list keys this renderer merges; other known merge lists are refused.
SMP_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
}
SMP_UNSUPPORTED_LISTS = {"ports", "imagePullSecrets", "hostAliases", "topologySpreadConstraints",
                         "envFrom", "ephemeralContainers", "volumeDevices", "resourceClaims"}
POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


class KustomizeError(Exception):
    """The kustomization is invalid, or uses a feature this renderer does not implement."""


def _load_yaml_docs(path: Path) -> list[Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            return [d for d in yaml.safe_load_all(fh) if d is not None]
    except yaml.YAMLError as exc:
        raise KustomizeError(f"{path}: invalid YAML: {exc}") from exc


def find_kustomization(directory: Path) -> Path:
    found = [directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()]
    if not found:
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    if len(found) > 1:
        raise KustomizeError(f"{directory}: more than one kustomization file: {found}")
    return found[0]


def load_kustomization(directory: Path) -> dict:
    path = find_kustomization(directory)
    docs = _load_yaml_docs(path)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise KustomizeError(f"{path}: expected exactly one YAML mapping")
    k = docs[0]
    if k.get("apiVersion") != "kustomize.config.k8s.io/v1beta1" or k.get("kind") != "Kustomization":
        raise KustomizeError(f"{path}: expected apiVersion kustomize.config.k8s.io/v1beta1, "
                             "kind Kustomization")
    unknown = set(k) - SUPPORTED_KEYS
    if unknown:
        raise KustomizeError(f"{path}: fields not supported by kustomize_lite: {sorted(unknown)}")
    return k


def _within(root: Path, path: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _group_version(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return group, version
    return "", api_version


def res_id(res: dict) -> tuple[str, str, str, str]:
    group, _ = _group_version(res["apiVersion"])
    meta = res.get("metadata") or {}
    return (group, res["kind"], meta.get("namespace", ""), meta.get("name", ""))


def _check_resource(res: Any, where: str) -> dict:
    if not isinstance(res, dict):
        raise KustomizeError(f"{where}: a resource must be a YAML mapping")
    for field in ("apiVersion", "kind"):
        if not isinstance(res.get(field), str) or not res[field]:
            raise KustomizeError(f"{where}: resource without {field}")
    if not isinstance(res.get("metadata"), dict) or not res["metadata"].get("name"):
        raise KustomizeError(f"{where}: {res['kind']} without metadata.name")
    return res


def build(directory: str | Path) -> list[dict]:
    """Render the kustomization in ``directory`` into a list of resources."""
    return _sort(_build(Path(directory).resolve(), ()))


def _build(root: Path, visited: tuple[Path, ...]) -> list[dict]:
    for seen in visited:
        if seen == root or _within(root, seen):
            raise KustomizeError(f"cycle detected: candidate root '{root}' contains visited root "
                                 f"'{seen}'")
    k = load_kustomization(root)
    chain = visited + (root,)

    resources: list[dict] = []
    for entry in k.get("resources") or []:
        if not isinstance(entry, str):
            raise KustomizeError(f"{root}: resources entries must be strings")
        target = (root / entry).resolve()
        if target.is_dir():
            loaded = _build(target, chain)
        elif target.is_file():
            if not _within(root, target):
                raise KustomizeError(f"{root}: security: file '{target}' is not in or below "
                                     f"'{root}'")
            loaded = [_check_resource(copy.deepcopy(d), str(target)) for d in _load_yaml_docs(target)]
        else:
            raise KustomizeError(f"{root}: resource '{entry}' does not exist")
        for res in loaded:
            if any(res_id(r) == res_id(res) for r in resources):
                raise KustomizeError(f"{root}: may not add resource with an already registered "
                                     f"id: {res_id(res)}")
            resources.append(res)

    for patch in k.get("patches") or []:
        resources = _apply_patch_entry(root, patch, resources)

    if "namespace" in k:
        _set_namespace(k["namespace"], resources, root)

    for image in k.get("images") or []:
        _apply_image(root, image, resources)

    return resources


# ---------------------------------------------------------------------------------- patches


def _apply_patch_entry(root: Path, entry: Any, resources: list[dict]) -> list[dict]:
    if not isinstance(entry, dict):
        raise KustomizeError(f"{root}: patches entries must be mappings")
    unknown = set(entry) - {"path", "patch", "target", "options"}
    if unknown:
        raise KustomizeError(f"{root}: patch fields not supported: {sorted(unknown)}")
    if ("path" in entry) == ("patch" in entry):
        raise KustomizeError(f"{root}: a patch needs exactly one of path, patch")
    options = entry.get("options") or {}
    unknown = set(options) - {"allowKindChange", "allowNameChange"}
    if unknown:
        raise KustomizeError(f"{root}: patch options not supported: {sorted(unknown)}")

    if "path" in entry:
        path = (root / entry["path"]).resolve()
        if not _within(root, path):
            raise KustomizeError(f"{root}: security: patch '{path}' is not in or below '{root}'")
        if not path.is_file():
            raise KustomizeError(f"{root}: patch file '{entry['path']}' does not exist")
        docs = _load_yaml_docs(path)
        where = str(path)
    else:
        try:
            docs = [d for d in yaml.safe_load_all(entry["patch"]) if d is not None]
        except yaml.YAMLError as exc:
            raise KustomizeError(f"{root}: invalid inline patch: {exc}") from exc
        where = f"{root} (inline patch)"
    if len(docs) != 1:
        raise KustomizeError(f"{where}: expected exactly one patch document")
    body = docs[0]

    if isinstance(body, list):
        if "target" not in entry:
            raise KustomizeError(f"{where}: a JSON patch needs a target")
        matches = _select(resources, entry["target"], where)
        kind = "json6902"
    elif isinstance(body, dict):
        if "target" in entry:
            matches = _select(resources, entry["target"], where)
        else:
            _check_resource(body, where)
            group, version = _group_version(body["apiVersion"])
            selector = {"group": re.escape(group), "version": re.escape(version),
                        "kind": re.escape(body["kind"]), "name": re.escape(body["metadata"]["name"])}
            if body["metadata"].get("namespace"):
                selector["namespace"] = re.escape(body["metadata"]["namespace"])
            matches = _select(resources, selector, where)
            if len(matches) != 1:
                raise KustomizeError(f"{where}: strategic-merge patch matches {len(matches)} "
                                     "resources, expected 1")
        kind = "smp"
    else:
        raise KustomizeError(f"{where}: a patch must be a mapping or a list")

    out: list[dict] = []
    for res in resources:
        if not any(res is m for m in matches):
            out.append(res)
            continue
        if kind == "smp":
            if body.get("$patch") == "delete":
                if set(body) - {"$patch", "apiVersion", "kind", "metadata"}:
                    raise KustomizeError(f"{where}: a $patch: delete patch must carry nothing else")
                continue  # deleted
            patched = copy.deepcopy(res)
            _smp_merge(patched, body, where, "")
        else:
            patched = _json6902(copy.deepcopy(res), body, where)
        if patched["kind"] != res["kind"] and not options.get("allowKindChange"):
            raise KustomizeError(f"{where}: patch changes kind; set options.allowKindChange")
        if (patched["metadata"].get("name") != res["metadata"].get("name")
                and not options.get("allowNameChange")):
            raise KustomizeError(f"{where}: patch changes name; set options.allowNameChange")
        _check_resource(patched, where)
        out.append(patched)

    ids = [res_id(r) for r in out]
    if len(ids) != len(set(ids)):
        raise KustomizeError(f"{where}: patch leaves two resources with the same id")
    return out


def _select(resources: list[dict], target: Any, where: str) -> list[dict]:
    if not isinstance(target, dict):
        raise KustomizeError(f"{where}: target must be a mapping")
    unknown = set(target) - {"group", "version", "kind", "name", "namespace"}
    if unknown:
        raise KustomizeError(f"{where}: target fields not supported: {sorted(unknown)}")
    matches = []
    for res in resources:
        group, version = _group_version(res["apiVersion"])
        fields = {"group": group, "version": version, "kind": res["kind"],
                  "name": res["metadata"].get("name", ""),
                  "namespace": res["metadata"].get("namespace", "")}
        if all(re.fullmatch(str(pattern), fields[key]) for key, pattern in target.items()):
            matches.append(res)
    if not matches:
        raise KustomizeError(f"{where}: patch target {target} matches no resource")
    return matches


def _smp_merge(base: dict, patch: dict, where: str, path: str) -> None:
    for key, value in patch.items():
        here = f"{path}.{key}" if path else key
        if key.startswith("$"):
            if key == "$patch" and path == "":
                raise KustomizeError(f"{where}: only '$patch: delete' is supported at the top")
            raise KustomizeError(f"{where}: directive {key} at {here} not supported")
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _smp_merge(base[key], value, where, here)
        elif isinstance(value, list) and key in SMP_UNSUPPORTED_LISTS:
            raise KustomizeError(f"{where}: strategic merge of list {here} not supported")
        elif isinstance(value, list) and key in SMP_MERGE_KEYS and isinstance(base.get(key), list):
            _smp_merge_list(base[key], value, SMP_MERGE_KEYS[key], where, here)
        else:
            base[key] = copy.deepcopy(value)


def _smp_merge_list(base: list, patch: list, merge_key: str, where: str, path: str) -> None:
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise KustomizeError(f"{where}: items of {path} need '{merge_key}'")
        found = [b for b in base if isinstance(b, dict) and b.get(merge_key) == item[merge_key]]
        if not found:
            raise KustomizeError(f"{where}: {path}: adding list items is not supported "
                                 f"({merge_key}={item[merge_key]!r} is not in the base)")
        if item.get("$patch") == "delete":
            base.remove(found[0])
            continue
        _smp_merge(found[0], item, where, f"{path}[{merge_key}={item[merge_key]}]")


def _pointer(path: str, where: str) -> list[str]:
    if not isinstance(path, str) or not path.startswith("/"):
        raise KustomizeError(f"{where}: bad JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _json6902(doc: dict, ops: list, where: str) -> dict:
    for op in ops:
        if not isinstance(op, dict) or op.get("op") not in ("add", "remove", "replace"):
            raise KustomizeError(f"{where}: only add/remove/replace operations are supported")
        parts = _pointer(op.get("path"), where)
        parent: Any = doc
        for part in parts[:-1]:
            if isinstance(parent, dict) and part in parent:
                parent = parent[part]
            elif isinstance(parent, list) and part.isdigit() and int(part) < len(parent):
                parent = parent[int(part)]
            else:
                raise KustomizeError(f"{where}: path {op['path']} does not exist")
        last = parts[-1]
        if op["op"] in ("add", "replace") and "value" not in op:
            raise KustomizeError(f"{where}: {op['op']} {op['path']} needs a value")
        if isinstance(parent, dict):
            if op["op"] in ("remove", "replace") and last not in parent:
                raise KustomizeError(f"{where}: path {op['path']} does not exist")
            if op["op"] == "remove":
                del parent[last]
            else:
                parent[last] = copy.deepcopy(op["value"])
        elif isinstance(parent, list):
            if op["op"] == "add" and last == "-":
                parent.append(copy.deepcopy(op["value"]))
                continue
            if not last.isdigit():
                raise KustomizeError(f"{where}: bad list index in {op['path']}")
            idx = int(last)
            limit = len(parent) + (1 if op["op"] == "add" else 0)
            if idx >= limit:
                raise KustomizeError(f"{where}: path {op['path']} does not exist")
            if op["op"] == "add":
                parent.insert(idx, copy.deepcopy(op["value"]))
            elif op["op"] == "remove":
                del parent[idx]
            else:
                parent[idx] = copy.deepcopy(op["value"])
        else:
            raise KustomizeError(f"{where}: path {op['path']} does not exist")
    return doc


# ------------------------------------------------------------------ namespace and images


def _set_namespace(namespace: Any, resources: list[dict], root: Path) -> None:
    if not isinstance(namespace, str) or not namespace:
        raise KustomizeError(f"{root}: namespace must be a non-empty string")
    for res in resources:
        if res["kind"] in NAMESPACE_UNSUPPORTED:
            raise KustomizeError(f"{root}: namespace transformer on {res['kind']} not supported")
        if res["kind"] not in CLUSTER_SCOPED:
            res["metadata"]["namespace"] = namespace


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``repo[:tag][@digest]`` -> (repo, tag, digest)."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    colon = image.rfind(":")
    if colon > image.rfind("/"):
        image, tag = image[:colon], image[colon + 1:]
    return image, tag, digest


def pod_spec(res: dict) -> dict | None:
    path = POD_SPEC_PATHS.get(res["kind"])
    if path is None:
        return None
    node: Any = res
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _apply_image(root: Path, entry: Any, resources: list[dict]) -> None:
    if not isinstance(entry, dict) or not entry.get("name"):
        raise KustomizeError(f"{root}: images entries need a name")
    unknown = set(entry) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise KustomizeError(f"{root}: images fields not supported: {sorted(unknown)}")
    for res in resources:
        spec = pod_spec(res)
        if spec is None:
            continue
        for field in ("containers", "initContainers"):
            for container in spec.get(field) or []:
                name, tag, digest = split_image(container.get("image", ""))
                if name != entry["name"]:
                    continue
                name = entry.get("newName", name)
                if "digest" in entry:
                    container["image"] = f"{name}@{entry['digest']}"
                elif "newTag" in entry:
                    container["image"] = f"{name}:{entry['newTag']}"
                else:
                    container["image"] = name + (f":{tag}" if tag else "") + (
                        f"@{digest}" if digest else "")


def _sort(resources: list[dict]) -> list[dict]:
    def key(res: dict) -> tuple:
        kind = res["kind"]
        if kind in ORDER_FIRST:
            rank = (0, ORDER_FIRST.index(kind), "")
        elif kind in ORDER_LAST:
            rank = (2, ORDER_LAST.index(kind), "")
        else:
            rank = (1, 0, kind)
        return rank + (res["metadata"].get("namespace", ""), res["metadata"]["name"])

    return sorted(resources, key=key)


def dump(resources: list[dict]) -> str:
    return yaml.safe_dump_all(resources, sort_keys=True, default_flow_style=False)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} KUSTOMIZATION_DIR", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(dump(build(argv[1])))
    except KustomizeError as exc:
        print(f"kustomize_lite: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
