//! Failures of a command and the exit code each maps to.
//!
//! The split that matters to scripts: the server answered with an error (exit 1) versus the
//! server could not be reached or stopped answering (exit 2).

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use crate::human;

/// Exit code: stressd answered with an error status, the followed run failed, or a health check
/// was not SERVING.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: stressd could not be reached, the connection broke, or a call timed out. (clap
/// also uses 2 for usage errors.)
pub const EXIT_UNREACHABLE: u8 = 2;
/// Exit code: the log stream ended while following (server shutting down) before the run ended.
pub const EXIT_STREAM_ENDED: u8 = 3;
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
    /// stressd answered with a non-OK status; its message is printed verbatim.
    #[error("{}: {}", .0.code().description(), .0.message())]
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
            | CliError::Timeout { .. } => EXIT_UNREACHABLE,
            CliError::Rpc(_) | CliError::RunFailed { .. } | CliError::NotServing(_) => EXIT_FAILURE,
            CliError::StreamEnded(_) => EXIT_STREAM_ENDED,
            CliError::Interrupted => EXIT_INTERRUPTED,
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
    /// failure (they carry a source error) become connection errors, the rest are stressd's
    /// answer.
    pub fn status(addr: &str, timeout: Duration, status: tonic::Status) -> Self {
        let Some(source) = status.source() else {
            return CliError::Rpc(status);
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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
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
            "Client specified an invalid argument: memory_percent 120 is out of range 1..=95"
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
            "Some requested entity was not found: no run \"run-99\" in the history"
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
}
