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
    svc = h.one(rendered[rel], "Service", "memory-stress-service")
    assert svc["spec"]["type"] == "NodePort"
    ports = _ports(svc)
    assert set(ports) == {"http", "grpc"}
    assert (ports["http"]["port"], ports["http"]["nodePort"]) == (h.HTTP_PORT, h.HTTP_NODE_PORT)
    assert (ports["grpc"]["port"], ports["grpc"]["nodePort"]) == (h.GRPC_PORT, h.GRPC_NODE_PORT)
    assert ports["http"]["targetPort"] == "http" and ports["grpc"]["targetPort"] == "grpc"
    assert ports["http"]["appProtocol"] == "http"
    assert ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"
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
