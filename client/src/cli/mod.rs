//! The command line: clap definitions plus the parsers for `--addr` and `--timeout`.

use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::paging::{DEFAULT_LIMIT, Want};

/// Address used when neither `--addr` nor `STRESSCTL_ADDR` is given.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:50051";

/// Port added to a bare host name given without one.
pub const DEFAULT_PORT: u16 = 50051;

/// Service names checked by `health` when no `--service` is given: the server as a whole and
/// the stress service.
pub const DEFAULT_HEALTH_SERVICES: [&str; 2] = ["", "memstress.v1.StressService"];

/// Command-line client of stressd, the memstress memory stress-test service.
///
/// Exit codes:
///   0    success (also when a reader such as `| head` closes stdout early)
///   1    stressd refused the request (its message is printed with the gRPC code, e.g.
///        "[INVALID_ARGUMENT]", or "[UNAUTHENTICATED]" without a valid token), the followed run failed, or health is not SERVING; also
///        output that cannot be written
///   2    stressd is not reachable: the connection was refused or failed, the connection
///        broke, a call timed out, or the address is not a gRPC server (e.g. stressd's HTTP
///        port); also usage errors (an unreadable or empty --token-file too)
///   3    a followed log stream ended or broke before the run did (`logs --follow`: at
///        all), usually because the server is shutting down
///   4    several endpoints (repeated --addr or dns:///): some failed, the rest succeeded
///        (every endpoint has its row or document; with none reachable the exit is 2, with
///        every one refusing 1)
///   130  interrupted with Ctrl-C while following
///
/// With several endpoints, start, stop, clear, status, health and history run on all of
/// them in parallel (32 at a time, --timeout each) and print one row per endpoint plus
/// totals (JSON: one document per endpoint with "endpoint", and "error" for a failure);
/// logs --follow merges every stream, each line prefixed with the endpoint's pod name (or
/// address), and reports a restarted pod with its previous run's outcome.
///
/// stressd serves gRPC on port 50051 (NodePort 30051); its HTTP port 8080 (NodePort 30080)
/// is for probes and metrics, not for stressctl.
///
/// With `--output json` every result is one JSON document on one line (log streams: one
/// document per entry). Enums are their proto names (e.g. "STATE_SEARCHING", "SCOPE_PROCESS",
/// "BASIS_SOURCE_CGROUP_V2", "SEARCH_TREE_PROGRESS", "OUTCOME_OOM_KILLED", "SERVING"),
/// numbers are raw (bytes as integers, times as Unix milliseconds), and optional fields the
/// server left unset are null.
#[derive(Debug, Parser)]
#[command(name = "stressctl", version, verbatim_doc_comment)]
pub struct Cli {
    /// Options accepted by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before or after any subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// stressd gRPC address: http://HOST:PORT or bare HOST[:PORT] (port 50051 by default);
    /// https://HOST:PORT speaks TLS. Repeat it to talk to many stressd at once;
    /// dns:///NAME:PORT stands for every A/AAAA record of NAME (plaintext only), e.g. the
    /// headless Service: dns:///memory-stress-headless.memstress.svc.cluster.local:50051.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "STRESSCTL_ADDR",
        default_value = DEFAULT_ADDR,
        value_parser = parse_target,
        action = ArgAction::Append,
        value_name = "ADDR"
    )]
    pub addr: Vec<String>,

    /// Time limit for connecting and for each unary call: "500ms", "10s", "2m" or plain seconds.
    /// Does not limit how long a log stream is followed.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        default_value = "10s",
        value_parser = parse_timeout,
        value_name = "DURATION"
    )]
    pub timeout: Duration,

    /// TLS options (`--ca-file`, `--client-cert`, `--client-key`), used with https://.
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,

    /// Output format: "text" for people, "json" for one JSON document per result (per log entry
    /// for streams), one per line.
    #[arg(
        long,
        short = 'o',
        global = true,
        help_heading = "Global options",
        value_enum,
        default_value_t = OutputFormat::Text,
        value_name = "FORMAT"
    )]
    pub output: OutputFormat,

    /// File holding the token of a stressd started with --auth-token-file: the admin token, or
    /// the read token (status, logs, history only). Sent as "authorization: Bearer <token>".
    /// Without it the token is taken from STRESSCTL_TOKEN (the token itself). There is no
    /// --token option: a token on the command line is visible to everyone in `ps`.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "STRESSCTL_TOKEN_FILE",
        value_name = "PATH"
    )]
    pub token_file: Option<std::path::PathBuf>,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned, humanised text.
    Text,
    /// One JSON document per result, one per line.
    Json,
}

/// The subcommands, one per RPC (plus `health`).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a run: grow a tree to the target, hold it for the duration, keep it until cleared.
    Start(StartArgs),
    /// Stop the running run (its tree stays in memory until `clear` or the next `start`).
    Stop,
    /// Show the state, the current or last run, and the memory of stressd and its container.
    ///
    /// Ends with the previous run (the last finished one from the run history, with its outcome,
    /// outcome message and peak RSS / working set; after a restart, the run the previous process
    /// died in, marked OOM-killed "(confirmed)" or "(likely)", or killed) and where run history
    /// is kept (durable with its database file, or memory only with the reason) with how many
    /// runs are kept of the limit. With --output json these are "previous_run" (a RUN document
    /// as printed by `history RUN_ID`, or null) and "history" ({"mode": "HISTORY_MODE_DURABLE" or
    /// "HISTORY_MODE_MEMORY", "path", "reason", "runs_kept", "limit"}).
    Status,
    /// Stop a running run, free the tree and give its memory back to the operating system.
    Clear,
    /// Print the log entries stressd still keeps, optionally following new ones.
    Logs(LogsArgs),
    /// Check stressd's gRPC health service; exits 0 only if every checked service is SERVING.
    Health(HealthArgs),
    /// List recorded runs, newest first, or show one run in full.
    ///
    /// Without RUN_ID: a table of the newest runs (--limit, default 20; --all for every run
    /// kept) with the columns ID, STARTED (UTC), TARGET, PEAK RSS, PEAK WS (the container's
    /// working set; "-" when unknown), TO TARGET (how long the build took to reach the target;
    /// "-" if it never did) and OUTCOME: running, completed, stopped, failed, killed or
    /// OOM-killed, the last marked "(confirmed)" when the cgroup's oom_kill counter rose and
    /// "(likely)" when the verdict rests on memory being at or growing past the limit. Sizes
    /// are MiB. A closing note says when older runs are kept than were listed.
    ///
    /// With RUN_ID (an id such as "run-12-3fa2b1", or its number "12"): every field of that run,
    /// labelled, sizes in MiB: outcome, outcome message, evidence, whether it was recovered (the
    /// process running it died), times, target, basis, peaks, fill rate, OOM kill counts,
    /// parameters and the last checkpoint taken before it ended. A run stressd does not know
    /// (or has pruned) is refused with NOT_FOUND: exit 1.
    ///
    /// With --output json the list is one document {"runs": [RUN, ...], "next_cursor": "..."},
    /// newest first; next_cursor is "" when no older runs are kept, otherwise pass it to
    /// --cursor to continue. RUN_ID prints one RUN document. A RUN holds every RunRecord field
    /// under its proto name: outcome and evidence as proto enum names ("OUTCOME_OOM_KILLED",
    /// "EVIDENCE_OOM_COUNTER"), sizes in bytes, times as Unix milliseconds, the parameters and
    /// last_checkpoint as nested documents, and unknown optional values null.
    History(HistoryArgs),
    /// A full-screen live view of every endpoint: state, memory, charts and the newest log
    /// lines. Quit with q or Ctrl-C.
    Top(TopArgs),
}

/// Options of `top`.
#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// Time between refreshes, 100ms to 1s.
    #[arg(long, default_value = "1s", value_parser = parse_refresh, value_name = "DURATION")]
    pub refresh: Duration,

    /// How much history the charts show: "5m", "90s", "1h" (10s to 24h).
    #[arg(long, default_value = "5m", value_parser = parse_window, value_name = "DURATION")]
    pub window: Duration,
}

/// Options of `logs`.
#[derive(Debug, Clone, Default, Args)]
pub struct LogsArgs {
    /// Keep streaming new entries until Ctrl-C or the server shuts down.
    #[arg(long, short = 'f')]
    pub follow: bool,

    /// First sequence number wanted; 0 is everything stressd still keeps.
    #[arg(long, value_name = "SEQUENCE", default_value_t = 0)]
    pub from: u64,
}

/// Options of `history`.
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Show this run in full: its id ("run-12-3fa2b1") or number ("12").
    #[arg(value_name = "RUN_ID")]
    pub run_id: Option<String>,

    /// List at most N runs, newest first.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_LIMIT,
        value_parser = clap::value_parser!(u32).range(1..),
        conflicts_with_all = ["all", "run_id"]
    )]
    pub limit: u32,

    /// List every run stressd keeps.
    #[arg(long, conflicts_with = "run_id")]
    pub all: bool,

    /// List the runs older than this cursor: the "next_cursor" of an earlier `--output json`
    /// listing.
    #[arg(long, value_name = "CURSOR", conflicts_with = "run_id")]
    pub cursor: Option<String>,
}

impl HistoryArgs {
    /// How many runs the listing gathers.
    pub fn want(&self) -> Want {
        if self.all {
            Want::All
        } else {
            Want::Runs(self.limit)
        }
    }
}

/// Options of `health`.
#[derive(Debug, Clone, Default, Args)]
pub struct HealthArgs {
    /// Service name to check (repeatable). Default: "" (the whole server) and
    /// "memstress.v1.StressService".
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
}

impl HealthArgs {
    /// The services to check: the ones asked for, or the defaults.
    pub fn services(&self) -> Vec<String> {
        if self.services.is_empty() {
            DEFAULT_HEALTH_SERVICES
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        } else {
            self.services.clone()
        }
    }
}

mod parse;
pub mod phase;
mod start;
#[cfg(test)]
mod tests;

pub use parse::{DNS_PREFIX, parse_addr, parse_refresh, parse_target, parse_timeout, parse_window};
pub use start::{ScopeArg, StartArgs, WorkloadArg};
