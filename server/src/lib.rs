//! stressd: the memstress gRPC server — a memory stress workload (a binary search tree of
//! nodes carrying payloads, on its own OS thread) behind a thin tonic transport.
//!
//! Domain: [`params`], [`engine`], [`workload`], [`logs`], [`cgroup`], [`procmem`].
//! Transport: [`grpc`], [`http`], [`server`].

pub mod auth;
pub mod cgroup;
pub(crate) mod checkpoint;
pub mod engine;
pub mod error;
mod file_stamp;
pub mod grpc;
pub mod history;
pub(crate) mod http;
pub mod instance;
pub mod logs;
pub(crate) mod metrics;
pub mod net;
pub mod params;
pub mod procmem;
pub mod ratelimit;
pub mod server;
pub mod tls;
pub(crate) mod workload;
