//! End-to-end tests of `stressctl` pointed at HTTP servers instead of stressd's gRPC port (the
//! usual mistake: stressd's HTTP port 8080 / NodePort 30080): it must say so and exit 2.
//!
//! Three kinds of server, all on 127.0.0.1:0: an HTTP/1.1 server that answers everything with
//! 404, an HTTP/1-only server that hangs up on the HTTP/2 preface (as hyper's HTTP/1 server
//! does), and an HTTP/2 server that answers without a gRPC status (as stressd's HTTP port does:
//! its router speaks HTTP/2 too and answers a gRPC path with a bare 404).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::stressctl;

use std::convert::Infallible;
use std::marker::PhantomData;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};

/// The hint for a port that is not stressd's usual HTTP port (tests cannot count on 8080).
const HINT: &str =
    "stressd serves gRPC on port 50051 (NodePort 30051), HTTP on 8080 (NodePort 30080)";

/// Every command that talks to the server, streams included.
const COMMANDS: [&[&str]; 7] = [
    &["status"],
    &["health"],
    &["-o", "json", "stop"],
    &["history", "12"],
    &["logs"],
    &["logs", "--follow"],
    &["start", "--memory-mb", "64", "--follow"],
];

/// Runs every command against `addr` and expects `error: <want>` and exit 2 from each.
async fn expect_not_grpc(addr: &str, want: &str) {
    for args in COMMANDS {
        let r = stressctl(addr, args).await;
        assert_eq!(r.stderr, format!("error: {want}\n"), "stressctl {args:?}");
        assert_eq!(r.code, 2, "stressctl {args:?}: {}", r.stderr);
        assert_eq!(r.stdout, "", "stressctl {args:?}");
    }
}

/// A plain TCP server: reads what the client sends first, then answers with `reply(request)`
/// (nothing: hang up). Returns "127.0.0.1:PORT".
async fn tcp_server(reply: fn(&[u8]) -> &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let answer = reply(&buf[..n]);
                if !answer.is_empty() {
                    let _ = socket.write_all(answer).await;
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("127.0.0.1:{}", addr.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_server_answering_404_is_not_grpc_exit_2() {
    let addr = tcp_server(|_| {
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nNot Found"
    })
    .await;
    expect_not_grpc(
        &addr,
        &format!("{addr} answered plain HTTP/1.x, not gRPC: {HINT}"),
    )
    .await;
}

/// hyper's HTTP/1 server closes the connection without a word on an HTTP/2 preface; a plain
/// HTTP/1.1 request is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_server_hanging_up_on_http2_is_not_grpc_exit_2() {
    let addr = tcp_server(|request| {
        if request.starts_with(b"PRI * HTTP/2.0") {
            b""
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        }
    })
    .await;
    expect_not_grpc(
        &addr,
        &format!("{addr} answered plain HTTP/1.x, not gRPC: {HINT}"),
    )
    .await;
}

/// A server that hangs up on everything is not reported as HTTP: it stays a broken connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_hanging_up_on_everything_stays_a_broken_connection() {
    let addr = tcp_server(|_| b"").await;
    let r = stressctl(&addr, &["status"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.starts_with(&format!(
            "error: connection to stressd at http://{addr} failed"
        )),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("HTTP"), "{}", r.stderr);
}

/// The gRPC service path a [`Plain`] answers.
trait Path {
    const NAME: &'static str;
}
#[derive(Clone)]
struct Stress;
impl Path for Stress {
    const NAME: &'static str = "memstress.v1.StressService";
}
#[derive(Clone)]
struct Health;
impl Path for Health {
    const NAME: &'static str = "grpc.health.v1.Health";
}

/// Answers every call under `P::NAME` with a plain HTTP response: no gRPC status anywhere.
#[derive(Clone)]
struct Plain<P> {
    status: u16,
    content_type: Option<&'static str>,
    body: &'static str,
    path: PhantomData<fn() -> P>,
}

impl<P: Path> tonic::server::NamedService for Plain<P> {
    const NAME: &'static str = P::NAME;
}

impl<P> Service<http::Request<Body>> for Plain<P> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<Body>) -> Self::Future {
        let (status, content_type, body) = (self.status, self.content_type, self.body);
        Box::pin(async move {
            let mut response = http::Response::builder().status(status);
            if let Some(ct) = content_type {
                response = response.header("content-type", ct);
            }
            let body = if body.is_empty() {
                Body::empty()
            } else {
                Body::new(body.to_owned())
            };
            Ok(response.body(body).unwrap())
        })
    }
}

/// An HTTP/2 server answering the stress and health services' paths with `status` (and a body
/// if one is given). Returns "127.0.0.1:PORT".
async fn http2_server(
    status: u16,
    content_type: Option<&'static str>,
    body: &'static str,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stress = Plain::<Stress> {
        status,
        content_type,
        body,
        path: PhantomData,
    };
    let health = Plain::<Health> {
        status,
        content_type,
        body,
        path: PhantomData,
    };
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(stress)
            .add_service(health)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    format!("127.0.0.1:{}", addr.port())
}

/// What stressd's HTTP port does: HTTP/2 404 with no body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_404_without_grpc_status_is_not_grpc_exit_2() {
    let addr = http2_server(404, None, "").await;
    expect_not_grpc(
        &addr,
        &format!("{addr} answered plain HTTP, not gRPC: {HINT}"),
    )
    .await;
}

/// A web page instead of gRPC frames: tonic reports a framing error naming the HTTP status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_html_page_is_not_grpc_exit_2() {
    let addr = http2_server(404, Some("text/html"), "<html>Not Found</html>").await;
    expect_not_grpc(
        &addr,
        &format!("{addr} answered plain HTTP, not gRPC: {HINT}"),
    )
    .await;

    let addr = http2_server(503, Some("text/plain"), "upstream unavailable").await;
    expect_not_grpc(
        &addr,
        &format!("{addr} answered plain HTTP (503 Service Unavailable), not gRPC: {HINT}"),
    )
    .await;
}
