//! The admission decision for one StressService call: rate limit (mutating RPCs), then token.
//! Pure apart from the token files' re-read; the transport calls [`Gate::admit`] before any
//! handler runs and logs the NOTICEs it returns.

use super::{Access, Caller, Credential, Tokens, access_for, decide, refusal_notice, rpc_name};
use crate::error::EngineError;
use crate::ratelimit::{RateConfig, RateLimiter};
use std::net::SocketAddr;
use std::time::Instant;

/// What the guard decides with: built once at startup from the flags.
#[derive(Debug, Default)]
pub struct Gate {
    tokens: Option<Tokens>,
    limiter: Option<RateLimiter>,
}

/// The decision on one call, plus what to log about it.
#[derive(Debug)]
pub struct Admission {
    /// Who is calling, or why the call is refused.
    pub outcome: Result<Caller, EngineError>,
    /// NOTICEs to publish: token files re-read, a refused mutating call.
    pub notices: Vec<String>,
}

impl Gate {
    /// A gate checking `tokens` (`None`: authentication off) and limiting mutating calls per
    /// `rate` (off when either number is 0).
    pub fn new(tokens: Option<Tokens>, rate: RateConfig) -> Self {
        Self {
            tokens,
            limiter: RateLimiter::new(rate),
        }
    }

    /// Whether callers must present a token.
    pub fn authenticates(&self) -> bool {
        self.tokens.is_some()
    }

    /// Decides a call of the method `path` from `peer` carrying the `authorization` header
    /// value `authorization`. The rate limit comes first, so a client guessing tokens with
    /// mutating calls is slowed down and cannot flood the log with refusal NOTICEs.
    pub fn admit(
        &self,
        path: &str,
        authorization: Option<&[u8]>,
        peer: Option<SocketAddr>,
        now: Instant,
    ) -> Admission {
        let rpc = rpc_name(path);
        let mutating = access_for(rpc) == Access::Admin;
        let mut notices = self
            .tokens
            .as_ref()
            .map_or_else(Vec::new, |t| t.refresh(now));
        if mutating
            && let (Some(limiter), Some(peer)) = (&self.limiter, peer)
            && let Err(e) = limiter.check(peer.ip(), now)
        {
            return Admission {
                outcome: Err(e),
                notices,
            };
        }
        let credential = match &self.tokens {
            None => Ok(Credential::None),
            Some(tokens) => decide(rpc, tokens.identify(authorization)),
        };
        let outcome = match credential {
            Ok(credential) => Ok(Caller { peer, credential }),
            Err(e) => {
                if mutating {
                    notices.push(refusal_notice(rpc, peer, &e));
                }
                Err(e)
            }
        };
        Admission { outcome, notices }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    const START: &str = "/memstress.v1.StressService/Start";
    const STATUS: &str = "/memstress.v1.StressService/Status";

    fn gate(dir: &Path, rate: RateConfig) -> Gate {
        std::fs::write(dir.join("admin"), "adm\n").unwrap();
        std::fs::write(dir.join("read"), "rd\n").unwrap();
        let tokens =
            Tokens::load(&dir.join("admin"), Some(&dir.join("read")), Instant::now()).unwrap();
        Gate::new(Some(tokens), rate)
    }

    #[test]
    fn refused_mutations_are_noticed_with_the_peer() {
        let dir = tempfile::tempdir().unwrap();
        let g = gate(
            dir.path(),
            RateConfig {
                per_second: 0,
                burst: 0,
            },
        );
        let peer = Some("10.1.2.3:4444".parse().unwrap());
        let now = Instant::now();
        let a = g.admit(START, None, peer, now);
        assert!(matches!(
            a.outcome,
            Err(EngineError::Unauthenticated { .. })
        ));
        assert_eq!(
            a.notices,
            ["refused Start from 10.1.2.3:4444: no credential"]
        );
        let a = g.admit(START, Some(b"Bearer rd"), peer, now);
        assert!(matches!(
            a.outcome,
            Err(EngineError::PermissionDenied { .. })
        ));
        assert_eq!(a.notices.len(), 1);
        // A refused read is answered but not logged.
        let a = g.admit(STATUS, None, peer, now);
        assert!(a.outcome.is_err() && a.notices.is_empty());
        let a = g.admit(STATUS, Some(b"Bearer rd"), peer, now);
        assert_eq!(a.outcome.unwrap().credential, Credential::Read);
        let a = g.admit(START, Some(b"Bearer adm"), peer, now);
        assert_eq!(
            a.outcome.unwrap(),
            Caller {
                peer,
                credential: Credential::Admin
            }
        );
    }

    #[test]
    fn the_rate_limit_comes_first_and_spares_reads() {
        let dir = tempfile::tempdir().unwrap();
        let g = gate(
            dir.path(),
            RateConfig {
                per_second: 1,
                burst: 1,
            },
        );
        let peer = Some("10.1.2.3:4444".parse().unwrap());
        let now = Instant::now();
        assert!(
            g.admit(START, Some(b"Bearer adm"), peer, now)
                .outcome
                .is_ok()
        );
        let a = g.admit(START, None, peer, now);
        assert!(matches!(a.outcome, Err(EngineError::RateLimited { .. })));
        assert!(a.notices.is_empty());
        for _ in 0..10 {
            assert!(
                g.admit(STATUS, Some(b"Bearer rd"), peer, now)
                    .outcome
                    .is_ok()
            );
        }
    }

    #[test]
    fn without_tokens_everyone_is_admitted_as_none() {
        let g = Gate::new(
            None,
            RateConfig {
                per_second: 50,
                burst: 100,
            },
        );
        let a = g.admit(START, None, None, Instant::now());
        assert_eq!(a.outcome.unwrap().credential, Credential::None);
        assert!(!g.authenticates());
    }
}
