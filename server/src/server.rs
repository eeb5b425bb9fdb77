//! Wiring: binds the ports, serves gRPC (service, health, reflection) and HTTP, and runs the
//! shutdown sequence on SIGTERM / Ctrl-C.

use crate::cgroup::CgroupProbe;
use crate::engine::{Engine, EngineConfig};
use crate::grpc::StressApi;
use crate::history::{CurrentCgroup, History, HistoryConfig, HistoryError, Opened};
use crate::http::{HttpState, router};
use crate::logs::{CHANNEL_CAPACITY, HISTORY_CAPACITY, LogHub};
use crate::logs::{LogFormat, process_line};
use crate::metrics::Exporter;
use crate::net::{self, NetLimits};
use memstress_proto::v1::stress_service_server::StressServiceServer;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Hard bound on shutdown: the process exits this long after the signal whatever is open.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_millis(4500);

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// HTTP listen address.
    pub http_addr: SocketAddr,
    /// Filesystem root for /proc and /sys reads.
    pub fs_root: PathBuf,
    /// Explicit memory limit (`--memory-limit` / downward API), used when the cgroup sets
    /// none.
    pub memory_limit_bytes: Option<u64>,
    /// Where run history is kept (`None`: in memory only).
    pub state_dir: Option<PathBuf>,
    /// Most runs kept in the history.
    pub history_limit: u64,
    /// `--max-watchers`: most concurrent WatchLogs streams.
    pub max_watchers: usize,
    /// `--max-connections` / `--idle-timeout`: connection limits, per port.
    pub net: NetLimits,
    /// Who may call the StressService and how fast (`--auth-token-file`, `--read-token-file`,
    /// `--rate-limit`, `--rate-burst`); health, reflection and HTTP are never gated.
    pub gate: Arc<crate::auth::Gate>,
    /// `--allow-host-oom`: allow_oom runs even when stressd has no memory limit (an OOM kill
    /// is then the host's global OOM killer).
    pub allow_host_oom: bool,
    /// `--tls-cert` / `--tls-key` / `--tls-client-ca`: the gRPC port speaks TLS (the HTTP port
    /// stays plaintext).
    pub tls: Option<crate::tls::Tls>,
    /// `--health-addr`: a plaintext port serving grpc.health.v1 alone (for the kubelet's gRPC
    /// probe, which cannot speak TLS).
    pub health_addr: Option<SocketAddr>,
    /// `--log-format`: how stdout lines are written.
    pub log_format: crate::logs::LogFormat,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reflection could not be built from the descriptor set.
    #[error("reflection service: {0}")]
    Reflection(String),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The run history could not be opened (another stressd holds the state dir).
    #[error("{0}")]
    History(#[from] HistoryError),
    /// Other I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A TLS file (`--tls-cert`, `--tls-key`, `--tls-client-ca`) cannot be used.
    #[error("{flag} {path}: {reason}")]
    TlsFile {
        /// The flag that named the file.
        flag: &'static str,
        /// The path given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS configuration could not be built.
    #[error("TLS: {0}")]
    Tls(String),
}

/// Binds `addr`, naming it on failure.
async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// The `--health-addr` server: grpc.health.v1 alone, plaintext, with the main port's health
/// reporter (so NOT_SERVING at shutdown shows here too) and connection limits.
fn serve_health<S>(
    listener: TcpListener,
    health: S,
    limits: NetLimits,
    shutdown: watch::Receiver<bool>,
) -> impl Future<Output = Result<(), tonic::transport::Error>>
where
    S: tonic::codegen::Service<
            tonic::codegen::http::Request<tonic::body::Body>,
            Response = tonic::codegen::http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let mut stop = shutdown.clone();
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(net::KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(net::KEEPALIVE_TIMEOUT))
        .layer(net::StreamCountLayer)
        .add_service(health)
        .serve_with_incoming_shutdown(
            net::grpc_incoming(listener, limits, shutdown, None),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        )
}

fn host_total_bytes() -> u64 {
    use sysinfo::{MemoryRefreshKind, RefreshKind, System};
    System::new_with_specifics(
        RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
    )
    .map_or(0, |sys| sys.total_memory())
}

/// Waits for SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The domain side of start-up: the cgroup probe, the run history (closing runs a dead process
/// left open), the log hub and the engine. Returns the engine and the lines to log once the
/// ports are announced: what happened to a killed run first, then the store's notices.
fn start_engine(config: &ServerConfig) -> Result<(Arc<Engine>, Vec<String>), ServeError> {
    let cgroup = CgroupProbe::discover(&config.fs_root, config.memory_limit_bytes);
    // Before any port is bound: a second stressd on the same state dir must not start at all.
    let Opened {
        history,
        notices,
        recovered,
    } = History::open(
        &HistoryConfig {
            state_dir: config.state_dir.clone(),
            limit: config.history_limit,
        },
        &CurrentCgroup {
            identity: cgroup.identity(),
            oom_kills: cgroup.oom_kills(),
        },
    )?;
    let logs = Arc::new(
        LogHub::new(HISTORY_CAPACITY, CHANNEL_CAPACITY).with_max_watchers(config.max_watchers),
    );
    logs.spawn_stdout_printer_as(config.log_format)?;
    let engine = Arc::new(Engine::new(
        EngineConfig {
            fs_root: config.fs_root.clone(),
            cgroup,
            host_total_bytes: host_total_bytes(),
            allow_host_oom: config.allow_host_oom,
            instance: Arc::new(crate::instance::Instance::detect(&config.fs_root, |k| {
                std::env::var(k).ok()
            })),
        },
        logs,
        Arc::new(history),
    )?);
    if let Some(tls) = &config.tls {
        // Certificate reloads (and failed ones) are logged like every other NOTICE.
        let notice_engine = Arc::clone(&engine);
        tls.set_notice_sink(Arc::new(move |msg| notice_engine.notice(msg)));
    }
    let startup = recovered
        .into_iter()
        .map(|run| run.outcome_message)
        .chain(notices)
        .collect();
    Ok((engine, startup))
}

/// Server reflection, v1 for current grpcurl and v1alpha for older builds; both describe the
/// health service too.
fn reflection_services() -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    ServeError,
> {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(memstress_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let v1 = reflection()
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    Ok((v1, v1alpha))
}

/// After SIGTERM / Ctrl-C: health turns NOT_SERVING, the run is stopped (its watchers get
/// STRESS_TEST_STOPPED), then the shutdown watch fires for streams and connections. The
/// process exits within SHUTDOWN_DEADLINE whatever stays open.
async fn shut_down(
    engine: &Arc<Engine>,
    health: &tonic_health::server::HealthReporter,
    shutdown_tx: &watch::Sender<bool>,
    log_format: LogFormat,
) -> Result<(), ServeError> {
    println!("{}", process_line(log_format, "stressd: shutting down"));
    std::thread::Builder::new()
        .name("shutdown-deadline".into())
        .spawn(|| {
            std::thread::sleep(SHUTDOWN_DEADLINE);
            eprintln!("stressd: shutdown deadline passed; exiting");
            std::process::exit(0);
        })?;
    health
        .set_not_serving::<StressServiceServer<StressApi>>()
        .await;
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    let stop_engine = Arc::clone(engine);
    let _ = tokio::task::spawn_blocking(move || stop_engine.shutdown()).await;
    let _ = shutdown_tx.send(true);
    Ok(())
}

/// The bound ports.
struct Listeners {
    grpc: TcpListener,
    http: TcpListener,
    health: Option<TcpListener>,
}

impl Listeners {
    async fn bind(config: &ServerConfig) -> Result<Self, ServeError> {
        Ok(Self {
            grpc: bind(config.grpc_addr).await?,
            http: bind(config.http_addr).await?,
            health: match config.health_addr {
                Some(addr) => Some(bind(addr).await?),
                None => None,
            },
        })
    }
}

/// The HTTP side port (`/health`, `/metrics`, `/`) behind the same connection limits; it ends
/// once the shutdown watch in `state` fires.
async fn serve_http(
    listener: TcpListener,
    limits: net::NetLimits,
    state: HttpState,
) -> std::io::Result<()> {
    let mut shutdown = state.shutdown.clone();
    axum::serve(
        net::HttpListener::new(listener, limits, state.shutdown.clone()),
        router(state),
    )
    .with_graceful_shutdown(async move {
        let _ = shutdown.wait_for(|s| *s).await;
    })
    .await
}

/// Runs stressd until SIGTERM / Ctrl-C.
pub async fn run(config: ServerConfig) -> Result<(), ServeError> {
    let (engine, startup) = start_engine(&config)?;
    let Listeners {
        grpc: grpc_listener,
        http: http_listener,
        health: health_listener,
    } = Listeners::bind(&config).await?;
    let grpc_addr = grpc_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;
    let health_addr = health_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<StressServiceServer<StressApi>>()
        .await;
    let (reflection_v1, reflection_v1alpha) = reflection_services()?;

    let health_task = health_listener.map(|l| {
        let plain_health = serve_health(l, health_service.clone(), config.net, shutdown_rx.clone());
        tokio::spawn(plain_health)
    });
    let api = StressApi::new(Arc::clone(&engine), shutdown_rx.clone());
    let mut grpc_shutdown = shutdown_rx.clone();
    let grpc = tonic::transport::Server::builder()
        // Half-open connections: a peer that does not answer a PING within the timeout is
        // dropped. Idle, silent and never-started connections are closed by `net`.
        .http2_keepalive_interval(Some(net::KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(net::KEEPALIVE_TIMEOUT))
        .layer(net::StreamCountLayer)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(crate::grpc::guard::Guarded::new(
            StressServiceServer::new(api),
            Arc::clone(&config.gate),
            Arc::clone(&engine),
        ))
        .serve_with_incoming_shutdown(
            // Limits, accept back-off, idle/handshake/shutdown closing (and Nagle off).
            net::grpc_incoming(
                grpc_listener,
                config.net,
                shutdown_rx.clone(),
                config.tls.as_ref().map(crate::tls::Tls::acceptor),
            ),
            async move {
                let _ = grpc_shutdown.wait_for(|s| *s).await;
            },
        );

    let http = serve_http(
        http_listener,
        config.net,
        HttpState {
            engine: Arc::clone(&engine),
            shutdown: shutdown_rx.clone(),
            grpc_addr,
            http_addr,
            metrics: Arc::new(Exporter::new(Arc::clone(&engine), config.fs_root.clone())),
        },
    );

    // Tests and operators read the bound ports from this line (ephemeral ports with :0).
    let tls = if config.tls.is_some() { " tls=on" } else { "" };
    let health = health_addr.map_or_else(String::new, |a| format!(" health={a}"));
    let listening = format!(
        "stressd {} listening grpc={grpc_addr} http={http_addr}{health}{tls}",
        env!("CARGO_PKG_VERSION")
    );
    println!("{}", process_line(config.log_format, &listening));
    // What happened to the run the previous process died in comes first, so the first lines
    // of `kubectl logs` after an OOM kill say it.
    for msg in startup {
        engine.notice(msg);
    }

    let grpc_task = tokio::spawn(grpc);
    let http_task = tokio::spawn(http);

    shutdown_signal().await;
    shut_down(&engine, &health_reporter, &shutdown_tx, config.log_format).await?;
    let _ = grpc_task.await;
    let _ = http_task.await;
    if let Some(task) = health_task {
        let _ = task.await;
    }
    println!("{}", process_line(config.log_format, "stressd: stopped"));
    Ok(())
}
