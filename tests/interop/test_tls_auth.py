"""TLS and bearer tokens through an independent client: grpcio's own TLS stack (BoringSSL)
against stressd's rustls, with certificates made by the openssl command line, the way an
operator would make them (and what `grpcurl -cacert … -H 'authorization: Bearer …'` does)."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from interop_helpers import STRESSD, method


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=memstress test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "tls.key", "-out", "tls.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "tls.crt", cwd=d)
    (d / "admin.token").write_text("interop-admin-token\n")
    (d / "read.token").write_text("interop-read-token\n")
    return d


@pytest.fixture(scope="module")
def secure_stressd(pki):
    proc = subprocess.Popen(
        [str(STRESSD), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
         "--health-addr", "127.0.0.1:0",
         "--tls-cert", str(pki / "tls.crt"), "--tls-key", str(pki / "tls.key"),
         "--auth-token-file", str(pki / "admin.token"),
         "--read-token-file", str(pki / "read.token")],
        stdout=subprocess.PIPE, text=True)
    line = ""
    for line in proc.stdout:
        if " listening grpc=" in line:
            break
    assert " listening grpc=" in line, "stressd did not print its listening line"
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    addrs = dict(w.split("=", 1) for w in line.split() if "=" in w)
    creds = grpc.ssl_channel_credentials(root_certificates=(pki / "ca.pem").read_bytes())
    channel = grpc.secure_channel(addrs["grpc"], creds)
    grpc.channel_ready_future(channel).result(timeout=10)
    yield channel, addrs
    channel.close()
    proc.terminate()
    proc.wait(timeout=10)


def _bearer(pki: Path, name: str):
    return (("authorization", "Bearer " + (pki / name).read_text().strip()),)


def test_tls_with_the_ca_and_tokens_through_grpcio(secure_stressd, pki):
    channel, _ = secure_stressd
    status_req, status, _ = method(channel, "Status")  # reflection works over TLS, no token
    with pytest.raises(grpc.RpcError) as e:
        status(status_req(), timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "Bearer" in e.value.details()
    reply = status(status_req(), metadata=_bearer(pki, "read.token"), timeout=10)
    assert reply.history.limit > 0

    stop_req, stop, _ = method(channel, "Stop")
    with pytest.raises(grpc.RpcError) as e:
        stop(stop_req(), metadata=_bearer(pki, "read.token"), timeout=10)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    out = stop(stop_req(), metadata=_bearer(pki, "admin.token"), timeout=10)
    assert out.stopped is False


def test_a_client_without_the_ca_is_refused_and_plain_health_answers(secure_stressd):
    _, addrs = secure_stressd
    untrusting = grpc.secure_channel(addrs["grpc"], grpc.ssl_channel_credentials())
    with pytest.raises(grpc.FutureTimeoutError):
        grpc.channel_ready_future(untrusting).result(timeout=3)
    untrusting.close()
    with grpc.insecure_channel(addrs["health"]) as plain:
        stub = health_pb2_grpc.HealthStub(plain)
        got = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert got.status == health_pb2.HealthCheckResponse.SERVING
