"""Helpers for the container test: the docker CLI, stressctl, waiting, the report."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]
# The docker CLI to use. scripts/container-test.sh sets it to the CLI of Debian's docker.io
# (the same release as its dockerd, with BuildKit built in).
DOCKER = os.environ.get("DOCKER", "docker")
# Every container and image this test creates carries this label (value: the session id,
# "PID-xxxxxx" of the process that owns it), so a sweep can find leftovers of a run that was
# killed (scripts/container-test.sh removes those whose PID no longer runs).
LABEL = "org.memstress.container-test"

GRPC_PORT, HTTP_PORT = 50051, 8080
STATE_DIR = "/var/lib/memstress"
MEMORY = 512 * 1024 * 1024
NONROOT = 65532

# What the checks measured, printed at the end of the session ("container test: measured").
REPORT: dict[str, Any] = {}


def report(key: str, value: Any) -> None:
    REPORT[key] = value


def docker(*args: str, timeout: float = 120, check: bool = True,
           env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the docker CLI; on failure the error names the command and its stderr."""
    cmd = [DOCKER, *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{' '.join(cmd)}: no answer within {timeout} s") from e
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()}")
    return p


def inspect(obj: str, fmt: str = "{{json .}}") -> Any:
    out = docker("inspect", "-f", fmt, obj).stdout.strip()
    return json.loads(out) if fmt.startswith("{{json") else out


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``pred`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = pred()
        except AssertionError as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last})")
        time.sleep(interval)


def http_get(url: str, timeout: float = 5) -> tuple[int, str]:
    """GET without any proxy from the environment (loopback only)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


class Stressctl:
    """stressctl pointed at one container's published gRPC port."""

    def __init__(self, binary: Path, addr: str):
        self.binary, self.addr = binary, addr

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        cmd = [str(self.binary), "--addr", self.addr, "--timeout", "5s", "--output", "json",
               *args]
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)

    def json(self, *args: str, timeout: float = 30) -> Any:
        p = self.run(*args, timeout=timeout)
        assert p.returncode == 0, f"stressctl {' '.join(args)} exited {p.returncode}: " \
                                  f"{p.stderr.strip()} {p.stdout.strip()}"
        return json.loads(p.stdout.splitlines()[-1])

    def status(self) -> Any:
        return self.json("status")
