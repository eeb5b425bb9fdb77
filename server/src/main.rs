//! `stressd`: the memstress gRPC server.

use clap::Parser;
use memstress_server::auth::{Gate, Tokens};
use memstress_server::cgroup::parse_limit_env;
use memstress_server::error::EngineError;
use memstress_server::ratelimit::RateConfig;
use memstress_server::server::{ServeError, ServerConfig, run};
use memstress_server::tls::{Tls, TlsPaths};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Memory stress-test server for Kubernetes: fills memory with a binary search tree of
/// payload-carrying nodes, holds it, and gives it back — driven over gRPC (`stressctl`).
#[derive(Debug, Parser)]
#[command(name = "stressd", version)]
struct Args {
    /// gRPC listen address, HOST:PORT (service, health, reflection); HOST may be a name
    /// (`localhost:50051`), port 0 picks a free one.
    #[arg(long, env = "STRESSD_GRPC_ADDR", default_value = "0.0.0.0:50051",
          value_parser = parse_listen_addr, value_name = "HOST:PORT")]
    grpc_addr: SocketAddr,
    /// HTTP listen address, HOST:PORT (/health for probes, /metrics, / for a description).
    #[arg(long, env = "STRESSD_HTTP_ADDR", default_value = "0.0.0.0:8080",
          value_parser = parse_listen_addr, value_name = "HOST:PORT")]
    http_addr: SocketAddr,
    /// Memory limit: bytes or a Kubernetes quantity (536870912, 512Mi, 2Gi, 1.5G). The basis
    /// of percent targets when the cgroup sets no limit (a cgroup limit always wins). The
    /// manifests pass the container's limit here through the downward API.
    #[arg(long, env = "MEMORY_LIMIT_BYTES", value_parser = parse_memory_limit,
          value_name = "BYTES")]
    memory_limit: Option<u64>,
    /// Directory for the run history database (created if missing). Without it, history is
    /// kept in memory only and does not survive a restart — nor the OOM kill it is meant to
    /// record. Two stressd cannot share one directory.
    #[arg(long, env = "STRESSD_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Most runs kept in the history; the oldest are pruned.
    #[arg(long, env = "STRESSD_HISTORY_LIMIT", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    history_limit: u64,
    /// Let clients use `allow_oom` although stressd has no memory limit (no cgroup limit, no
    /// --memory-limit). Such a run ends in the kernel's *global* OOM killer, which may kill
    /// any process on the host, so this is off by default. Without a limit, a target above 90 %
    /// of the host's available memory needs allow_oom, hence this flag too.
    #[arg(long, env = "STRESSD_ALLOW_HOST_OOM",
          value_parser = clap::builder::BoolishValueParser::new())]
    allow_host_oom: bool,
    /// File holding the admin token. When set, every StressService call needs the metadata
    /// `authorization: Bearer <token>` (health, reflection and the HTTP port stay open). The
    /// file is trimmed, re-read when it changes (a rotated Secret needs no restart), and must
    /// not be empty.
    #[arg(long, env = "STRESSD_AUTH_TOKEN_FILE", value_name = "PATH")]
    auth_token_file: Option<PathBuf>,
    /// File holding a read-only token: Status, WatchLogs, ListRuns and GetRun only (Start,
    /// Stop and Clear answer PERMISSION_DENIED to it). Needs --auth-token-file.
    #[arg(
        long,
        env = "STRESSD_READ_TOKEN_FILE",
        value_name = "PATH",
        requires = "auth_token_file"
    )]
    read_token_file: Option<PathBuf>,
    /// Mutating calls (Start, Stop, Clear) per second per client IP; 0 turns the limit off.
    #[arg(
        long,
        env = "STRESSD_RATE_LIMIT",
        default_value_t = 50,
        value_name = "PER_SECOND"
    )]
    rate_limit: u32,
    /// Mutating calls a client IP may make at once before --rate-limit applies; 0 turns the
    /// limit off.
    #[arg(
        long,
        env = "STRESSD_RATE_BURST",
        default_value_t = 100,
        value_name = "CALLS"
    )]
    rate_burst: u32,
    /// Most WatchLogs streams served at once; beyond it WatchLogs answers RESOURCE_EXHAUSTED.
    #[arg(long, env = "STRESSD_MAX_WATCHERS", default_value_t = memstress_server::logs::DEFAULT_MAX_WATCHERS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    max_watchers: usize,
    /// Most open connections per port; beyond it new connections are accepted and closed at
    /// once until some close.
    #[arg(long, env = "STRESSD_MAX_CONNECTIONS",
          default_value_t = memstress_server::net::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    max_connections: usize,
    /// A connection with no open request (a following log stream counts) for this long is
    /// closed: seconds, or with a unit (300, 90s, 5m, 500ms).
    #[arg(long, env = "STRESSD_IDLE_TIMEOUT", default_value = "5m",
          value_parser = parse_idle_timeout, value_name = "DURATION")]
    idle_timeout: std::time::Duration,
    /// PEM certificate chain for the gRPC port; with --tls-key the port speaks TLS only (ALPN
    /// h2; the HTTP port stays plaintext). Re-read when it changes (checked at most once a
    /// second, at a handshake); a replacement that does not load keeps the last good pair.
    #[arg(
        long,
        env = "STRESSD_TLS_CERT",
        value_name = "PATH",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "STRESSD_TLS_KEY",
        value_name = "PATH",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// PEM CA certificate(s): clients must present a certificate issued by one of them (mutual
    /// TLS). Needs --tls-cert.
    #[arg(
        long,
        env = "STRESSD_TLS_CLIENT_CA",
        value_name = "PATH",
        requires = "tls_cert"
    )]
    tls_client_ca: Option<PathBuf>,
    /// Plaintext port serving grpc.health.v1 alone, HOST:PORT: for the kubelet's gRPC probe,
    /// which cannot speak TLS. Optional without TLS too.
    #[arg(long, env = "STRESSD_HEALTH_ADDR", value_parser = parse_listen_addr,
          value_name = "HOST:PORT")]
    health_addr: Option<SocketAddr>,
    /// Stdout format: "text" (default) or "json" (one JSON object per line, for `kubectl logs`
    /// pipelines such as Loki or Elasticsearch).
    #[arg(
        long,
        env = "STRESSD_LOG_FORMAT",
        default_value = "text",
        value_name = "FORMAT"
    )]
    log_format: memstress_server::logs::LogFormat,
    /// Filesystem root for /proc and /sys reads (for testing against fixtures).
    #[arg(long, env = "STRESSD_FS_ROOT", default_value = "/", hide = true)]
    fs_root: PathBuf,
}

fn main() -> std::process::ExitCode {
    memstress_server::procmem::tune_allocator();
    let args = Args::parse();
    // Before anything starts: an unusable token file is a configuration error (exit 2), never
    // a server that silently runs without the protection asked for.
    let gate = match gate(&args) {
        Ok(gate) => Arc::new(gate),
        Err(e) => {
            eprintln!("stressd: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let tls = match tls(&args) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("stressd: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // Two workers are plenty for a control plane; the workload has its own thread.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .thread_stack_size(256 << 10)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stressd: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(ServerConfig {
        grpc_addr: args.grpc_addr,
        http_addr: args.http_addr,
        fs_root: args.fs_root,
        memory_limit_bytes: args.memory_limit,
        state_dir: args.state_dir,
        history_limit: args.history_limit,
        max_watchers: args.max_watchers,
        net: memstress_server::net::NetLimits {
            max_connections: args.max_connections,
            idle_timeout: args.idle_timeout,
            ..Default::default()
        },
        gate,
        allow_host_oom: args.allow_host_oom,
        tls,
        health_addr: args.health_addr,
        log_format: args.log_format,
    }));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // A configuration refusal (like a usage error) rather than a failure while serving.
        Err(e @ ServeError::History(_)) => {
            eprintln!("stressd: {e}");
            std::process::ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("stressd: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The gate of `--auth-token-file`, `--read-token-file`, `--rate-limit` and `--rate-burst`.
fn gate(args: &Args) -> Result<Gate, EngineError> {
    let tokens = args
        .auth_token_file
        .as_deref()
        .map(|admin| Tokens::load(admin, args.read_token_file.as_deref(), Instant::now()))
        .transpose()?;
    Ok(Gate::new(
        tokens,
        RateConfig {
            per_second: args.rate_limit,
            burst: args.rate_burst,
        },
    ))
}

/// The TLS setup of `--tls-cert`, `--tls-key` and `--tls-client-ca`, checked before anything
/// starts.
fn tls(args: &Args) -> Result<Option<Tls>, ServeError> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    Tls::load(&TlsPaths {
        cert: cert.clone(),
        key: key.clone(),
        client_ca: args.tls_client_ca.clone(),
    })
    .map(Some)
}

/// `--grpc-addr` / `--http-addr` / `--health-addr`: an IP address or a host name, with a port. A name is
/// resolved once here and the first address is bound (`localhost` → 127.0.0.1 or ::1).
fn parse_listen_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if s.rsplit_once(':')
        .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(format!(
            "{s:?} is not HOST:PORT (e.g. 0.0.0.0:50051, localhost:50051, [::1]:8080)"
        ));
    }
    s.to_socket_addrs()
        .map_err(|e| format!("cannot resolve {s:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// `--idle-timeout`: 100 ms to 24 h.
fn parse_idle_timeout(s: &str) -> Result<std::time::Duration, String> {
    let range = std::time::Duration::from_millis(100)..=std::time::Duration::from_secs(86_400);
    memstress_server::net::parse_duration(s)
        .filter(|d| range.contains(d))
        .ok_or_else(|| {
            format!("{s:?} is not an idle timeout: give 100ms to 24h (300, 90s, 5m, 500ms)")
        })
}

/// `--memory-limit` / `MEMORY_LIMIT_BYTES`: refused at startup rather than ignored, since a
/// silently dropped limit would make every percent target a percent of the host.
fn parse_memory_limit(s: &str) -> Result<u64, String> {
    parse_limit_env(s).ok_or_else(|| {
        format!(
            "{s:?} is not a memory limit: give a positive byte count or a Kubernetes quantity \
             (536870912, 512Mi, 2Gi, 1.5G)"
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_take_ips_and_names() {
        assert_eq!(
            parse_listen_addr("0.0.0.0:50051"),
            Ok(SocketAddr::from(([0, 0, 0, 0], 50051)))
        );
        let local = parse_listen_addr("localhost:0").unwrap_or_else(|e| panic!("{e}"));
        assert!(local.ip().is_loopback(), "{local}");
        for bad in ["localhost", ":80", "localhost:http", "host:99999", ""] {
            let err = parse_listen_addr(bad).unwrap_err();
            assert!(err.contains("HOST:PORT"), "{bad}: {err}");
        }
        let err = parse_listen_addr("no-such-host.invalid:80").unwrap_err();
        assert!(err.contains("cannot resolve"), "{err}");
    }

    #[test]
    fn memory_limits_are_refused_when_garbage() {
        assert_eq!(parse_memory_limit("2Gi"), Ok(2 << 30));
        assert_eq!(parse_memory_limit("536870912"), Ok(512 << 20));
        for bad in ["2Gx", "abc", "", "0", "-1Gi"] {
            let err = parse_memory_limit(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
            assert!(err.contains("512Mi"), "{err}");
        }
    }
}
