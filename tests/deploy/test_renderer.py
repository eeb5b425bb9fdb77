"""kustomize_lite (the renderer the checks rely on) and the validator's reporting."""

import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml

import deploy_helpers as h
import kustomize_lite as kl
import manifest_inventory

KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed: no reference kustomize")
@pytest.mark.parametrize("rel", h.KUSTOMIZATIONS)
def test_matches_kubectl_kustomize(rel):
    out = subprocess.run([KUBECTL, "kustomize", str(h.REPO / rel)], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert kl.build(h.REPO / rel) == [d for d in yaml.safe_load_all(out) if d]


def _write(root, files):
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return root


KUST = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: c
          image: reg:5000/app:1
          env:
            - name: A
              value: "1"
"""


def test_unsupported_field_is_refused(tmp_path):
    _write(tmp_path, {"kustomization.yaml": KUST + "resources: [d.yaml]\nnamePrefix: x-\n",
                      "d.yaml": DEPLOY})
    with pytest.raises(kl.KustomizeError, match="namePrefix"):
        kl.build(tmp_path)


def test_base_that_contains_its_overlay_is_a_cycle(tmp_path):
    _write(tmp_path, {"kustomization.yaml": KUST + "resources: [d.yaml]\n", "d.yaml": DEPLOY,
                      "overlays/o/kustomization.yaml": KUST + "resources: [../../]\n"})
    with pytest.raises(kl.KustomizeError, match="cycle detected"):
        kl.build(tmp_path / "overlays" / "o")


def test_file_outside_root_is_refused(tmp_path):
    _write(tmp_path, {"d.yaml": DEPLOY, "o/kustomization.yaml": KUST + "resources: [../d.yaml]\n"})
    with pytest.raises(kl.KustomizeError, match="security"):
        kl.build(tmp_path / "o")


def test_missing_resource(tmp_path):
    _write(tmp_path, {"kustomization.yaml": KUST + "resources: [nope.yaml]\n"})
    with pytest.raises(kl.KustomizeError, match="does not exist"):
        kl.build(tmp_path)


def test_patch_matching_nothing_is_an_error(tmp_path):
    _write(tmp_path, {"kustomization.yaml": KUST + "resources: [d.yaml]\npatches:\n  - path: p.yaml\n",
                      "d.yaml": DEPLOY,
                      "p.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: other}\n"})
    with pytest.raises(kl.KustomizeError, match="matches no resource"):
        kl.build(tmp_path)


def test_strategic_merge_and_delete(tmp_path):
    _write(tmp_path, {
        "kustomization.yaml": KUST + "resources: [d.yaml, s.yaml]\n"
                              "patches:\n  - path: p.yaml\n  - path: del.yaml\n",
        "d.yaml": DEPLOY,
        "s.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: NodePort}\n",
        "p.yaml": """\
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: d}
            spec:
              replicas: null
              template:
                spec:
                  containers:
                    - name: c
                      imagePullPolicy: Always
                      env:
                        - name: A
                          value: "2"
            """,
        "del.yaml": "$patch: delete\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
    })
    (d,) = kl.build(tmp_path)
    assert "replicas" not in d["spec"]
    (c,) = d["spec"]["template"]["spec"]["containers"]
    assert c == {"name": "c", "image": "reg:5000/app:1", "imagePullPolicy": "Always",
                 "env": [{"name": "A", "value": "2"}]}


def test_json_patch_kind_change_needs_option(tmp_path):
    patch = "- op: replace\n  path: /kind\n  value: DaemonSet\n- op: remove\n  path: /spec/replicas\n"
    target = "    target: {group: apps, version: v1, kind: Deployment, name: d}\n"
    _write(tmp_path, {"kustomization.yaml": KUST + "resources: [d.yaml]\npatches:\n"
                      "  - path: p.yaml\n" + target, "d.yaml": DEPLOY, "p.yaml": patch})
    with pytest.raises(kl.KustomizeError, match="allowKindChange"):
        kl.build(tmp_path)
    _write(tmp_path, {"kustomization.yaml": KUST + "resources: [d.yaml]\npatches:\n"
                      "  - path: p.yaml\n" + target + "    options: {allowKindChange: true}\n"})
    (ds,) = kl.build(tmp_path)
    assert ds["kind"] == "DaemonSet" and "replicas" not in ds["spec"]


def test_json_patch_remove_missing_path_fails(tmp_path):
    _write(tmp_path, {"kustomization.yaml": KUST + "resources: [d.yaml]\npatches:\n  - path: p.yaml\n"
                      "    target: {kind: Deployment}\n",
                      "d.yaml": DEPLOY, "p.yaml": "- op: remove\n  path: /spec/strategy\n"})
    with pytest.raises(kl.KustomizeError, match="does not exist"):
        kl.build(tmp_path)


def test_namespace_and_images(tmp_path):
    _write(tmp_path, {
        "kustomization.yaml": KUST + "namespace: ns\nresources: [d.yaml, n.yaml]\nimages:\n"
                              "  - name: reg:5000/app\n    newName: other/app\n    newTag: '2'\n",
        "d.yaml": DEPLOY,
        "n.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n",
    })
    n, d = kl.build(tmp_path)
    assert n["kind"] == "Namespace" and "namespace" not in n["metadata"]
    assert d["metadata"]["namespace"] == "ns"
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "other/app:2"


def test_split_image():
    assert kl.split_image("localhost:32000/x") == ("localhost:32000/x", None, None)
    assert kl.split_image("localhost:32000/x:1.2") == ("localhost:32000/x", "1.2", None)
    assert kl.split_image("x@sha256:ab") == ("x", None, "sha256:ab")


def test_inventory_refuses_documents_without_kind(tmp_path):
    _write(tmp_path, {"kustomization.yaml": KUST + "resources: [d.yaml]\n", "d.yaml": DEPLOY,
                      "stray.yaml": "spec: {replicas: 1}\n"})
    with pytest.raises(manifest_inventory.InventoryError, match="stray.yaml"):
        manifest_inventory.classify(tmp_path)


def test_inventory_hands_unknown_kinds_to_the_validator(tmp_path):
    _write(tmp_path, {"kustomization.yaml": KUST + "resources: [d.yaml]\n",
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
