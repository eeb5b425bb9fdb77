"""Fixtures: dockerd, the stand-in base images, the image built from the real Dockerfile,
stressctl, and containers run as the Kubernetes manifests run stressd. Everything created
here is removed by the fixtures' finalizers, also when a test fails."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import helpers as h  # noqa: E402
import standins  # noqa: E402

# scripts/container-test.sh passes its own "PID-xxxxxx"; run alone, pytest uses its own PID.
SESSION = os.environ.get("MEMSTRESS_CT_SESSION") or f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
BUILD_TIMEOUT = float(os.environ.get("MEMSTRESS_CT_BUILD_TIMEOUT", "1200"))


def pytest_terminal_summary(terminalreporter):
    if h.REPORT:
        terminalreporter.section("container test: measured")
        for key in sorted(h.REPORT):
            terminalreporter.write_line(f"{key}: {h.REPORT[key]}")


def _sweep() -> None:
    """Remove whatever this session labelled (a test that died half-way leaves nothing)."""
    sel = f"label={h.LABEL}={SESSION}"
    ids = h.docker("ps", "-aq", "--filter", sel, check=False).stdout.split()
    if ids:
        h.docker("rm", "-f", "-v", *ids, check=False, timeout=120)
    vols = h.docker("volume", "ls", "-q", "--filter", sel, check=False).stdout.split()
    if vols:
        h.docker("volume", "rm", "-f", *vols, check=False, timeout=120)


@pytest.fixture(scope="session")
def docker_daemon():
    p = subprocess.run([h.DOCKER, "info", "-f", "{{.ServerVersion}} {{.CgroupVersion}}"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        pytest.fail(f"no Docker daemon answers ({p.stderr.strip()}); "
                    "run the suite with: bash scripts/container-test.sh")
    version, cgroup = (p.stdout.split() + ["?", "?"])[:2]
    h.report("docker_server", f"{version} (cgroup v{cgroup})")
    yield
    _sweep()


@pytest.fixture(scope="session")
def base_images(docker_daemon):
    t = time.monotonic()
    build, runtime = standins.ensure()
    h.report("standins_seconds", round(time.monotonic() - t, 1))
    return build, runtime


@pytest.fixture(scope="session")
def image(base_images):
    """The image built from the repository's Dockerfile on the stand-in base images."""
    build, runtime = base_images
    tag = f"memstress-ct:{SESSION}"
    log = Path(tempfile.gettempdir()) / f"memstress-ct-build-{SESSION}.log"
    # BuildKit (the builder of every current Docker) from the CLI matching dockerd; the
    # build's RUN steps share the host's network so cargo reaches crates.io directly.
    cmd = [h.DOCKER, "build", "--progress", "plain", "--network", "host",
           "--build-arg", f"BUILD_IMAGE={build}", "--build-arg", f"RUNTIME_IMAGE={runtime}",
           "--label", f"{h.LABEL}={SESSION}", "-t", tag, "-f", str(h.REPO / "Dockerfile"),
           str(h.REPO)]
    t = time.monotonic()
    try:
        with log.open("w") as out:
            p = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT,
                               env={**os.environ, "DOCKER_BUILDKIT": "1"})
        rc = p.returncode
    except subprocess.TimeoutExpired:
        rc = f"timeout ({BUILD_TIMEOUT:.0f} s)"
    took = round(time.monotonic() - t, 1)
    h.report("docker_build_seconds", took)
    try:
        if rc != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            pytest.fail(f"docker build failed ({rc}) after {took} s; {log}:\n{tail}")
        print(f"\n[container-test] docker build took {took} s", flush=True)
        log.unlink()  # kept only when the build failed
        yield tag
    finally:
        h.docker("rmi", "-f", tag, check=False)


@pytest.fixture(scope="session")
def stressctl(image, tmp_path_factory):
    """The image's own stressctl, copied out and run on the host (the image has no shell;
    host and image are both Debian 12, glibc)."""
    override = os.environ.get("STRESSCTL")
    if override:
        return Path(override)
    cid = h.docker("create", "--label", f"{h.LABEL}={SESSION}", image).stdout.strip()
    try:
        dest = tmp_path_factory.mktemp("bin") / "stressctl"
        h.docker("cp", f"{cid}:/usr/local/bin/stressctl", str(dest))
    finally:
        h.docker("rm", "-f", cid, check=False)
    return dest


@pytest.fixture(scope="session")
def state_volumes(docker_daemon):
    """Factory: a fresh named volume for /var/lib/memstress. Docker fills an empty named
    volume from the image's directory, owner included, so this also proves the image ships
    the state dir writable for uid 65532; all removed at the end."""
    made: list[str] = []

    def make() -> str:
        name = f"memstress-ct-state-{SESSION}-{len(made)}"
        h.docker("volume", "create", "--label", f"{h.LABEL}={SESSION}", name)
        made.append(name)
        return name

    yield make
    if made:
        h.docker("volume", "rm", "-f", *made, check=False, timeout=120)


class Container:
    """One stressd container: its id, published loopback ports and a stressctl for it."""

    def __init__(self, cid: str, name: str, stressctl_bin: Path):
        self.id, self.name = cid, name
        self.grpc = self._port(h.GRPC_PORT)
        self.http = self._port(h.HTTP_PORT)
        self.ctl = h.Stressctl(stressctl_bin, f"127.0.0.1:{self.grpc}")

    def _port(self, port: int) -> int:
        out = h.docker("port", self.id, f"{port}/tcp").stdout.split()
        hosts = [a for a in out if a.startswith("127.0.0.1:")]
        assert hosts and len(hosts) == len(out), f"port {port} published as {out}, not on 127.0.0.1"
        return int(hosts[0].rsplit(":", 1)[1])

    def refresh_ports(self) -> None:
        # `docker start` may publish on new ephemeral host ports.
        self.grpc = self._port(h.GRPC_PORT)
        self.http = self._port(h.HTTP_PORT)
        self.ctl.addr = f"127.0.0.1:{self.grpc}"

    def state(self) -> dict:
        return h.inspect(self.id, "{{json .State}}")

    def logs(self, since: str | None = None) -> str:
        args = ["logs"] + (["--since", since] if since else []) + [self.id]
        p = h.docker(*args)
        return p.stdout + p.stderr

    def wait_ready(self, timeout: float = 30) -> None:
        def ready():
            st = self.state()
            if not st["Running"]:
                raise AssertionError(f"container not running: {st}\n{self.logs()[-2000:]}")
            return self.ctl.run("health", timeout=10).returncode == 0
        try:
            h.wait_for(ready, timeout, f"stressd in {self.name} to answer health")
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- docker logs {self.name}:\n{self.logs()[-3000:]}")


@pytest.fixture
def run_container(image, stressctl, state_volumes, docker_daemon):
    """Factory: start stressd as the manifests run it; every container removed at the end."""
    started: list[str] = []

    def run(what: str, volume: str | None = None) -> Container:
        volume = volume or state_volumes()
        name = f"memstress-ct-{SESSION}-{what}"
        cmd = [
            "run", "-d", "--name", name, "--label", f"{h.LABEL}={SESSION}",
            # resources.limits.memory (2Gi in the manifests; 512 MiB here) and cpu 1000m
            "--memory", "512m", "--cpus", "1",
            # securityContext: read-only root, uid/gid 65532, no capabilities, no privilege
            # escalation, RuntimeDefault seccomp (Docker's default profile)
            "--read-only", "--user", f"{h.NONROOT}:{h.NONROOT}", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges",
            # its own cgroup namespace, as a pod's container has on a current node
            "--cgroupns", "private",
            # published on loopback only, ephemeral host ports
            "-p", f"127.0.0.1::{h.GRPC_PORT}", "-p", f"127.0.0.1::{h.HTTP_PORT}",
            # the run history store (the image sets STRESSD_STATE_DIR to this path)
            "-v", f"{volume}:{h.STATE_DIR}",
            "-e", f"MEMORY_LIMIT_BYTES={h.MEMORY}",
            image,
        ]
        cid = h.docker(*cmd).stdout.strip()
        started.append(cid)
        c = Container(cid, name, stressctl)
        c.wait_ready()
        return c

    yield run
    for cid in started:
        h.docker("rm", "-f", "-v", cid, check=False)
