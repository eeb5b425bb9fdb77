"""Sorts the YAML files under k8s/ into what scripts/check-deploy.sh validates.

* kustomization files: kustomize configuration, not Kubernetes API objects. They are
  skipped by explicit kind (SKIPPED_KINDS) and never given to kubernetes-validate.
* patch files: the files that some kustomization names under ``patches:``. They are
  partial objects (or JSON-patch lists) and are validated through the rendered output.
* manifests: every other file. Each document must be a full Kubernetes object; these
  are all given to kubernetes-validate.

A document that fits none of these (no kind, a list outside patches, a stray file) is an
error, so nothing under k8s/ escapes validation.

Usage:
  python tests/deploy/manifest_inventory.py manifests        # print full-manifest files
  python tests/deploy/manifest_inventory.py render OUTDIR    # render every kustomization
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kustomize_lite  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
# Kinds skipped on purpose: kustomize's own configuration files.
SKIPPED_KINDS = {
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
    ("kustomize.config.k8s.io/v1alpha1", "Component"),
}


class InventoryError(Exception):
    pass


def yaml_files(root: Path = K8S) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))


def kustomization_dirs(root: Path = K8S) -> list[Path]:
    return sorted(p.parent for p in yaml_files(root) if p.name in kustomize_lite.KUSTOMIZATION_FILES)


def patch_files(root: Path = K8S) -> set[Path]:
    out = set()
    for d in kustomization_dirs(root):
        for entry in kustomize_lite.load_kustomization(d).get("patches") or []:
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
        with path.open(encoding="utf-8") as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d is not None]
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
            if path.name not in kustomize_lite.KUSTOMIZATION_FILES:
                raise InventoryError(f"{path}: kustomize configuration under an unexpected name")
            groups["kustomization"].append(path)
        elif any(skipped):
            raise InventoryError(f"{path}: mixes kustomize configuration and Kubernetes objects")
        else:
            groups["manifest"].append(path)
    return groups


def render_all(outdir: Path, root: Path = K8S) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for d in kustomization_dirs(root):
        rel = d.relative_to(root.parent)
        out = outdir / ("rendered-" + "-".join(rel.parts) + ".yaml")
        out.write_text(kustomize_lite.dump(kustomize_lite.build(d)), encoding="utf-8")
        written.append(out)
    return written


def main(argv: list[str]) -> int:
    try:
        if argv[1:] == ["manifests"]:
            for p in classify()["manifest"]:
                print(p.relative_to(REPO))
            return 0
        if len(argv) == 3 and argv[1] == "render":
            for p in render_all(Path(argv[2])):
                print(p)
            return 0
    except (InventoryError, kustomize_lite.KustomizeError) as exc:
        print(f"manifest_inventory: error: {exc}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
