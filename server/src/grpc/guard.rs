//! The tower service in front of `StressServiceServer`: every StressService call passes
//! [`Gate::admit`] before its handler (WatchLogs included, so no handler can forget the check).
//! Health, reflection and the HTTP port are separate services and are not wrapped.
//!
//! Thin: it extracts the method path, the `authorization` header and the peer, publishes the
//! gate's NOTICEs, answers a refusal with `to_status`, and hands the admitted [`Caller`] to the
//! handler in the request extensions (for the audit text of Start, Stop and Clear).

use super::to_status;
use crate::auth::{Caller, Gate};
use crate::engine::Engine;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;
use tonic::transport::server::TcpConnectInfo;

/// A service wrapped by the gate.
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    gate: Arc<Gate>,
    engine: Arc<Engine>,
}

impl<S> Guarded<S> {
    /// Wraps `inner`; NOTICEs go to `engine`'s log.
    pub fn new(inner: S, gate: Arc<Gate>, engine: Arc<Engine>) -> Self {
        Self {
            inner,
            gate,
            engine,
        }
    }
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Guarded<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let peer = req
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr);
        let admission = self.gate.admit(
            req.uri().path(),
            req.headers()
                .get(http::header::AUTHORIZATION)
                .map(http::HeaderValue::as_bytes),
            peer,
            Instant::now(),
        );
        for notice in admission.notices {
            self.engine.notice(notice);
        }
        match admission.outcome {
            Ok(caller) => {
                req.extensions_mut().insert::<Caller>(caller);
                Box::pin(self.inner.call(req))
            }
            Err(e) => {
                let response = to_status(e).into_http::<Body>();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}
