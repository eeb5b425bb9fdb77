"""k8s/overlays/secure: tokens and TLS from Secrets, the plaintext health port for the kubelet's
gRPC probes, a NetworkPolicy, and least privilege kept (SECURITY.md). Rendered, like every
kustomization, by the real `kubectl kustomize` (conftest), and validated strictly by
test_validation.py."""

import base64
import copy
import ipaddress
import posixpath
import re

import pytest

import deploy_helpers as h
import manifest_inventory as inv

TOKENS, TLS = "memstress-tokens", "memstress-tls"
TOKENS_DIR, TLS_DIR = "/etc/memstress/tokens", "/etc/memstress/tls"
# env var -> the file it names: (mounted directory, Secret, key)
FILE_ENV = {
    "STRESSD_AUTH_TOKEN_FILE": (TOKENS_DIR, TOKENS, "admin.token"),
    "STRESSD_READ_TOKEN_FILE": (TOKENS_DIR, TOKENS, "read.token"),
    "STRESSD_TLS_CERT": (TLS_DIR, TLS, "tls.crt"),
    "STRESSD_TLS_KEY": (TLS_DIR, TLS, "tls.key"),
}
NODE_CIDR_PLACEHOLDER = "192.0.2.0/24"  # TEST-NET-1: fails closed until adjusted
POLICY_PORTS = [h.GRPC_PORT, h.HTTP_PORT, h.HEALTH_PORT]
RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
SECURITY = (h.REPO / "SECURITY.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def secure(rendered) -> list[dict]:
    return rendered[h.SECURE]


@pytest.fixture(scope="module")
def deployment(secure) -> dict:
    return h.one(secure, "Deployment", h.APP)


@pytest.fixture(scope="module")
def pod(deployment) -> dict:
    return h.template(deployment)["spec"]


@pytest.fixture(scope="module")
def app(deployment) -> dict:
    return h.container(deployment)


@pytest.fixture(scope="module")
def policy(secure) -> dict:
    return h.one(secure, "NetworkPolicy", h.APP)


def _env(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c["env"]}


def _secret_data(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def test_objects(secure, base):
    """The base's objects, two Secrets and a NetworkPolicy; nothing else."""
    names = sorted((r["kind"], r["metadata"]["name"]) for r in secure)
    assert names == sorted([(r["kind"], r["metadata"]["name"]) for r in base] + [
        ("NetworkPolicy", h.APP), ("Secret", TLS), ("Secret", TOKENS)])


def test_differs_from_the_base_only_as_intended(secure, base):
    """Applied by hand to the base, the changes the overlay means to make give exactly
    kubectl's output: no patch leaks anything else in or out."""
    expected = copy.deepcopy([r for r in base])
    dep = h.one(expected, "Deployment", h.APP)
    spec = h.template(dep)["spec"]
    spec["securityContext"]["fsGroup"] = 65532
    c = h.container(dep)
    c["ports"].insert(0, {"name": "health", "containerPort": h.HEALTH_PORT, "protocol": "TCP"})
    c["env"][:0] = [
        {"name": "STRESSD_AUTH_TOKEN_FILE", "value": f"{TOKENS_DIR}/admin.token"},
        {"name": "STRESSD_READ_TOKEN_FILE", "value": f"{TOKENS_DIR}/read.token"},
        {"name": "STRESSD_TLS_CERT", "value": f"{TLS_DIR}/tls.crt"},
        {"name": "STRESSD_TLS_KEY", "value": f"{TLS_DIR}/tls.key"},
        {"name": "STRESSD_HEALTH_ADDR", "value": f"0.0.0.0:{h.HEALTH_PORT}"},
    ]
    c["startupProbe"]["grpc"]["port"] = h.HEALTH_PORT
    c["livenessProbe"]["grpc"]["port"] = h.HEALTH_PORT
    c["volumeMounts"][:0] = [{"name": "tokens", "mountPath": TOKENS_DIR, "readOnly": True},
                             {"name": "tls", "mountPath": TLS_DIR, "readOnly": True}]
    spec["volumes"][:0] = [
        {"name": "tokens", "secret": {"secretName": TOKENS, "defaultMode": 0o440}},
        {"name": "tls", "secret": {"secretName": TLS, "defaultMode": 0o440}}]
    for name in ("memory-stress-service", "memory-stress-headless"):
        for p in h.one(expected, "Service", name)["spec"]["ports"]:
            if p["name"] == "grpc":
                p["appProtocol"] = "https"
    added = [r for r in secure if r["kind"] in ("Secret", "NetworkPolicy")]
    assert [r for r in secure if r not in added] == expected


def test_secret_volumes_are_mounted_read_only_as_directories(pod, app):
    """Whole Secret directories, read-only and never by subPath: the kubelet updates a
    mounted Secret in place (the ..data symlink swap), but not a subPath mount."""
    secrets = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"tokens": {"secretName": TOKENS, "defaultMode": 0o440},
                       "tls": {"secretName": TLS, "defaultMode": 0o440}}
    # Mode 0440, group fsGroup: readable by uid/gid 65532, by no one else.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"] == 65532
    mounts = {m["name"]: m for m in app["volumeMounts"]}
    assert mounts["tokens"] == {"name": "tokens", "mountPath": TOKENS_DIR, "readOnly": True}
    assert mounts["tls"] == {"name": "tls", "mountPath": TLS_DIR, "readOnly": True}
    assert not any("subPath" in m or "subPathExpr" in m for m in app["volumeMounts"])
    # Not mounted inside the state dir or on top of each other.
    paths = [m["mountPath"] for m in app["volumeMounts"]]
    for a in paths:
        for b in paths:
            assert a == b or not (a + "/").startswith(b + "/"), (a, b)


def test_env_names_the_mounted_secret_files(secure, pod, app):
    """Each file env var points at a key of the Secret mounted at its directory."""
    env = _env(app)
    mounts = {m["mountPath"]: m["name"] for m in app["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for name, (directory, secret, key) in FILE_ENV.items():
        assert env[name] == {"name": name, "value": f"{directory}/{key}"}, name
        path = env[name]["value"]
        volume = volumes[mounts[posixpath.dirname(path)]]
        assert volume["secret"]["secretName"] == secret
        assert posixpath.basename(path) in h.one(secure, "Secret", secret)["data"]
    assert env["STRESSD_HEALTH_ADDR"] == {"name": "STRESSD_HEALTH_ADDR",
                                          "value": f"0.0.0.0:{h.HEALTH_PORT}"}
    # gRPC and HTTP stay where the base put them; no client CA (mTLS is opt-in, SECURITY.md).
    assert env["STRESSD_GRPC_ADDR"]["value"] == f"0.0.0.0:{h.GRPC_PORT}"
    assert env["STRESSD_HTTP_ADDR"]["value"] == f"0.0.0.0:{h.HTTP_PORT}"
    assert "STRESSD_TLS_CLIENT_CA" not in env
    assert not app.get("args") and not app.get("command"), "configured by env, as the base"


def test_secrets_are_placeholders_that_fail_closed(secure):
    """No credential in the repository: every value says REPLACE ME and holds spaces, which
    stressd refuses in a token file (only visible ASCII), and no PEM block, so an overlay
    applied unchanged does not start instead of serving with a published token."""
    tokens = h.one(secure, "Secret", TOKENS)
    tls = h.one(secure, "Secret", TLS)
    assert tokens.get("type", "Opaque") == "Opaque"
    assert tls["type"] == "kubernetes.io/tls"
    assert set(_secret_data(tokens)) == {"admin.token", "read.token"}
    assert set(_secret_data(tls)) == {"tls.crt", "tls.key"}  # what `create secret tls` writes
    for secret in (tokens, tls):
        assert "stringData" not in secret
        for key, value in _secret_data(secret).items():
            assert value.startswith("REPLACE ME") and "SECURITY.md" in value, key
            assert " " in value.strip(), key
            assert "-----BEGIN" not in value, key
    # The premise: stressd accepts only visible ASCII (no space) as a token.
    token_rs = (h.REPO / "server" / "src" / "auth" / "token.rs").read_text(encoding="utf-8")
    assert "is_ascii_graphic()" in token_rs


def test_secret_names_are_fixed_for_rotation_in_place(secure, pod):
    """No hash suffix: a new token updates the same Secret, which the kubelet swaps into the
    running pod (no new pod template, no restart)."""
    k = inv.load_kustomization(h.REPO / h.SECURE)
    generators = {g["name"]: g for g in k["secretGenerator"]}
    assert set(generators) == {TOKENS, TLS}
    for g in generators.values():
        assert g["options"]["disableNameSuffixHash"] is True
        assert "files" not in g and "envs" not in g, "literals only: nothing outside git"
    assert generators[TLS]["type"] == "kubernetes.io/tls"
    names = {r["metadata"]["name"] for r in h.by_kind(secure, "Secret")}
    assert names == {TOKENS, TLS}
    assert {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v} == names


def test_probes(pod, app):
    """Startup and liveness: native gRPC on the plaintext health port (the kubelet's gRPC
    probe cannot speak TLS). Readiness: GET /health on HTTP 8080, as in the base."""
    health = [p for p in app["ports"] if p["containerPort"] == h.HEALTH_PORT]
    assert health == [{"name": "health", "containerPort": h.HEALTH_PORT, "protocol": "TCP"}]
    for kind in ("startupProbe", "livenessProbe"):
        probe = app[kind]
        assert probe["grpc"] == {"port": h.HEALTH_PORT}, kind  # service "" (server health)
        assert set(probe) & {"httpGet", "tcpSocket", "exec"} == set(), kind
    ready = app["readinessProbe"]
    assert set(ready) & {"grpc", "tcpSocket", "exec"} == set()
    assert ready["httpGet"]["path"] == "/health"
    assert ready["httpGet"].get("scheme", "HTTP") == "HTTP"
    assert h.named_port(pod, ready["httpGet"]["port"]) == h.HTTP_PORT
    addr = _env(app)["STRESSD_HEALTH_ADDR"]["value"]
    assert int(addr.rpartition(":")[2]) == app["startupProbe"]["grpc"]["port"]


def test_network_policy_selects_the_pod(policy, deployment, secure):
    assert policy["metadata"]["namespace"] == h.NAMESPACE
    labels = h.template(deployment)["metadata"]["labels"]
    assert h.selector_matches(policy["spec"]["podSelector"], labels)
    # Only the stressd pods: the selector is the workload's own.
    assert policy["spec"]["podSelector"] == deployment["spec"]["selector"]


def test_network_policy_admits_only_the_namespace_and_the_nodes(policy, pod):
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec.get("egress") == [], "stressd opens no connection: no egress"
    rules = spec["ingress"]
    # Exactly two rules, each with a source (a rule without `from` admits everyone).
    assert [r["from"] for r in rules] == [[{"podSelector": {}}],
                                          [{"ipBlock": {"cidr": NODE_CIDR_PLACEHOLDER}}]]
    # podSelector {} without namespaceSelector: pods of the policy's own namespace only.
    assert all("namespaceSelector" not in peer for r in rules for peer in r["from"])
    net = ipaddress.ip_network(rules[1]["from"][0]["ipBlock"]["cidr"])
    assert net.is_private and net.prefixlen >= 16, "a node range, not the world"
    # The TLS gRPC port, HTTP (readiness, /metrics) and plaintext health; nothing else.
    container_ports = {p["containerPort"] for c in pod["containers"] for p in c["ports"]}
    for r in rules:
        assert r["ports"] == [{"port": p, "protocol": "TCP"} for p in POLICY_PORTS]
        assert {p["port"] for p in r["ports"]} <= container_ports


def test_network_policy_is_the_only_one_and_only_in_secure(rendered):
    for rel, res in rendered.items():
        expected = [h.APP] if rel == h.SECURE else []
        assert [p["metadata"]["name"] for p in h.by_kind(res, "NetworkPolicy")] == expected


@pytest.mark.parametrize("rel", h.KUSTOMIZATIONS)
def test_least_privilege_service_account_everywhere(rendered, rel):
    """stressd never talks to the API server: no token mounted, no RBAC, in every overlay."""
    res = rendered[rel]
    assert [r["kind"] for r in res if r["kind"] in RBAC_KINDS] == []
    sa = h.one(res, "ServiceAccount", h.APP)
    assert sa["automountServiceAccountToken"] is False
    assert set(sa) == {"apiVersion", "kind", "metadata", "automountServiceAccountToken"}
    for w in h.workloads(res):
        spec = h.template(w)["spec"]
        assert spec["serviceAccountName"] == h.APP
        assert spec["automountServiceAccountToken"] is False
        assert "projected" not in str([v for v in spec.get("volumes") or []])


def test_restricted_pod_security_still_holds(pod, app):
    assert h.pss_restricted_violations(pod) == []
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = app["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsNonRoot"] is True
    assert not any(p.get("hostPort") for p in app["ports"])


# ------------------------------------------------------ the documented replacement of the Secrets


def _local_overlay_doc() -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", SECURITY, re.DOTALL)
    found = [b for b in blocks if "behavior: replace" in b]
    assert len(found) == 1, "SECURITY.md: one local kustomization with behavior: replace"
    return found[0]


def test_documented_local_overlay_replaces_only_the_secrets(tmp_path, secure):
    """SECURITY.md's kustomization (outside git, on top of the overlay), rendered by the real
    kubectl: the Secrets carry the local files, under the same names; all else is unchanged."""
    text = _local_overlay_doc()
    doc_path = re.search(r"^  - (\S*k8s/overlays/secure)$", text, re.MULTILINE).group(1)
    local = tmp_path / "my-memstress"
    rel_path = posixpath.relpath(str(h.REPO / h.SECURE), str(local))
    files = {"admin.token": "a" * 43, "read.token": "r" * 43,
             "tls.crt": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
             "tls.key": "-----BEGIN PRIVATE KEY-----\ny\n-----END PRIVATE KEY-----\n"}
    h.write_tree(local, {"kustomization.yaml": text.replace(doc_path, rel_path), **files})
    out = h.parse_documents(h.kustomize(local))
    assert _secret_data(h.one(out, "Secret", TOKENS)) == {
        "admin.token": files["admin.token"], "read.token": files["read.token"]}
    tls = h.one(out, "Secret", TLS)
    assert tls["type"] == "kubernetes.io/tls"
    assert _secret_data(tls) == {"tls.crt": files["tls.crt"], "tls.key": files["tls.key"]}
    assert [r for r in out if r["kind"] != "Secret"] == [r for r in secure
                                                         if r["kind"] != "Secret"]


# ------------------------------------------------------------------------------ SECURITY.md


def test_security_doc_names_what_the_manifests_use(secure, app):
    for p in set(re.findall(r"\bk8s/[\w./-]*\w", SECURITY)):
        assert (h.REPO / p).exists(), p
    for overlay in ("k8s/base", "k8s/overlays/microk8s", "k8s/overlays/daemonset", h.SECURE):
        assert overlay in SECURITY, overlay
    for name in [*FILE_ENV, "STRESSD_HEALTH_ADDR", "STRESSD_TLS_CLIENT_CA", TOKENS, TLS,
                 NODE_CIDR_PLACEHOLDER, "--auth-token-file", "--read-token-file",
                 "--allow-host-oom", "create secret tls memstress-tls"]:
        assert name in SECURITY, name
    for port in (h.GRPC_PORT, h.HTTP_PORT, h.HEALTH_PORT, h.GRPC_NODE_PORT, h.HTTP_NODE_PORT):
        assert str(port) in SECURITY, port


def test_security_doc_defaults_match_the_source():
    """The defaults SECURITY.md states are the ones stressd's source sets."""
    src = h.REPO / "server" / "src"
    main = (src / "main.rs").read_text(encoding="utf-8")
    assert re.search(r'env = "STRESSD_RATE_LIMIT",\s*default_value_t = 50,', main)
    assert re.search(r'env = "STRESSD_RATE_BURST",\s*default_value_t = 100,', main)
    assert re.search(r'env = "STRESSD_IDLE_TIMEOUT", default_value = "5m"', main)
    assert "pub const DEFAULT_MAX_WATCHERS: usize = 256;" in (src / "logs.rs").read_text()
    net = (src / "net" / "mod.rs").read_text(encoding="utf-8")
    assert "pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;" in net
    assert "pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);" in net
    for text in ("50 per second", "burst 100", "256", "1024", "5 min", "10 s"):
        assert text in SECURITY, text
