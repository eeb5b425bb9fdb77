//! `stressd`: the memstress gRPC server.

use clap::Parser;
use memstress_server::cgroup::parse_limit_env;
use memstress_server::server::{ServeError, ServerConfig, run};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

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
    /// Filesystem root for /proc and /sys reads (for testing against fixtures).
    #[arg(long, env = "STRESSD_FS_ROOT", default_value = "/", hide = true)]
    fs_root: PathBuf,
}

fn main() -> std::process::ExitCode {
    memstress_server::procmem::tune_allocator();
    let args = Args::parse();
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

/// `--grpc-addr` / `--http-addr`: an IP address or a host name, with a port. A name is
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
