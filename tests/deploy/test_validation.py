"""kubernetes-validate --strict on what `kubectl kustomize` renders, and the premises of the
validation step in scripts/check-deploy.sh (the inventory of k8s/, the validator's output)."""

import copy
import re
import subprocess
import sys

import pytest
import yaml

import deploy_helpers as h
import manifest_inventory

SCRIPT = (h.REPO / "scripts" / "check-deploy.sh").read_text(encoding="utf-8")
# The Kubernetes versions the script validates against: the target and the newest.
VERSIONS = [re.search(rf"^{var}=(\S+)$", SCRIPT, re.MULTILINE).group(1)
            for var in ("KUBE_VERSION", "KUBE_VERSION_LATEST")]
KUST = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"


def _validate(path) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "kubernetes_validate", "--strict"]
    for v in VERSIONS:
        args += ["--kubernetes-version", v]
    return subprocess.run(args + [str(path)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("rel", h.KUSTOMIZATIONS)
def test_rendered_kustomization_passes_strict_validation(rendered_text, rendered, rel, tmp_path):
    """kubectl's output itself, byte for byte, against both Kubernetes versions: every
    resource passes, and nothing else is printed (no WARN for a kind without a schema)."""
    path = tmp_path / "rendered.yaml"
    path.write_text(rendered_text[rel], encoding="utf-8")
    res = _validate(path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stderr == ""
    expected = [f"INFO {path} passed for resource {r['kind'].lower()}/{r['metadata']['name']} "
                f"against version {v}" for v in VERSIONS for r in rendered[rel]]
    assert sorted(res.stdout.splitlines()) == sorted(expected)


def test_strict_validation_catches_what_the_daemonset_patch_removes(rendered, tmp_path):
    """A DaemonSet that kept the Deployment's replicas is refused: the check has teeth."""
    docs = copy.deepcopy(rendered["k8s/overlays/daemonset"])
    h.one(docs, "DaemonSet", h.APP)["spec"]["replicas"] = 1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    res = _validate(path)
    assert res.returncode != 0
    errors = [ln for ln in res.stdout.splitlines() if ln.startswith("ERROR ")]
    assert len(errors) == len(VERSIONS), res.stdout
    assert all("daemonset/memory-stress-test" in ln and "'replicas' was unexpected" in ln
               for ln in errors)


def test_inventory_refuses_documents_without_kind(tmp_path):
    h.write_tree(tmp_path, {"kustomization.yaml": KUST + "resources: [d.yaml]\n",
                            "d.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
                            "stray.yaml": "spec: {replicas: 1}\n"})
    with pytest.raises(manifest_inventory.InventoryError, match="stray.yaml"):
        manifest_inventory.classify(tmp_path)


def test_inventory_hands_unknown_kinds_to_the_validator(tmp_path):
    h.write_tree(tmp_path, {"kustomization.yaml": KUST + "resources: [d.yaml]\n",
                            "d.yaml": "apiVersion: v1\nkind: Servic\nmetadata: {name: s}\n"})
    groups = manifest_inventory.classify(tmp_path)
    assert [p.name for p in groups["manifest"]] == ["d.yaml"]


def test_validator_reports_unknown_kind_only_as_a_warning(tmp_path):
    """The premise of the grep in check-deploy.sh: an unknown kind is a WARN line, exit 0."""
    f = tmp_path / "x.yaml"
    f.write_text("apiVersion: v1\nkind: Servic\nmetadata: {name: s}\n")
    res = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict",
                          "-k", "1.30", str(f)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    assert res.stdout.startswith("WARN ") and "Couldn't find schema for kind Servic" in res.stdout
