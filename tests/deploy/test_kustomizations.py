"""The kustomize layout: paths, what each kustomization renders, and how overlays differ."""

import copy
import re

import pytest
import yaml

import deploy_helpers as h
import manifest_inventory as inv


def test_expected_kustomizations_and_nothing_else():
    found = [str(d.relative_to(h.REPO)) for d in inv.kustomization_dirs()]
    assert sorted(found) == sorted(h.KUSTOMIZATIONS)


@pytest.mark.parametrize("rel", h.KUSTOMIZATIONS)
def test_referenced_paths_exist(rel):
    d = h.REPO / rel
    k = inv.load_kustomization(d)
    for entry in k.get("resources") or []:
        assert (d / entry).exists(), f"{rel}: resource {entry} missing"
    for entry in k.get("components") or []:
        assert (d / entry).is_dir(), f"{rel}: component {entry} missing"
    for entry in k.get("patches") or []:
        if "path" in entry:
            assert (d / entry["path"]).is_file(), f"{rel}: patch {entry['path']} missing"


def test_every_yaml_file_is_used():
    """No stray YAML under k8s/: each file is a kustomization, a resource or a patch of one."""
    used = set(inv.patch_files())
    for d in inv.kustomization_dirs():
        used.add(inv.find_kustomization(d).resolve())
        for entry in inv.load_kustomization(d).get("resources") or []:
            p = (d / entry).resolve()
            if p.is_file():
                used.add(p)
    stray = [p for p in inv.yaml_files() if p.resolve() not in used]
    assert stray == []


def test_inventory_sorts_every_file():
    groups = inv.classify()
    names = {k: sorted(p.relative_to(h.REPO).as_posix() for p in v) for k, v in groups.items()}
    assert names["manifest"] == [
        "k8s/base/deployment.yaml", "k8s/base/namespace.yaml", "k8s/base/service-headless.yaml",
        "k8s/base/service.yaml", "k8s/base/serviceaccount.yaml",
        "k8s/overlays/secure/networkpolicy.yaml",
    ]
    assert names["patch"] == [
        "k8s/overlays/daemonset/deployment-to-daemonset.yaml",
        "k8s/overlays/daemonset/service-node-local.yaml",
        "k8s/overlays/microk8s/pull-always.yaml",
        "k8s/overlays/secure/deployment-secure.yaml",
        "k8s/overlays/secure/service-headless-tls.yaml",
        "k8s/overlays/secure/service-tls.yaml",
    ]
    assert len(names["kustomization"]) == len(h.KUSTOMIZATIONS)


OVERLAYS = [rel for rel in h.KUSTOMIZATIONS if rel.startswith("k8s/overlays/")]


def _selected(resources: list[dict], target: dict) -> list[dict]:
    """The resources a kustomize patch `target` selects (each field an anchored regex)."""
    out = []
    for res in resources:
        group, _, version = res["apiVersion"].rpartition("/")
        fields = {"group": group, "version": version, "kind": res["kind"],
                  "name": res["metadata"]["name"], "namespace": res["metadata"].get("namespace", "")}
        if all(re.fullmatch(str(pattern), fields[key]) for key, pattern in target.items()):
            out.append(res)
    return out


@pytest.mark.parametrize("rel", OVERLAYS)
def test_overlay_patches_name_what_the_base_has(base, rel):
    """`kubectl kustomize` applies a `target:` patch that selects nothing as a silent no-op,
    and a strategic-merge patch adds a container it finds under no such name: neither is an
    error there, so every overlay patch is held against the base here."""
    k = inv.load_kustomization(h.REPO / rel)
    # The base, then only files of the overlay's own (the secure overlay's NetworkPolicy).
    assert k["resources"][0] == "../../base"
    for extra in k["resources"][1:]:
        assert "/" not in extra and (h.REPO / rel / extra).is_file(), extra
    assert k.get("patches"), f"{rel}: no patches"
    for entry in k["patches"]:
        text = entry.get("patch") or (h.REPO / rel / entry["path"]).read_text(encoding="utf-8")
        body = yaml.safe_load(text)
        if "target" in entry:
            assert len(_selected(base, entry["target"])) == 1, entry
            continue
        found = [r for r in base if (r["apiVersion"], r["kind"], r["metadata"]["name"]) ==
                 (body["apiVersion"], body["kind"], body["metadata"]["name"])]
        assert len(found) == 1, entry
        patched = (((body.get("spec") or {}).get("template") or {}).get("spec") or {})
        names = {c["name"] for c in patched.get("containers") or []}
        if names:
            assert names <= {c["name"] for c in h.template(found[0])["spec"]["containers"]}


def test_top_level_is_the_base(rendered):
    """`kubectl apply -k k8s/` deploys exactly the base."""
    assert rendered["k8s"] == rendered["k8s/base"]


def test_base_objects(base):
    assert sorted((r["kind"], r["metadata"]["name"]) for r in base) == [
        ("Deployment", h.APP),
        ("Namespace", h.NAMESPACE),
        ("Service", "memory-stress-headless"),
        ("Service", "memory-stress-service"),
        ("ServiceAccount", h.APP),
    ]
    assert h.one(base, "Deployment", h.APP)["spec"]["replicas"] == 1


@pytest.mark.parametrize("rel", h.KUSTOMIZATIONS)
def test_namespace(rendered, rel):
    for res in rendered[rel]:
        if res["kind"] == "Namespace":
            assert res["metadata"]["name"] == h.NAMESPACE
            assert "namespace" not in res["metadata"]
        else:
            assert res["metadata"].get("namespace") == h.NAMESPACE, res["metadata"]["name"]


def test_namespace_enforces_restricted_pod_security(base):
    labels = h.one(base, "Namespace", h.NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"


def test_daemonset_overlay_replaces_the_deployment(rendered, base):
    ds_res = rendered["k8s/overlays/daemonset"]
    assert h.by_kind(ds_res, "Deployment") == []
    ds = h.one(ds_res, "DaemonSet", h.APP)
    dep = h.one(base, "Deployment", h.APP)
    # Same pod template and selector as the base Deployment, field for field.
    assert ds["spec"]["template"] == dep["spec"]["template"]
    assert ds["spec"]["selector"] == dep["spec"]["selector"]
    assert ds["metadata"] == dep["metadata"]
    # Deployment-only fields are gone (the API server would reject them).
    assert "replicas" not in ds["spec"] and "strategy" not in ds["spec"]
    assert set(ds["spec"]) <= {"selector", "template", "revisionHistoryLimit", "updateStrategy",
                               "minReadySeconds"}


def test_daemonset_overlay_keeps_nodeport_on_the_node(rendered, base):
    ds_res = rendered["k8s/overlays/daemonset"]
    svc = h.one(ds_res, "Service", "memory-stress-service")
    assert svc["spec"]["externalTrafficPolicy"] == "Local"
    # Otherwise the same objects as the base.
    rest = [r for r in ds_res if r["kind"] not in ("DaemonSet", "Service")]
    assert rest == [r for r in base if r["kind"] not in ("Deployment", "Service")]
    base_svc = copy.deepcopy(h.one(base, "Service", "memory-stress-service"))
    base_svc["spec"]["externalTrafficPolicy"] = "Local"
    assert svc == base_svc


def test_microk8s_overlay(rendered, base):
    mk = rendered["k8s/overlays/microk8s"]
    c = h.container(h.one(mk, "Deployment", h.APP))
    assert c["image"] == "localhost:32000/memory-stress-test:latest"
    assert c["imagePullPolicy"] == "Always"
    # Nothing else differs from the base.
    expected = copy.deepcopy(base)
    h.container(h.one(expected, "Deployment", h.APP))["imagePullPolicy"] = "Always"
    assert mk == expected


def test_image_tag_is_set_by_kustomize_images():
    raw = inv.load_yaml_docs(h.K8S / "base" / "deployment.yaml")[0]
    image = raw["spec"]["template"]["spec"]["containers"][0]["image"]
    # The raw manifest names the image without a tag; `images:` supplies it.
    assert image == h.IMAGE
    images = inv.load_kustomization(h.K8S / "base")["images"]
    assert images == [{"name": h.IMAGE, "newTag": "latest"}]
    mk = inv.load_kustomization(h.K8S / "overlays" / "microk8s")["images"]
    assert [i["name"] for i in mk] == [h.IMAGE]
    assert mk[0]["newName"].startswith("localhost:32000/")


@pytest.mark.parametrize("rel", h.KUSTOMIZATIONS)
def test_rendered_images(rendered, rel):
    for w in h.workloads(rendered[rel]):
        for c in h.template(w)["spec"]["containers"]:
            assert c["image"] == f"{h.IMAGE}:latest"
