"""Shared by the interop tests: a real stressd on ephemeral loopback ports, calls discovered by
server reflection alone (as grpcurl does), and /metrics scrapes parsed by the official
Prometheus client's OpenMetrics parser."""

from __future__ import annotations

import os
import pathlib
import subprocess
import threading
import urllib.request
from dataclasses import dataclass

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from prometheus_client.openmetrics.parser import text_string_to_metric_families

REPO = pathlib.Path(__file__).resolve().parents[2]
STRESSD = pathlib.Path(os.environ.get("STRESSD_BIN", REPO / "target" / "debug" / "stressd"))
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass
class Stressd:
    proc: subprocess.Popen
    grpc_addr: str
    http_addr: str
    channel: grpc.Channel

    def stop(self) -> int:
        self.channel.close()
        self.proc.terminate()
        return self.proc.wait(timeout=10)


def start_stressd(*extra_args: str) -> Stressd:
    """Starts stressd on ephemeral ports and waits until gRPC is ready."""
    assert STRESSD.exists(), f"{STRESSD} missing: run cargo build --workspace --bins first"
    proc = subprocess.Popen(
        [str(STRESSD), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", *extra_args],
        stdout=subprocess.PIPE,
        text=True,
    )
    grpc_addr = http_addr = None
    for line in proc.stdout:
        if " listening grpc=" in line:
            grpc_addr = line.split("grpc=")[1].split()[0]
            http_addr = line.split("http=")[1].split()[0]
            break
    if not grpc_addr:
        proc.kill()
        raise AssertionError("stressd did not print its listening line")
    # keep draining stdout so stressd never blocks on a full pipe
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    ch = grpc.insecure_channel(grpc_addr)
    grpc.channel_ready_future(ch).result(timeout=10)
    return Stressd(proc, grpc_addr, http_addr, ch)


def method(channel: grpc.Channel, name: str):
    """(request class, callable, descriptor pool) for StressService/<name>, via reflection."""
    db = ProtoReflectionDescriptorDatabase(channel)
    assert "memstress.v1.StressService" in db.get_services()
    pool = DescriptorPool(db)
    svc = pool.FindServiceByName("memstress.v1.StressService")
    m = svc.FindMethodByName(name)
    req = message_factory.GetMessageClass(m.input_type)
    resp = message_factory.GetMessageClass(m.output_type)
    path = f"/memstress.v1.StressService/{name}"
    if m.server_streaming:
        call = channel.unary_stream(path, request_serializer=req.SerializeToString,
                                    response_deserializer=resp.FromString)
    else:
        call = channel.unary_unary(path, request_serializer=req.SerializeToString,
                                   response_deserializer=resp.FromString)
    return req, call, pool


def fetch(http_addr: str, path: str) -> tuple[int, dict[str, str], str]:
    with urllib.request.urlopen(f"http://{http_addr}{path}", timeout=10) as resp:
        headers = {k.lower(): v for k, v in resp.headers.items()}
        return resp.status, headers, resp.read().decode("utf-8")


@dataclass
class Scrape:
    text: str
    families: dict  # family name -> prometheus_client Metric

    def sample(self, name: str, **labels) -> float | None:
        """The value of one sample, or None when it is not exported."""
        for fam in self.families.values():
            for s in fam.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return None

    def sample_names(self) -> set[str]:
        return {s.name for fam in self.families.values() for s in fam.samples}

    def declared_sample_names(self) -> set[str]:
        """Every sample name the declared families can carry, whether or not a value is known
        right now (stressd declares a family without samples when its value is unknown)."""
        suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_sum", "_count", "_created"],
                    "info": ["_info"], "gauge": [""], "unknown": [""]}
        out = set()
        for fam in self.families.values():
            for suffix in suffixes.get(fam.type, [""]):
                out.add(fam.name + suffix)
        return out


def scrape(http_addr: str) -> Scrape:
    status, headers, text = fetch(http_addr, "/metrics")
    assert status == 200
    assert headers["content-type"] == OPENMETRICS
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return Scrape(text, families)
