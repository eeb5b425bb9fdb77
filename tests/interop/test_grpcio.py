"""stressd seen by an independent gRPC implementation (Python grpcio), the way grpcurl sees it:
health checks, and the service discovered and called purely through server reflection."""

import time

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from interop_helpers import method as _method
from interop_helpers import start_stressd


@pytest.fixture(scope="module")
def channel():
    server = start_stressd()
    yield server.channel
    assert server.stop() == 0


@pytest.mark.parametrize("service", ["", "memstress.v1.StressService"])
def test_health_check_is_serving(channel, service):
    stub = health_pb2_grpc.HealthStub(channel)
    resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_and_describes_everything(channel):
    db = ProtoReflectionDescriptorDatabase(channel)
    services = set(db.get_services())
    assert {"memstress.v1.StressService", "grpc.health.v1.Health"} <= services
    pool = DescriptorPool(db)
    svc = pool.FindServiceByName("memstress.v1.StressService")
    assert [m.name for m in svc.methods] == [
        "Start", "Stop", "Status", "Clear", "WatchLogs", "ListRuns", "GetRun"]
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
    # The worker runs at nice 19: on a busy machine it may not have allocated anything yet,
    # and then there would be nothing for Clear to release.
    deadline = time.monotonic() + 10
    while status(req(), timeout=5).payload_bytes == 0:
        assert time.monotonic() < deadline, "the run allocated nothing in 10 s"
        time.sleep(0.01)
    stop_req, stop, _ = _method(channel, "Stop")
    assert stop(stop_req(), timeout=10).stopped
    watch_req, watch, _ = _method(channel, "WatchLogs")
    entries = list(watch(watch_req(from_sequence=0, follow=False), timeout=10))
    assert any(e.run_id == ok.run_id for e in entries)
    clear_req, clear, _ = _method(channel, "Clear")
    assert clear(clear_req(), timeout=10).released_bytes > 0
