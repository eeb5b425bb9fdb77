//! The HTTP side port: `/health` for kubelet HTTP probes, `/metrics` for Prometheus and `/`
//! describing the API.

use crate::engine::Engine;
use crate::metrics::Exporter;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// Shared by the HTTP handlers.
#[derive(Clone, Debug)]
pub(crate) struct HttpState {
    /// The engine (for the state in /health).
    pub engine: Arc<Engine>,
    /// True once shutdown began: /health then answers 503 so the pod leaves the endpoints.
    pub shutdown: watch::Receiver<bool>,
    /// Where gRPC listens, for `/`.
    pub grpc_addr: SocketAddr,
    /// Where this port listens, for `/`.
    pub http_addr: SocketAddr,
    /// Renders `/metrics` (unauthenticated, like `/health`: it reveals nothing Status does not).
    pub metrics: Arc<Exporter>,
}

/// The router.
pub(crate) fn router(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/", get(index))
        .with_state(state)
}

async fn health(AxState(st): AxState<HttpState>) -> (StatusCode, Json<serde_json::Value>) {
    let shutting_down = *st.shutdown.borrow();
    let code = if shutting_down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        Json(json!({
            "status": if shutting_down { "shutting_down" } else { "ok" },
            "state": st.engine.state().name(),
        })),
    )
}

/// One scrape. Rendering reads `/proc` and the cgroup files, so it runs on the blocking pool
/// and never stalls the two runtime threads that serve gRPC.
async fn metrics(AxState(st): AxState<HttpState>) -> Response {
    let exporter = Arc::clone(&st.metrics);
    let failure = match tokio::task::spawn_blocking(move || exporter.render()).await {
        Ok(Ok(body)) => {
            return ([(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response();
        }
        Ok(Err(std::fmt::Error)) => "metrics: encoding failed".to_string(),
        Err(e) => format!("metrics: the render task failed: {e}"),
    };
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        failure + "\n",
    )
        .into_response()
}

async fn index(AxState(st): AxState<HttpState>) -> Json<serde_json::Value> {
    Json(json!({
        "name": "stressd",
        "description": "memstress: a memory stress-test service for Kubernetes",
        "version": env!("CARGO_PKG_VERSION"),
        "grpc": {
            "address": st.grpc_addr.to_string(),
            "service": "memstress.v1.StressService",
            "rpcs": {
                "Start": "start a run (replaces POST /start)",
                "Stop": "stop the running run (replaces POST /stop)",
                "Status": "state, run, memory and container (replaces GET /status)",
                "Clear": "free the tree and give the memory back (replaces POST /clear)",
                "WatchLogs": "replay and follow log entries (replaces GET /logs)",
            },
            "health": "grpc.health.v1.Health",
            "reflection": ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"],
        },
        "http": {
            "address": st.http_addr.to_string(),
            "endpoints": {
                "/": "this description",
                "/health": "probe: 200 while serving, 503 while shutting down",
                "/metrics": "Prometheus metrics (OpenMetrics text), computed from the same snapshot as Status",
            },
        },
    }))
}
