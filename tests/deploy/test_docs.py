"""README.md (Run on Kubernetes) agrees with the manifests and the check script."""

import re

import deploy_helpers as h

DOC = (h.REPO / "README.md").read_text(encoding="utf-8")
SCRIPT = (h.REPO / "scripts" / "check-deploy.sh").read_text(encoding="utf-8")


def test_k8s_paths_in_docs_exist():
    paths = set(re.findall(r"\bk8s/[\w./-]*", DOC))
    assert "k8s/overlays/microk8s" in paths and "k8s/overlays/daemonset" in paths
    for p in paths:
        assert (h.REPO / p.rstrip(".")).exists(), p


def test_stated_kubernetes_version_matches_script():
    m = re.search(r"^KUBE_VERSION=(\S+)$", SCRIPT, re.MULTILINE)
    latest = re.search(r"^KUBE_VERSION_LATEST=(\S+)$", SCRIPT, re.MULTILINE)
    assert m and latest
    assert f"**Kubernetes {m.group(1)}**" in DOC
    assert f"validated against {m.group(1)} and {latest.group(1)}" in DOC


def test_docs_use_the_manifest_names_and_ports(base):
    for word in (h.NAMESPACE, h.APP, "memory-stress-service", "memory-stress-headless",
                 f":{h.GRPC_NODE_PORT}", f":{h.HTTP_NODE_PORT}", f"{h.IMAGE}:latest"):
        assert word in DOC, word
    for ns in re.findall(r"kubectl -n (\S+)", DOC):
        assert ns == h.NAMESPACE
    for kind, name in re.findall(r"rollout status (deployment|daemonset)/(\S+)", DOC):
        assert name == h.APP


def test_docs_cover_the_workflow():
    for needle in ("microk8s enable dns registry", "docker build -t", "docker push",
                   "microk8s kubectl apply -k k8s/overlays/microk8s", "rollout status",
                   "--scope container", "--memory-percent 90",
                   "--memory-mb 2100 --allow-oom", "OOMKilled", "Restart Count", "get events",
                   "grpcurl -plaintext", "describe memstress.v1.StressService",
                   "memstress.v1.StressService/Status", "grpc.health.v1.Health/Check",
                   "kubectl apply -k k8s/overlays/daemonset"):
        assert needle in DOC, needle
