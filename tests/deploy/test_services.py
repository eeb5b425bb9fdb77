"""Services: selectors reach the stressd pods, and ports line up with the container's."""

import pytest

import deploy_helpers as h


def _services(rendered):
    return [(rel, s) for rel, res in rendered.items() for s in h.by_kind(res, "Service")]


def test_services_present(rendered):
    for rel, res in rendered.items():
        names = sorted(s["metadata"]["name"] for s in h.by_kind(res, "Service"))
        assert names == ["memory-stress-headless", "memory-stress-service"], rel


def test_selectors_match_pods_and_ports_resolve(rendered):
    for rel, svc in _services(rendered):
        pods = [h.template(w) for w in h.workloads(rendered[rel])]
        selector = svc["spec"]["selector"]
        matched = [p for p in pods if h.selector_matches({"matchLabels": selector},
                                                         p["metadata"]["labels"])]
        assert matched, f"{rel}: {svc['metadata']['name']} selects no pod"
        for pod in matched:
            for port in svc["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                assert h.named_port(pod["spec"], target) == port["port"], (
                    f"{rel}: {svc['metadata']['name']} port {port['name']}")


def _ports(svc):
    return {p["name"]: p for p in svc["spec"]["ports"]}


@pytest.mark.parametrize("rel", h.KUSTOMIZATIONS)
def test_nodeport_service(rendered, rel):
    """The two ports of the base, and nothing else: in the secure overlay too, where the
    plaintext health port must not be reachable through a NodePort."""
    svc = h.one(rendered[rel], "Service", "memory-stress-service")
    assert svc["spec"]["type"] == "NodePort"
    ports = _ports(svc)
    assert set(ports) == {"http", "grpc"}
    assert (ports["http"]["port"], ports["http"]["nodePort"]) == (h.HTTP_PORT, h.HTTP_NODE_PORT)
    assert (ports["grpc"]["port"], ports["grpc"]["nodePort"]) == (h.GRPC_PORT, h.GRPC_NODE_PORT)
    assert ports["http"]["targetPort"] == "http" and ports["grpc"]["targetPort"] == "grpc"
    assert ports["http"]["appProtocol"] == "http"
    # With TLS on the gRPC port is HTTP/2 over TLS, no longer h2c (cleartext).
    assert ports["grpc"]["appProtocol"] == ("https" if rel == h.SECURE else "kubernetes.io/h2c")
    for p in ports.values():
        assert p.get("protocol", "TCP") == "TCP"
        assert 30000 <= p["nodePort"] <= 32767


@pytest.mark.parametrize("rel", h.KUSTOMIZATIONS)
def test_headless_service(rendered, rel):
    svc = h.one(rendered[rel], "Service", "memory-stress-headless")
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    ports = _ports(svc)
    assert {n: p["port"] for n, p in ports.items()} == {"http": h.HTTP_PORT, "grpc": h.GRPC_PORT}
    assert all("nodePort" not in p for p in ports.values())
    assert ports["grpc"]["appProtocol"] == ("https" if rel == h.SECURE else "kubernetes.io/h2c")


@pytest.mark.parametrize("rel", h.KUSTOMIZATIONS)
def test_no_service_exposes_the_plaintext_health_port(rendered, rel):
    """Only the kubelet needs port 50052; no Service of any kustomization forwards to it,
    by number or by name."""
    for svc in h.by_kind(rendered[rel], "Service"):
        for pod in (h.template(w) for w in h.workloads(rendered[rel])):
            for port in svc["spec"]["ports"]:
                target = h.named_port(pod["spec"], port.get("targetPort", port["port"]))
                assert target != h.HEALTH_PORT, (rel, svc["metadata"]["name"], port)
                assert port["port"] != h.HEALTH_PORT
