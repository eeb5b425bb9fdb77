//! Failures of a command and the exit code each maps to.
//!
//! The split that matters to scripts: the server answered with an error (exit 1) versus the
//! server could not be reached, stopped answering, or is not a gRPC server at all (exit 2).
//!
//! The decisions are pure functions of what tonic reports ([`CliError::status`],
//! [`http_answer`], [`looks_like_http1`], [`refusal`]) so they are unit-tested without a server.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use crate::human;

/// Exit code: stressd answered with an error status, the followed run failed, or a health check
/// was not SERVING.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: stressd could not be reached, the connection broke, a call timed out, or the
/// address answered but not as a gRPC server (e.g. stressd's HTTP port). (clap also uses 2 for
/// usage errors, and so does an unusable --token-file / STRESSCTL_TOKEN.)
pub const EXIT_UNREACHABLE: u8 = 2;
/// Exit code: the log stream ended while following (server shutting down) before the run ended.
pub const EXIT_STREAM_ENDED: u8 = 3;
/// Exit code: a command on several endpoints failed on some of them (each has its row).
pub const EXIT_PARTIAL: u8 = 4;
/// Exit code: interrupted with Ctrl-C while following.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Connecting failed (refused, no route, name not resolved, timed out).
    #[error("cannot reach stressd at {addr} ({reason})")]
    Unreachable {
        /// The normalised address.
        addr: String,
        /// Short cause, e.g. "connection refused" or "timed out after 10s".
        reason: String,
    },
    /// The connection failed below gRPC after it was made (reset, protocol error).
    #[error("connection to stressd at {addr} failed ({reason})")]
    Transport {
        /// The normalised address.
        addr: String,
        /// Short cause.
        reason: String,
    },
    /// A unary call got no answer within `--timeout`.
    #[error("timed out after {} waiting for stressd at {addr} to answer {rpc}", human::duration(*.timeout))]
    Timeout {
        /// The normalised address.
        addr: String,
        /// The RPC that timed out.
        rpc: &'static str,
        /// The `--timeout` in effect.
        timeout: Duration,
    },
    /// The address answered, but as a plain HTTP server, not gRPC: typically stressd's own HTTP
    /// port (8080, NodePort 30080) given instead of its gRPC port.
    #[error("{}", not_grpc_message(addr, *answer))]
    NotGrpc {
        /// The normalised address.
        addr: String,
        /// What answered.
        answer: HttpAnswer,
    },
    /// stressd answered with a non-OK status; its own message is printed, then the code.
    #[error("{}", refusal(.0))]
    Rpc(tonic::Status),
    /// The followed run ended with STRESS_TEST_ERROR.
    #[error("run {run_id} failed: {message}")]
    RunFailed {
        /// The run.
        run_id: String,
        /// The error entry's message.
        message: String,
    },
    /// The log stream ended before the followed run did.
    #[error("{0}")]
    StreamEnded(String),
    /// A health check returned something other than SERVING (already printed).
    #[error("not serving: {0}")]
    NotServing(String),
    /// Ctrl-C while following; the note was already printed.
    #[error("interrupted")]
    Interrupted,
    /// An option's value cannot be used (e.g. a --phase that does not parse); exit 2 as clap's
    /// own usage errors.
    #[error("{0}")]
    Usage(String),
    /// The token (--token-file or STRESSCTL_TOKEN) cannot be used.
    #[error("{0}")]
    Token(String),
    /// A TLS option cannot be used (unreadable file, TLS options without https://).
    #[error("{0}")]
    TlsSetup(String),
    /// A command on several endpoints failed on `failed` of `total` (each failure has its row
    /// already); `code` is the exit code they add up to.
    #[error("{failed} of {total} endpoints failed (see their rows)")]
    Fleet {
        /// Endpoints that failed.
        failed: usize,
        /// Endpoints called.
        total: usize,
        /// 1 (all refused), 2 (none reachable) or 4 (some failed).
        code: u8,
    },
    /// stdout went away (e.g. `| head`); nothing more to say.
    #[error("cannot write output: {0}")]
    Output(#[from] io::Error),
}

impl CliError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Unreachable { .. }
            | CliError::Transport { .. }
            | CliError::Timeout { .. }
            | CliError::NotGrpc { .. }
            | CliError::Token(_)
            | CliError::Usage(_)
            | CliError::TlsSetup(_) => EXIT_UNREACHABLE,
            CliError::Rpc(_) | CliError::RunFailed { .. } | CliError::NotServing(_) => EXIT_FAILURE,
            CliError::StreamEnded(_) => EXIT_STREAM_ENDED,
            CliError::Interrupted => EXIT_INTERRUPTED,
            CliError::Fleet { code, .. } => *code,
            CliError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
            CliError::Output(_) => EXIT_FAILURE,
        }
    }

    /// Whether `main` should print `error: <self>`; false when the failure was already
    /// reported (or is a closed pipe, which needs no report).
    pub fn should_print(&self) -> bool {
        match self {
            CliError::Interrupted | CliError::NotServing(_) => false,
            CliError::Output(e) => e.kind() != io::ErrorKind::BrokenPipe,
            _ => true,
        }
    }

    /// Classifies a failed connect (a tonic transport error).
    pub fn connect(addr: &str, timeout: Duration, err: &(dyn StdError + 'static)) -> Self {
        CliError::Unreachable {
            addr: addr.to_owned(),
            reason: reason(err, timeout),
        }
    }

    /// Classifies a non-OK status from a call: statuses tonic made from a local transport
    /// failure (they carry a source error) become connection errors, statuses tonic inferred
    /// from an HTTP response without gRPC in it become [`CliError::NotGrpc`], the rest are
    /// stressd's answer.
    pub fn status(addr: &str, timeout: Duration, status: tonic::Status) -> Self {
        let Some(source) = status.source() else {
            return match http_answer(&status) {
                Some(code) => CliError::NotGrpc {
                    addr: addr.to_owned(),
                    answer: HttpAnswer::Http(code),
                },
                None => CliError::Rpc(status),
            };
        };
        let reason = reason(source, timeout);
        if has_connect_error(source) {
            CliError::Unreachable {
                addr: addr.to_owned(),
                reason,
            }
        } else {
            CliError::Transport {
                addr: addr.to_owned(),
                reason,
            }
        }
    }
}

/// What answered at the address instead of a gRPC server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpAnswer {
    /// An HTTP/2 response that carried no gRPC status, with its HTTP status code (stressd's
    /// HTTP port answers 404 to a gRPC call).
    Http(u16),
    /// An HTTP/1.x server: the HTTP/2 connection failed and a plain `GET /` was answered.
    Http1,
}

/// The text tonic 0.14 puts in the status it infers from an HTTP response without
/// `grpc-status` (code Unimplemented for 404, Internal for 400, Unavailable for 429/502/503/504,
/// Unknown for most others), followed by the HTTP status code.
const MAPPED_FROM_HTTP: &str = "grpc-status header missing, mapped from HTTP status code ";
/// The text tonic 0.14 ends an Internal status with when the response body is not gRPC framed
/// (an HTML or text body), followed by the HTTP status ("404 Not Found").
const NON_GRPC_BODY: &str = "while receiving response with status: ";
/// tonic 0.14's Unknown status for an HTTP 200 that ended without `grpc-status`; also what a
/// gRPC stream truncated by a proxy looks like, so it only counts with a non-gRPC content-type.
const MISSING_TRAILER: &str = "protocol error: missing grpc-status trailer";

/// The HTTP status code of a response that was not gRPC, if `status` is tonic's report of one;
/// `None` for a status a gRPC server sent (or a local transport failure).
///
/// Decided from the status alone: no source error (tonic made it from a response, not from a
/// broken connection), a response content-type (when tonic kept the headers) that is not
/// `application/grpc`, and one of tonic's messages for a response without a gRPC status.
pub fn http_answer(status: &tonic::Status) -> Option<u16> {
    if status.source().is_some() {
        return None;
    }
    let content_type = status
        .metadata()
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    if content_type.is_some_and(|ct| ct.starts_with("application/grpc")) {
        return None;
    }
    let msg = status.message();
    if let Some(i) = msg.find(MAPPED_FROM_HTTP) {
        return http_code(&msg[i + MAPPED_FROM_HTTP.len()..]);
    }
    if msg.starts_with("protocol error: ")
        && let Some(i) = msg.find(NON_GRPC_BODY)
    {
        return http_code(&msg[i + NON_GRPC_BODY.len()..]);
    }
    if msg.starts_with(MISSING_TRAILER) && content_type.is_some() {
        return Some(200);
    }
    None
}

/// The three-digit HTTP status code `s` starts with.
fn http_code(s: &str) -> Option<u16> {
    let digits = s.get(..3)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|c| (100..=599).contains(c))
}

/// Whether the first bytes answered to a plain `GET / HTTP/1.1` are an HTTP/1.x status line.
pub fn looks_like_http1(reply: &[u8]) -> bool {
    reply.starts_with(b"HTTP/1.")
}

/// stressd's HTTP port and its NodePort in the manifests.
const HTTP_PORTS: [u16; 2] = [8080, 30080];

/// The message for [`CliError::NotGrpc`], naming stressd's ports.
pub fn not_grpc_message(addr: &str, answer: HttpAnswer) -> String {
    let host_port = addr.strip_prefix("http://").unwrap_or(addr);
    let what = match answer {
        // 404 is what a web server says to a gRPC path; other statuses are worth showing.
        HttpAnswer::Http(404) => "plain HTTP".to_owned(),
        HttpAnswer::Http(code) => {
            let reason = tonic::codegen::http::StatusCode::from_u16(code)
                .ok()
                .and_then(|c| c.canonical_reason());
            match reason {
                Some(reason) => format!("plain HTTP ({code} {reason})"),
                None => format!("plain HTTP (status {code})"),
            }
        }
        HttpAnswer::Http1 => "plain HTTP/1.x".to_owned(),
    };
    let port = host_port
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok());
    let hint = if port.is_some_and(|p| HTTP_PORTS.contains(&p)) {
        "this looks like stressd's HTTP port; the gRPC port is 50051 (NodePort 30051)"
    } else {
        "stressd serves gRPC on port 50051 (NodePort 30051), HTTP on 8080 (NodePort 30080)"
    };
    format!("{host_port} answered {what}, not gRPC: {hint}")
}

/// A refusal as printed after `error: `: stressd's own message, then the status code's proto
/// name, e.g. `memory_mb = 5 is invalid: … [INVALID_ARGUMENT]`. A status without a message gets
/// the code's description instead.
pub fn refusal(status: &tonic::Status) -> String {
    let msg = status.message().trim();
    let msg = if msg.is_empty() {
        status.code().description()
    } else {
        msg
    };
    format!("{msg} [{}]", code_name(status.code()))
}

/// The gRPC code's canonical name, as grpc-status documentation and other clients print it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Whether a connect step (as opposed to an established connection) failed.
fn has_connect_error(err: &(dyn StdError + 'static)) -> bool {
    chain(err).any(|e| e.is::<tonic::ConnectError>())
}

/// `err` and its sources, outermost first.
fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |e: &&'a (dyn StdError + 'static)| (*e).source())
}

/// One short cause for a transport error: well-known I/O errors in words, otherwise the
/// innermost message (which names the real problem, e.g. a DNS failure).
pub fn reason(err: &(dyn StdError + 'static), timeout: Duration) -> String {
    if let Some(cause) = crate::tls::handshake_failure(err) {
        return cause;
    }
    for e in chain(err) {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return "connection refused".to_owned(),
                io::ErrorKind::TimedOut => {
                    return format!("timed out after {}", human::duration(timeout));
                }
                io::ErrorKind::ConnectionReset => return "connection reset".to_owned(),
                io::ErrorKind::HostUnreachable => return "host unreachable".to_owned(),
                io::ErrorKind::NetworkUnreachable => return "network unreachable".to_owned(),
                _ => {}
            }
        }
        if e.is::<tonic::TimeoutExpired>() {
            return format!("timed out after {}", human::duration(timeout));
        }
    }
    chain(err)
        .last()
        .map_or_else(|| err.to_string(), |e| strip_os_error(&e.to_string()))
}

/// Drops the " (os error N)" suffix std adds to OS errors; the number helps no one here.
fn strip_os_error(s: &str) -> String {
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_owned(),
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests;
