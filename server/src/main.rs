//! `stressd`: the memstress gRPC server.

use clap::Parser;
use memstress_server::server::{ServeError, ServerConfig, run};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Memory stress-test server for Kubernetes: fills memory with a binary search tree of
/// payload-carrying nodes, holds it, and gives it back — driven over gRPC (`stressctl`).
#[derive(Debug, Parser)]
#[command(name = "stressd", version)]
struct Args {
    /// gRPC listen address (service, health, reflection).
    #[arg(long, env = "STRESSD_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    grpc_addr: SocketAddr,
    /// HTTP listen address (/health for probes, / for a description).
    #[arg(long, env = "STRESSD_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// Memory limit in bytes (or a Kubernetes quantity such as 2Gi) from the downward API;
    /// used only when the cgroup memory files cannot be read.
    #[arg(long, env = "MEMORY_LIMIT_BYTES")]
    memory_limit: Option<String>,
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
        env_memory_limit: args.memory_limit,
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
