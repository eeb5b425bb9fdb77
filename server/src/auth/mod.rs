//! Who may call which StressService RPC: the pure decisions behind `--auth-token-file` and
//! `--read-token-file`. The transport (`grpc::guard`) only extracts the method path, the
//! `authorization` header and the peer, asks here, and maps the refusal with `to_status`.
//!
//! Two levels: the admin token may call everything; the read token only what changes nothing
//! (Status, WatchLogs, ListRuns, GetRun). Health, reflection and the HTTP port are never
//! guarded: probes and Prometheus must work without a secret.

mod gate;
mod token;

pub use gate::{Admission, Gate};
pub use token::{RECHECK, TokenFile, Tokens, ct_eq};

use crate::error::EngineError;
use std::fmt;
use std::net::SocketAddr;

/// The gRPC path prefix of the guarded service.
pub const SERVICE_PREFIX: &str = "/memstress.v1.StressService/";

/// The RPCs the read token may call; every other StressService method needs the admin token
/// (an unknown method too, so a new mutating RPC is never open by omission).
pub const READ_RPCS: [&str; 4] = ["Status", "WatchLogs", "ListRuns", "GetRun"];

/// What an RPC needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads state only: the read or the admin token.
    Read,
    /// Changes state (Start, Stop, Clear): the admin token only; also rate-limited.
    Admin,
}

/// Which credential a call was admitted with; named in the audit text of mutating RPCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// Authentication is off (no `--auth-token-file`).
    None,
    /// The read token.
    Read,
    /// The admin token.
    Admin,
}

impl Credential {
    /// The word used in audit text: none, read or admin.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }
}

/// What the `authorization` header held, matched against the configured tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// No `authorization` header.
    Missing,
    /// A header that is not `Bearer <token>`.
    Malformed,
    /// A bearer token that matches neither configured token.
    Unknown,
    /// A token that matched.
    Valid(Credential),
}

impl Presented {
    /// Why a call with this presentation has no credential (for refusals and NOTICEs).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "no credential",
            Self::Malformed => "an authorization header that is not \"Bearer <token>\"",
            Self::Unknown => "a token that matches no configured token",
            Self::Valid(_) => "a valid credential",
        }
    }
}

/// The RPC name of a StressService method path (`/memstress.v1.StressService/Start` →
/// `Start`); other paths are returned whole so a refusal still names what was called.
pub fn rpc_name(path: &str) -> &str {
    path.strip_prefix(SERVICE_PREFIX).unwrap_or(path)
}

/// What `rpc` needs.
pub fn access_for(rpc: &str) -> Access {
    if READ_RPCS.contains(&rpc) {
        Access::Read
    } else {
        Access::Admin
    }
}

/// The token of an `authorization` header value: `Bearer <token>` (scheme case-insensitive,
/// RFC 7235), `None` for anything else. The token is trimmed like the token files are.
pub fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Admits or refuses a call of `rpc` when authentication is on: the one place that decides.
pub fn decide(rpc: &str, presented: Presented) -> Result<Credential, EngineError> {
    match presented {
        Presented::Valid(c) if c == Credential::Admin || access_for(rpc) == Access::Read => Ok(c),
        Presented::Valid(_) => Err(EngineError::PermissionDenied {
            rpc: rpc.to_string(),
        }),
        other => Err(EngineError::Unauthenticated {
            rpc: rpc.to_string(),
            reason: other.reason(),
        }),
    }
}

/// Who made a call: named in the log entries of Start, Stop and Clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The peer's address (unknown when the transport does not say).
    pub peer: Option<SocketAddr>,
    /// The credential it was admitted with.
    pub credential: Credential,
}

impl Caller {
    /// The suffix appended to an audited log message: ` (by 127.0.0.1:50522, credential admin)`.
    pub fn audit(&self) -> String {
        format!(" ({self})")
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.peer {
            Some(peer) => write!(f, "by {peer}, credential {}", self.credential.name()),
            None => write!(
                f,
                "by an unknown peer, credential {}",
                self.credential.name()
            ),
        }
    }
}

/// The NOTICE logged when a mutating RPC is refused for want of a credential.
pub fn refusal_notice(rpc: &str, peer: Option<SocketAddr>, err: &EngineError) -> String {
    let peer = peer.map_or_else(|| "an unknown peer".to_string(), |p| p.to_string());
    let why = match err {
        EngineError::Unauthenticated { reason, .. } => (*reason).to_string(),
        EngineError::PermissionDenied { .. } => "the read token (needs the admin token)".into(),
        other => other.to_string(),
    };
    format!("refused {rpc} from {peer}: {why}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn each_rpc_needs_its_credential() {
        for rpc in ["Status", "WatchLogs", "ListRuns", "GetRun"] {
            assert_eq!(access_for(rpc), Access::Read, "{rpc}");
            assert_eq!(
                decide(rpc, Presented::Valid(Credential::Read)).unwrap(),
                Credential::Read
            );
            assert_eq!(
                decide(rpc, Presented::Valid(Credential::Admin)).unwrap(),
                Credential::Admin
            );
        }
        for rpc in ["Start", "Stop", "Clear", "SomethingNew"] {
            assert_eq!(access_for(rpc), Access::Admin, "{rpc}");
            let err = decide(rpc, Presented::Valid(Credential::Read)).unwrap_err();
            assert!(matches!(err, EngineError::PermissionDenied { .. }), "{err}");
            let msg = err.to_string();
            assert!(msg.contains(rpc) && msg.contains("admin token"), "{msg}");
            assert_eq!(
                decide(rpc, Presented::Valid(Credential::Admin)).unwrap(),
                Credential::Admin
            );
        }
    }

    #[test]
    fn refusals_say_how_to_pass_a_token() {
        for presented in [Presented::Missing, Presented::Malformed, Presented::Unknown] {
            for rpc in ["Status", "Start"] {
                let err = decide(rpc, presented).unwrap_err();
                assert!(matches!(err, EngineError::Unauthenticated { .. }));
                let msg = err.to_string();
                for part in [
                    rpc,
                    "--token-file",
                    "STRESSCTL_TOKEN",
                    "authorization: Bearer",
                ] {
                    assert!(msg.contains(part), "{part} missing: {msg}");
                }
            }
        }
    }

    #[test]
    fn bearer_headers_are_parsed() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc \n"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"BEARER abc"), Some(&b"abc"[..]));
        for bad in [
            &b"Basic abc"[..],
            b"Bearer",
            b"Bearer ",
            b"Bearer    ",
            b"abc",
            b"",
        ] {
            assert_eq!(bearer(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn rpc_names_and_audit_text() {
        assert_eq!(rpc_name("/memstress.v1.StressService/Start"), "Start");
        assert_eq!(rpc_name("/other/Thing"), "/other/Thing");
        let caller = Caller {
            peer: Some("127.0.0.1:50522".parse().unwrap()),
            credential: Credential::Admin,
        };
        assert_eq!(caller.audit(), " (by 127.0.0.1:50522, credential admin)");
        let anon = Caller {
            peer: None,
            credential: Credential::None,
        };
        assert_eq!(anon.audit(), " (by an unknown peer, credential none)");
        let err = decide("Start", Presented::Missing).unwrap_err();
        assert_eq!(
            refusal_notice("Start", Some("10.1.2.3:4444".parse().unwrap()), &err),
            "refused Start from 10.1.2.3:4444: no credential"
        );
    }
}
