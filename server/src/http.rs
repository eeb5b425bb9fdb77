//! The HTTP side port: `/health` for kubelet HTTP probes and `/` describing the API.

use crate::engine::Engine;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// Shared by the HTTP handlers.
#[derive(Clone, Debug)]
pub struct HttpState {
    /// The engine (for the state in /health).
    pub engine: Arc<Engine>,
    /// True once shutdown began: /health then answers 503 so the pod leaves the endpoints.
    pub shutdown: watch::Receiver<bool>,
    /// Where gRPC listens, for `/`.
    pub grpc_addr: SocketAddr,
    /// Where this port listens, for `/`.
    pub http_addr: SocketAddr,
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(health))
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
            "endpoints": {"/": "this description", "/health": "probe: 200 while serving, 503 while shutting down"},
        },
    }))
}
