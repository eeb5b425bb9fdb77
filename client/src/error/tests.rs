//! Tests of the failure classification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[derive(Debug)]
struct Wrap(&'static str, Box<dyn StdError + Send + Sync>);
impl std::fmt::Display for Wrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}
impl StdError for Wrap {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.1.as_ref())
    }
}

const T: Duration = Duration::from_secs(10);

#[test]
fn connect_reasons() {
    let refused = Wrap(
        "transport error",
        Box::new(Wrap(
            "tcp connect error",
            Box::new(io::Error::from(io::ErrorKind::ConnectionRefused)),
        )),
    );
    let e = CliError::connect("http://127.0.0.1:50051", T, &refused);
    assert_eq!(
        e.to_string(),
        "cannot reach stressd at http://127.0.0.1:50051 (connection refused)"
    );
    assert_eq!(e.exit_code(), 2);

    let timed_out = Wrap(
        "transport error",
        Box::new(io::Error::new(io::ErrorKind::TimedOut, "elapsed")),
    );
    assert_eq!(reason(&timed_out, T), "timed out after 10s");

    let dns = Wrap(
        "transport error",
        Box::new(Wrap(
            "dns error",
            Box::new(io::Error::other(
                "failed to lookup address information: Name or service not known",
            )),
        )),
    );
    assert_eq!(
        reason(&dns, T),
        "failed to lookup address information: Name or service not known"
    );
    assert_eq!(
        strip_os_error("No route to host (os error 113)"),
        "No route to host"
    );
}

#[test]
fn statuses() {
    let e = CliError::status(
        "http://x:1",
        T,
        tonic::Status::invalid_argument("memory_percent 120 is out of range 1..=95"),
    );
    assert_eq!(
        e.to_string(),
        "memory_percent 120 is out of range 1..=95 [INVALID_ARGUMENT]"
    );
    assert_eq!(e.exit_code(), 1);
    let e = CliError::status(
        "http://x:1",
        T,
        tonic::Status::failed_precondition("a run is in progress"),
    );
    assert_eq!(e.exit_code(), 1);
    // GetRun for an unknown or pruned run: a refusal like the others, message verbatim.
    let e = CliError::status(
        "http://x:1",
        T,
        tonic::Status::not_found("no run \"run-99\" in the history"),
    );
    assert_eq!(e.exit_code(), 1);
    assert!(e.should_print());
    assert_eq!(
        e.to_string(),
        "no run \"run-99\" in the history [NOT_FOUND]"
    );

    // A status tonic built from a local connect failure is a reachability problem.
    let local = tonic::Status::from_error(Box::new(tonic::ConnectError(Box::new(
        io::Error::from(io::ErrorKind::ConnectionRefused),
    ))));
    let e = CliError::status("http://x:1", T, local);
    assert_eq!(
        e.to_string(),
        "cannot reach stressd at http://x:1 (connection refused)"
    );
    assert_eq!(e.exit_code(), 2);
}

/// Every code's name, and the message first with tonic's generic description gone.
#[test]
fn refusal_formatting_for_each_code() {
    use tonic::Code;
    let cases = [
        (Code::Ok, "OK"),
        (Code::Cancelled, "CANCELLED"),
        (Code::Unknown, "UNKNOWN"),
        (Code::InvalidArgument, "INVALID_ARGUMENT"),
        (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
        (Code::NotFound, "NOT_FOUND"),
        (Code::AlreadyExists, "ALREADY_EXISTS"),
        (Code::PermissionDenied, "PERMISSION_DENIED"),
        (Code::ResourceExhausted, "RESOURCE_EXHAUSTED"),
        (Code::FailedPrecondition, "FAILED_PRECONDITION"),
        (Code::Aborted, "ABORTED"),
        (Code::OutOfRange, "OUT_OF_RANGE"),
        (Code::Unimplemented, "UNIMPLEMENTED"),
        (Code::Internal, "INTERNAL"),
        (Code::Unavailable, "UNAVAILABLE"),
        (Code::DataLoss, "DATA_LOSS"),
        (Code::Unauthenticated, "UNAUTHENTICATED"),
    ];
    for (code, name) in cases {
        assert_eq!(code_name(code), name);
        let status = tonic::Status::new(code, "stressd's own words");
        assert_eq!(refusal(&status), format!("stressd's own words [{name}]"));
        let e = CliError::status("http://x:1", T, tonic::Status::new(code, "why"));
        assert_eq!(e.to_string(), format!("why [{name}]"));
        assert!(!e.to_string().contains(code.description()), "{code:?}: {e}");
        assert_eq!(e.exit_code(), 1, "{code:?}");
    }
    // The messages stressd sends, as printed after "error: ".
    assert_eq!(
        refusal(&tonic::Status::invalid_argument(
            "memory_mb = 5 is invalid: below the smallest target (allowed: 10..=24105)"
        )),
        "memory_mb = 5 is invalid: below the smallest target (allowed: 10..=24105) [INVALID_ARGUMENT]"
    );
    assert_eq!(
        refusal(&tonic::Status::failed_precondition(
            "run run-3-abcdef is in progress; stop it first"
        )),
        "run run-3-abcdef is in progress; stop it first [FAILED_PRECONDITION]"
    );
    // No message: the code's description stands in.
    assert_eq!(
        refusal(&tonic::Status::new(Code::Unimplemented, "")),
        "Operation is not implemented or not supported [UNIMPLEMENTED]"
    );
}

/// A status with the given message and response headers, as tonic builds them.
fn answered(
    code: tonic::Code,
    msg: &str,
    headers: &[(&'static str, &'static str)],
) -> tonic::Status {
    let mut map = tonic::codegen::http::HeaderMap::new();
    for (k, v) in headers {
        map.insert(*k, tonic::codegen::http::HeaderValue::from_static(v));
    }
    tonic::Status::with_metadata(code, msg, tonic::metadata::MetadataMap::from_headers(map))
}

#[test]
fn http_answers_are_recognised() {
    use tonic::Code;
    // What tonic 0.14 made of stressd's HTTP port (HTTP/2 404, no body).
    let s = answered(
        Code::Unimplemented,
        "grpc-status header missing, mapped from HTTP status code 404",
        &[("date", "Sat, 28 Nov 2026 13:55:50 GMT")],
    );
    assert_eq!(http_answer(&s), Some(404));
    // The other mappings tonic applies keep the text; the code varies.
    for (code, http) in [
        (Code::Internal, 400),
        (Code::Unauthenticated, 401),
        (Code::PermissionDenied, 403),
        (Code::Unavailable, 503),
        (Code::Unknown, 405),
    ] {
        let msg = format!("grpc-status header missing, mapped from HTTP status code {http}");
        assert_eq!(http_answer(&tonic::Status::new(code, msg)), Some(http));
    }
    // A response body that is not gRPC framed (an HTML 404 page, a text 503).
    let html = answered(
        Code::Internal,
        "protocol error: received message with invalid compression flag: 60 (valid flags are 0 and 1) while receiving response with status: 404 Not Found",
        &[("content-type", "text/html")],
    );
    assert_eq!(http_answer(&html), Some(404));
    let text = tonic::Status::internal(
        "protocol error: received message with invalid compression flag: 117 (valid flags are 0 and 1) while receiving response with status: 503 Service Unavailable",
    );
    assert_eq!(http_answer(&text), Some(503));
    // A 200 without grpc-status counts only when the content-type shows it was not gRPC
    // (a gRPC stream cut short by a proxy looks the same otherwise).
    let trailer = "protocol error: missing grpc-status trailer, stream was terminated without a final status (possible truncation by a proxy or load balancer)";
    assert_eq!(
        http_answer(&answered(
            Code::Unknown,
            trailer,
            &[("content-type", "text/html")]
        )),
        Some(200)
    );
    assert_eq!(http_answer(&tonic::Status::unknown(trailer)), None);
    assert_eq!(
        http_answer(&answered(
            Code::Unknown,
            trailer,
            &[("content-type", "application/grpc")]
        )),
        None
    );

    // A gRPC server's own answers are not HTTP answers, whatever they say.
    assert_eq!(http_answer(&tonic::Status::unimplemented("")), None);
    assert_eq!(
        http_answer(&tonic::Status::not_found(
            "no run \"run-404\" in the history"
        )),
        None
    );
    let relayed = answered(
        Code::Unimplemented,
        "grpc-status header missing, mapped from HTTP status code 404",
        &[("content-type", "application/grpc+proto")],
    );
    assert_eq!(http_answer(&relayed), None);
    // A local transport failure carries a source: a connection problem, not an answer.
    let local = tonic::Status::from_error(Box::new(tonic::ConnectError(Box::new(
        io::Error::other("grpc-status header missing, mapped from HTTP status code 404"),
    ))));
    assert_eq!(http_answer(&local), None);
    // Garbled numbers are not guessed at.
    assert_eq!(
        http_answer(&tonic::Status::unknown(
            "grpc-status header missing, mapped from HTTP status code 99"
        )),
        None
    );
    assert_eq!(http_code("404 Not Found"), Some(404));
    assert_eq!(http_code("4x4"), None);
    assert_eq!(http_code("700"), None);
    assert_eq!(http_code(""), None);
}

#[test]
fn not_grpc_messages_and_exit_2() {
    let e = CliError::status(
        "http://127.0.0.1:8080",
        T,
        tonic::Status::unimplemented(
            "grpc-status header missing, mapped from HTTP status code 404",
        ),
    );
    assert_eq!(
        e.to_string(),
        "127.0.0.1:8080 answered plain HTTP, not gRPC: this looks like stressd's HTTP port; the gRPC port is 50051 (NodePort 30051)"
    );
    assert_eq!(e.exit_code(), 2);
    assert!(e.should_print());
    assert_eq!(
        not_grpc_message("http://10.0.0.7:30080", HttpAnswer::Http(404)),
        "10.0.0.7:30080 answered plain HTTP, not gRPC: this looks like stressd's HTTP port; the gRPC port is 50051 (NodePort 30051)"
    );
    assert_eq!(
        not_grpc_message("http://web.example:9000", HttpAnswer::Http(503)),
        "web.example:9000 answered plain HTTP (503 Service Unavailable), not gRPC: stressd serves gRPC on port 50051 (NodePort 30051), HTTP on 8080 (NodePort 30080)"
    );
    assert_eq!(
        not_grpc_message("http://[::1]:8080", HttpAnswer::Http1),
        "[::1]:8080 answered plain HTTP/1.x, not gRPC: this looks like stressd's HTTP port; the gRPC port is 50051 (NodePort 30051)"
    );
    assert_eq!(
        not_grpc_message("http://x:1", HttpAnswer::Http(599)),
        "x:1 answered plain HTTP (status 599), not gRPC: stressd serves gRPC on port 50051 (NodePort 30051), HTTP on 8080 (NodePort 30080)"
    );
    let e = CliError::NotGrpc {
        addr: "http://x:8080".into(),
        answer: HttpAnswer::Http1,
    };
    assert_eq!(e.exit_code(), 2);

    assert!(looks_like_http1(b"HTTP/1.1 404 Not Found\r\n"));
    assert!(looks_like_http1(b"HTTP/1.0 400 Bad Request\r\n"));
    assert!(!looks_like_http1(b"\x00\x00\x12\x04\x00\x00\x00\x00\x00"));
    assert!(!looks_like_http1(b"HTTP/2"));
    assert!(!looks_like_http1(b""));
}

#[test]
fn exit_codes() {
    let t = CliError::Timeout {
        addr: "http://x:1".into(),
        rpc: "Status",
        timeout: Duration::from_millis(500),
    };
    assert_eq!(
        t.to_string(),
        "timed out after 500 ms waiting for stressd at http://x:1 to answer Status"
    );
    assert_eq!(t.exit_code(), 2);
    assert_eq!(CliError::StreamEnded(String::new()).exit_code(), 3);
    assert_eq!(CliError::Interrupted.exit_code(), 130);
    assert!(!CliError::Interrupted.should_print());
    let pipe = CliError::Output(io::Error::from(io::ErrorKind::BrokenPipe));
    assert_eq!(pipe.exit_code(), 0);
    assert!(!pipe.should_print());
    let failed = CliError::RunFailed {
        run_id: "r".into(),
        message: "allocation failed".into(),
    };
    assert_eq!(failed.exit_code(), 1);
    assert_eq!(failed.to_string(), "run r failed: allocation failed");
}
