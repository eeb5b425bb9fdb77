"""The stressd pod template, checked in every rendered kustomization (Deployment and DaemonSet)."""

import copy

import pytest

import deploy_helpers as h

WORKLOADS = [(rel, kind) for rel in h.KUSTOMIZATIONS
             for kind in (["DaemonSet"] if rel.endswith("daemonset") else ["Deployment"])]


@pytest.fixture(params=WORKLOADS, ids=[f"{r}:{k}" for r, k in WORKLOADS])
def workload(request, rendered):
    rel, kind = request.param
    return h.one(rendered[rel], kind, h.APP)


@pytest.fixture
def rel(workload, rendered) -> str:
    """The kustomization the workload under test was rendered from."""
    return next(r for r, res in rendered.items() if any(x is workload for x in res))


def test_each_kustomization_has_one_workload(rendered):
    for rel, res in rendered.items():
        assert len(h.workloads(res)) == 1, rel


def test_selector_matches_template_labels(workload):
    labels = h.template(workload)["metadata"]["labels"]
    assert h.selector_matches(workload["spec"]["selector"], labels)
    assert labels["app.kubernetes.io/name"] == h.APP


def test_selector_matcher_can_fail():
    assert not h.selector_matches({"matchLabels": {"app": "a"}}, {"app": "b"})
    assert not h.selector_matches({}, {"app": "b"})
    assert not h.selector_matches(
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]}, {"app": "y"})


def test_container_and_ports(workload, rel):
    spec = h.template(workload)["spec"]
    assert [c["name"] for c in spec["containers"]] == [h.CONTAINER]
    ports = {p["name"]: (p["containerPort"], p.get("protocol", "TCP"))
             for p in h.container(workload)["ports"]}
    expected = {"grpc": (h.GRPC_PORT, "TCP"), "http": (h.HTTP_PORT, "TCP")}
    if rel == h.SECURE:  # the plaintext gRPC health port (--health-addr)
        expected["health"] = (h.HEALTH_PORT, "TCP")
    assert ports == expected


def test_resources_exact(workload):
    assert h.container(workload)["resources"] == {
        "requests": {"memory": "128Mi", "cpu": "100m"},
        "limits": {"memory": "2Gi", "cpu": "1000m"},
    }


def test_env(workload):
    env = {e["name"]: e for e in h.container(workload)["env"]}
    assert env["STRESSD_GRPC_ADDR"]["value"] == f"0.0.0.0:{h.GRPC_PORT}"
    assert env["STRESSD_HTTP_ADDR"]["value"] == f"0.0.0.0:{h.HTTP_PORT}"
    assert env["STRESSD_STATE_DIR"] == {"name": "STRESSD_STATE_DIR", "value": h.STATE_DIR}
    # The memory limit through the downward API, in bytes, of this very container.
    assert env["MEMORY_LIMIT_BYTES"] == {"name": "MEMORY_LIMIT_BYTES", "valueFrom": {
        "resourceFieldRef": {"containerName": h.CONTAINER, "resource": "limits.memory",
                             "divisor": "1"}}}
    # Identity for Status.instance: pod, namespace and node through the downward API.
    for name, path in [("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace"),
                       ("NODE_NAME", "spec.nodeName")]:
        assert env[name] == {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}
    assert len(env) == len(h.container(workload)["env"]), "duplicate env names"


def test_readiness_probe(workload):
    probe = h.container(workload)["readinessProbe"]
    assert probe["httpGet"]["path"] == "/health"
    assert h.named_port(h.template(workload)["spec"], probe["httpGet"]["port"]) == h.HTTP_PORT
    assert probe.get("scheme", "HTTP") == "HTTP"
    assert (probe["initialDelaySeconds"], probe["periodSeconds"]) == (5, 10)


def test_liveness_probe_is_native_grpc(workload, rel):
    probe = h.container(workload)["livenessProbe"]
    # service "" is SERVING in stressd; with TLS on, on the plaintext health port
    assert probe["grpc"] == {"port": h.grpc_probe_port(rel)}
    assert set(probe) & {"httpGet", "tcpSocket", "exec"} == set()
    assert (probe["initialDelaySeconds"], probe["periodSeconds"]) == (15, 30)
    # Restarting a pod under load for slowness would spoil the test it is running.
    assert probe.get("timeoutSeconds", 1) >= 3


def test_startup_probe(workload, rel):
    probe = h.container(workload)["startupProbe"]
    assert "grpc" in probe or "httpGet" in probe
    if "grpc" in probe:
        assert probe["grpc"]["port"] == h.grpc_probe_port(rel)
    else:
        assert h.named_port(h.template(workload)["spec"], probe["httpGet"]["port"]) == h.HTTP_PORT
    assert (probe["periodSeconds"], probe["failureThreshold"]) == (1, 30)


def test_termination_grace_period_fits_shutdown(workload):
    # stressd exits within 5 s of SIGTERM; leave a margin, but not minutes.
    assert 5 < h.template(workload)["spec"]["terminationGracePeriodSeconds"] <= 15


def test_restricted_pod_security(workload):
    spec = h.template(workload)["spec"]
    assert h.pss_restricted_violations(spec) == []
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert (psc["runAsUser"], psc["runAsGroup"]) == (65532, 65532)
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = h.container(workload)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    assert "privileged" not in sc


def test_pss_checker_can_fail(base):
    good = h.template(h.one(base, "Deployment", h.APP))["spec"]
    cases = {
        "allowPrivilegeEscalation": lambda s: s["containers"][0]["securityContext"].pop(
            "allowPrivilegeEscalation"),
        "drop ALL": lambda s: s["containers"][0]["securityContext"].pop("capabilities"),
        "runAsNonRoot": lambda s: (s["securityContext"].pop("runAsNonRoot"),
                                   s["containers"][0]["securityContext"].pop("runAsNonRoot")),
        "seccompProfile": lambda s: s["securityContext"].pop("seccompProfile"),
        "privileged": lambda s: s["containers"][0]["securityContext"].update(privileged=True),
        "hostNetwork": lambda s: s.update(hostNetwork=True),
        "hostPath": lambda s: s.update(volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
        "capabilities add": lambda s: s["containers"][0]["securityContext"]["capabilities"].update(
            add=["SYS_ADMIN"]),
    }
    for name, mutate in cases.items():
        spec = copy.deepcopy(good)
        mutate(spec)
        assert h.pss_restricted_violations(spec), f"{name} not caught"


def test_service_account(rendered, workload):
    spec = h.template(workload)["spec"]
    assert spec["serviceAccountName"] == h.APP
    assert spec["automountServiceAccountToken"] is False
    ns = workload["metadata"]["namespace"]
    rel = next(r for r, res in rendered.items() if any(x is workload for x in res))
    sa = h.one(rendered[rel], "ServiceAccount", h.APP)
    assert sa["metadata"]["namespace"] == ns
    assert sa["automountServiceAccountToken"] is False


def test_only_writable_path_is_the_state_dir(workload, rel):
    """The root filesystem stays read-only; the run history lives on one emptyDir, which
    survives a container restart (an OOM kill) but not the pod. The secure overlay adds
    only Secret volumes, mounted read-only (test_secure.py)."""
    spec = h.template(workload)["spec"]
    volumes = [v for v in spec["volumes"] if "secret" not in v or rel != h.SECURE]
    assert volumes == [{"name": h.STATE_VOLUME, "emptyDir": {"sizeLimit": "64Mi"}}]
    # Not tmpfs: files in a memory-backed emptyDir count against the container's memory.
    assert "medium" not in volumes[0]["emptyDir"]
    c = h.container(workload)
    mounts = [m for m in c["volumeMounts"] if m["name"] == h.STATE_VOLUME]
    assert mounts == [{"name": h.STATE_VOLUME, "mountPath": h.STATE_DIR}]
    assert all(m.get("readOnly") is True for m in c["volumeMounts"] if m not in mounts)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["STRESSD_STATE_DIR"] == h.STATE_DIR


def test_prometheus_scrape_annotations(workload):
    annotations = h.template(workload)["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(h.HTTP_PORT),
        "prometheus.io/path": "/metrics",
    }
    # Strings, as the API requires of annotation values (an unquoted true/8080 is refused).
    assert all(isinstance(v, str) for v in annotations.values())
    ports = {p["name"]: p["containerPort"] for p in h.container(workload)["ports"]}
    assert ports["http"] == int(annotations["prometheus.io/port"])
