"""stressd seen by an independent gRPC implementation (Python grpcio), the way grpcurl sees it:
health checks, and the service discovered and called purely through server reflection."""

import os
import pathlib
import subprocess
import threading

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

REPO = pathlib.Path(__file__).resolve().parents[2]
STRESSD = pathlib.Path(os.environ.get("STRESSD_BIN", REPO / "target" / "debug" / "stressd"))


@pytest.fixture(scope="module")
def channel():
    assert STRESSD.exists(), f"{STRESSD} missing: run cargo build --workspace --bins first"
    proc = subprocess.Popen(
        [str(STRESSD), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    grpc_addr = None
    for line in proc.stdout:
        if " listening grpc=" in line:
            grpc_addr = line.split("grpc=")[1].split()[0]
            break
    assert grpc_addr, "stressd did not print its listening line"
    # keep draining stdout so stressd never blocks on a full pipe
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    ch = grpc.insecure_channel(grpc_addr)
    grpc.channel_ready_future(ch).result(timeout=10)
    yield ch
    ch.close()
    proc.terminate()
    assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize("service", ["", "memstress.v1.StressService"])
def test_health_check_is_serving(channel, service):
    stub = health_pb2_grpc.HealthStub(channel)
    resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


def _method(channel, name):
    db = ProtoReflectionDescriptorDatabase(channel)
    assert "memstress.v1.StressService" in db.get_services()
    pool = DescriptorPool(db)
    svc = pool.FindServiceByName("memstress.v1.StressService")
    m = svc.FindMethodByName(name)
    req = message_factory.GetMessageClass(m.input_type)
    resp = message_factory.GetMessageClass(m.output_type)
    path = f"/memstress.v1.StressService/{name}"
    if m.server_streaming:
        call = channel.unary_stream(path, request_serializer=req.SerializeToString, response_deserializer=resp.FromString)
    else:
        call = channel.unary_unary(path, request_serializer=req.SerializeToString, response_deserializer=resp.FromString)
    return req, call, pool


def test_reflection_lists_and_describes_everything(channel):
    db = ProtoReflectionDescriptorDatabase(channel)
    services = set(db.get_services())
    assert {"memstress.v1.StressService", "grpc.health.v1.Health"} <= services
    pool = DescriptorPool(db)
    svc = pool.FindServiceByName("memstress.v1.StressService")
    assert [m.name for m in svc.methods] == ["Start", "Stop", "Status", "Clear", "WatchLogs"]
    entry = pool.FindMessageTypeByName("memstress.v1.LogEntry")
    assert {"sequence", "timestamp_unix_ms", "operation", "memory_mb", "message", "run_id"} <= set(
        entry.fields_by_name
    )
    ops = pool.FindEnumTypeByName("memstress.v1.Operation")
    for name in ["STRESS_TEST_START", "BUILD_TREE_COMPLETE", "MEMORY_CLEARED", "LOG_ENTRIES_MISSED"]:
        assert name in ops.values_by_name


def test_calls_through_reflection_alone(channel):
    req, status, pool = _method(channel, "Status")
    resp = status(req(), timeout=5)
    state = pool.FindEnumTypeByName("memstress.v1.State")
    assert state.values_by_number[resp.state].name == "STATE_IDLE"
    assert resp.rss_bytes > 0
    assert resp.basis.limit_bytes > 0

    start_req, start, _ = _method(channel, "Start")
    with pytest.raises(grpc.RpcError) as err:
        start(start_req(memory_mb=3), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "memory_mb = 3" in err.value.details()

    ok = start(start_req(memory_mb=32, duration_seconds=0), timeout=5)
    assert ok.run_id.startswith("run-")
    stop_req, stop, _ = _method(channel, "Stop")
    assert stop(stop_req(), timeout=10).stopped
    watch_req, watch, _ = _method(channel, "WatchLogs")
    entries = list(watch(watch_req(from_sequence=0, follow=False), timeout=10))
    assert any(e.run_id == ok.run_id for e in entries)
    clear_req, clear, _ = _method(channel, "Clear")
    assert clear(clear_req(), timeout=10).released_bytes > 0
