//! The command line: clap definitions plus the parsers for `--addr` and `--timeout`.

use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use memstress_proto::v1::{Scope, StartRequest, start_request::Target};

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
///   130  interrupted with Ctrl-C while following
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
    /// https://HOST:PORT speaks TLS.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "STRESSCTL_ADDR",
        default_value = DEFAULT_ADDR,
        value_parser = parse_addr,
        value_name = "ADDR"
    )]
    pub addr: String,

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
}

/// Parameters of `start`. Options left out are not sent, so stressd's defaults apply.
#[derive(Debug, Clone, Default, Args)]
#[command(group(
    ArgGroup::new("target")
        .required(true)
        .multiple(false)
        .args(["memory_mb", "memory_percent"])
))]
pub struct StartArgs {
    /// Target in MiB: 10 up to (not including) the memory limit; above it only with --allow-oom.
    #[arg(long, value_name = "MIB")]
    pub memory_mb: Option<u64>,

    /// Target as a percent (1 to 95, fractions allowed) of the memory basis (process scope) or
    /// of the container's limit (container scope).
    #[arg(long, value_name = "PERCENT")]
    pub memory_percent: Option<f64>,

    /// How long the target is held, 5 to 86400 seconds; 0 holds until stopped. [server default: 60]
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u32>,

    /// How often progress is logged while holding, 1 to 60 seconds. [server default: 5]
    #[arg(long, value_name = "SECONDS")]
    pub log_interval: Option<u32>,

    /// Payload carried by each tree node, 1 to 65536 KiB. [server default: 100]
    #[arg(long, value_name = "KIB")]
    pub payload_kb: Option<u32>,

    /// Growth rate while building, 0 to 100000 MiB/s; 0 is as fast as possible. [server default: 0]
    #[arg(long, value_name = "MIB_PER_SECOND")]
    pub ramp_mb_per_second: Option<f64>,

    /// Searches per second while holding, 0 to 10000000; 0 is unthrottled (loads a core).
    /// [server default: 1000]
    #[arg(long, value_name = "N")]
    pub search_rate: Option<u64>,

    /// Re-read every payload page once per log interval so the memory stays in the active
    /// working set instead of being reclaimed or swapped.
    #[arg(long)]
    pub keep_hot: bool,

    /// Back payloads with transparent huge pages where the node allows it.
    #[arg(long)]
    pub huge_pages: bool,

    /// Whose memory the target is measured against. [server default: process]
    #[arg(long, value_enum, value_name = "SCOPE")]
    pub scope: Option<ScopeArg>,

    /// Allow a target at or above the memory limit: the run grows until the kernel OOM-kills
    /// stressd (finds the real OOM line).
    #[arg(long)]
    pub allow_oom: bool,

    /// After starting, stream the run's log entries until it completes, stops or fails.
    /// Ctrl-C stops following, not the run.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// `--scope` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    /// stressd's own resident set size reaches the target.
    Process,
    /// The container's working set is brought to the target and held there.
    Container,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Self {
        match s {
            ScopeArg::Process => Scope::Process,
            ScopeArg::Container => Scope::Container,
        }
    }
}

impl StartArgs {
    /// The request to send: unset options stay unset (proto `optional`) or zero, which the
    /// server reads as "use the default".
    pub fn to_request(&self) -> StartRequest {
        let target = match (self.memory_mb, self.memory_percent) {
            (Some(mb), _) => Some(Target::MemoryMb(mb)),
            (None, Some(p)) => Some(Target::MemoryPercent(p)),
            (None, None) => None,
        };
        StartRequest {
            target,
            duration_seconds: self.duration,
            log_interval_seconds: self.log_interval,
            payload_size_kb: self.payload_kb,
            ramp_mb_per_second: self.ramp_mb_per_second.unwrap_or(0.0),
            search_rate: self.search_rate,
            keep_hot: self.keep_hot,
            huge_pages: self.huge_pages,
            scope: self.scope.map_or(Scope::Unspecified, Scope::from) as i32,
            allow_oom: self.allow_oom,
            workload: 0,
            phases: Vec::new(),
            repeat: None,
        }
    }
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

/// Normalises `--addr`: a bare `host[:port]` gets `http://` (and port 50051 if it had none);
/// a trailing `/` is dropped. `http://` is plaintext, `https://` TLS; other schemes are refused.
pub fn parse_addr(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("address is empty".to_owned());
    }
    let with_scheme = match s.split_once("://") {
        Some(("http" | "https", _)) => s.to_owned(),
        Some((scheme, _)) => {
            return Err(format!(
                "unsupported scheme \"{scheme}\": use http://HOST:PORT, https://HOST:PORT or HOST:PORT"
            ));
        }
        None => {
            if has_port(s) {
                format!("http://{s}")
            } else {
                format!("http://{s}:{DEFAULT_PORT}")
            }
        }
    };
    let authority = with_scheme
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    if authority.is_empty() || authority.starts_with('/') {
        return Err(format!("invalid address \"{s}\": no host"));
    }
    let trimmed = with_scheme
        .strip_suffix('/')
        .unwrap_or(&with_scheme)
        .to_owned();
    let uri: tonic::transport::Uri = trimmed
        .parse()
        .map_err(|e| format!("invalid address \"{s}\": {e}"))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("invalid address \"{s}\": no host"));
    }
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(format!(
            "invalid address \"{s}\": a gRPC address has no path (got \"{}\")",
            uri.path()
        ));
    }
    Ok(trimmed)
}

/// Whether a scheme-less address already names a port ("host:80", "[::1]:80" but not "[::1]").
fn has_port(s: &str) -> bool {
    let after_host = match s.rfind(']') {
        Some(i) => &s[i + 1..],
        None => s,
    };
    after_host.contains(':')
}

/// Parses `--timeout`: a positive number with an optional unit `ms`, `s`, `m` or `h`
/// (no unit = seconds), e.g. "500ms", "10s", "2m", "1.5".
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!("invalid duration \"{s}\": expected e.g. \"500ms\", \"10s\", \"2m\" or seconds")
    })?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "invalid duration \"{s}\": unknown unit \"{other}\" (use ms, s, m or h)"
            ));
        }
    };
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("invalid duration \"{s}\": must be greater than 0"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration \"{s}\": {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("stressctl").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// `--help` lists every exit code error.rs uses, each once, in order.
    #[test]
    fn help_documents_every_exit_code() {
        use crate::error::{EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_STREAM_ENDED, EXIT_UNREACHABLE};
        let help = Cli::command().render_long_help().to_string();
        let listed: Vec<u8> = help
            .lines()
            .skip_while(|l| *l != "Exit codes:")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        assert_eq!(
            listed,
            [
                0,
                EXIT_FAILURE,
                EXIT_UNREACHABLE,
                EXIT_STREAM_ENDED,
                EXIT_INTERRUPTED
            ],
            "{help}"
        );
        for words in [
            "refused",
            "followed run failed",
            "not SERVING",
            "not reachable",
            "timed out",
            "not a gRPC server",
            "usage errors",
            "ended or broke before the run did",
            "Ctrl-C",
        ] {
            assert!(help.contains(words), "{words:?} missing from:\n{help}");
        }
        // The short help stays short.
        let short = Cli::command().render_help().to_string();
        assert!(!short.contains("Exit codes:"), "{short}");
    }

    #[test]
    fn addr_normalisation() {
        assert_eq!(
            parse_addr("http://127.0.0.1:50051").as_deref(),
            Ok("http://127.0.0.1:50051")
        );
        assert_eq!(
            parse_addr("127.0.0.1:50051").as_deref(),
            Ok("http://127.0.0.1:50051")
        );
        assert_eq!(
            parse_addr("stressd.default.svc:9000").as_deref(),
            Ok("http://stressd.default.svc:9000")
        );
        assert_eq!(parse_addr("stressd").as_deref(), Ok("http://stressd:50051"));
        assert_eq!(parse_addr("[::1]:7000").as_deref(), Ok("http://[::1]:7000"));
        assert_eq!(parse_addr("[::1]").as_deref(), Ok("http://[::1]:50051"));
        assert_eq!(
            parse_addr(" http://localhost:1/ ").as_deref(),
            Ok("http://localhost:1")
        );
        assert!(parse_addr("").is_err());
        assert_eq!(parse_addr("https://x:1/").as_deref(), Ok("https://x:1"));
        assert!(parse_addr("ftp://x:1").is_err());
        assert!(parse_addr("http://x:1/some/path").is_err());
        assert!(parse_addr("http://").is_err());
        assert!(parse_addr("bad host:1").is_err());
    }

    #[test]
    fn timeout_parsing() {
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_timeout("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_timeout("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_timeout("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_timeout(" 3 s "), Ok(Duration::from_secs(3)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("0ms").is_err());
        assert!(parse_timeout("").is_err());
        assert!(parse_timeout("s").is_err());
        assert!(parse_timeout("-1s").is_err());
        assert!(parse_timeout("10 days").is_err());
        assert!(parse_timeout("1.2.3s").is_err());
    }

    #[test]
    fn global_defaults() {
        // A developer may have STRESSCTL_ADDR exported; the default only applies without it.
        let cli = parse(&["status"]).unwrap();
        if std::env::var_os("STRESSCTL_ADDR").is_none() {
            assert_eq!(cli.global.addr, DEFAULT_ADDR);
        }
        assert_eq!(cli.global.timeout, Duration::from_secs(10));
        assert_eq!(cli.global.output, OutputFormat::Text);
        assert!(matches!(cli.command, Command::Status));
    }

    #[test]
    fn global_options_anywhere() {
        let cli = parse(&[
            "--addr",
            "10.0.0.1:7000",
            "stop",
            "--timeout",
            "500ms",
            "--output",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.global.addr, "http://10.0.0.1:7000");
        assert_eq!(cli.global.timeout, Duration::from_millis(500));
        assert_eq!(cli.global.output, OutputFormat::Json);
        assert!(matches!(cli.command, Command::Stop));
        assert!(parse(&["status", "--timeout", "soon"]).is_err());
        assert!(parse(&["status", "--output", "yaml"]).is_err());
    }

    #[test]
    fn start_follow_parses_and_unset_optionals_stay_none() {
        let cli = parse(&[
            "start",
            "--memory-mb",
            "1024",
            "--duration",
            "120",
            "--follow",
        ])
        .unwrap();
        let Command::Start(args) = cli.command else {
            panic!("expected start");
        };
        assert_eq!(args.memory_mb, Some(1024));
        assert_eq!(args.memory_percent, None);
        assert_eq!(args.duration, Some(120));
        assert!(args.follow);
        assert_eq!(args.log_interval, None);
        assert_eq!(args.payload_kb, None);
        assert_eq!(args.ramp_mb_per_second, None);
        assert_eq!(args.search_rate, None);
        assert_eq!(args.scope, None);
        assert!(!args.keep_hot && !args.huge_pages && !args.allow_oom);

        let req = args.to_request();
        assert_eq!(req.target, Some(Target::MemoryMb(1024)));
        assert_eq!(req.duration_seconds, Some(120));
        assert_eq!(req.log_interval_seconds, None);
        assert_eq!(req.payload_size_kb, None);
        assert_eq!(req.search_rate, None);
        assert_eq!(req.ramp_mb_per_second, 0.0);
        assert_eq!(req.scope, Scope::Unspecified as i32);
        assert!(!req.keep_hot && !req.huge_pages && !req.allow_oom);
    }

    #[test]
    fn start_all_options() {
        let cli = parse(&[
            "start",
            "--memory-percent",
            "12.5",
            "--duration",
            "0",
            "--log-interval",
            "2",
            "--payload-kb",
            "64",
            "--ramp-mb-per-second",
            "250.5",
            "--search-rate",
            "0",
            "--keep-hot",
            "--huge-pages",
            "--scope",
            "container",
            "--allow-oom",
        ])
        .unwrap();
        let Command::Start(args) = cli.command else {
            panic!("expected start");
        };
        assert!(!args.follow);
        let req = args.to_request();
        assert_eq!(req.target, Some(Target::MemoryPercent(12.5)));
        assert_eq!(req.duration_seconds, Some(0));
        assert_eq!(req.log_interval_seconds, Some(2));
        assert_eq!(req.payload_size_kb, Some(64));
        assert_eq!(req.ramp_mb_per_second, 250.5);
        assert_eq!(req.search_rate, Some(0));
        assert!(req.keep_hot && req.huge_pages && req.allow_oom);
        assert_eq!(req.scope, Scope::Container as i32);

        let cli = parse(&["start", "--memory-mb", "64", "--scope", "process"]).unwrap();
        let Command::Start(args) = cli.command else {
            panic!("expected start");
        };
        assert_eq!(args.to_request().scope, Scope::Process as i32);
    }

    #[test]
    fn start_requires_exactly_one_target() {
        let none = parse(&["start", "--duration", "10"]).unwrap_err();
        assert_eq!(none.kind(), ErrorKind::MissingRequiredArgument);
        let both = parse(&["start", "--memory-mb", "10", "--memory-percent", "5"]).unwrap_err();
        assert_eq!(both.kind(), ErrorKind::ArgumentConflict);
        assert_eq!(both.exit_code(), 2);
        assert!(parse(&["start", "--memory-mb", "-5"]).is_err());
        assert!(parse(&["start", "--memory-mb", "10", "--scope", "pod"]).is_err());
    }

    #[test]
    fn logs_and_health_options() {
        let cli = parse(&["logs"]).unwrap();
        let Command::Logs(args) = cli.command else {
            panic!("expected logs");
        };
        assert!(!args.follow);
        assert_eq!(args.from, 0);

        let cli = parse(&["logs", "-f", "--from", "42"]).unwrap();
        let Command::Logs(args) = cli.command else {
            panic!("expected logs");
        };
        assert!(args.follow);
        assert_eq!(args.from, 42);

        let cli = parse(&["health"]).unwrap();
        let Command::Health(args) = cli.command else {
            panic!("expected health");
        };
        assert_eq!(args.services(), vec!["", "memstress.v1.StressService"]);

        let cli = parse(&["health", "--service", "a", "--service", "b"]).unwrap();
        let Command::Health(args) = cli.command else {
            panic!("expected health");
        };
        assert_eq!(args.services(), vec!["a", "b"]);
    }

    fn history(args: &[&str]) -> Result<HistoryArgs, clap::Error> {
        let all: Vec<&str> = std::iter::once("history")
            .chain(args.iter().copied())
            .collect();
        match parse(&all)?.command {
            Command::History(a) => Ok(a),
            other => panic!("expected history, got {other:?}"),
        }
    }

    #[test]
    fn history_options() {
        let a = history(&[]).unwrap();
        assert_eq!(a.run_id, None);
        assert_eq!(a.want(), Want::Runs(20));
        assert_eq!(a.cursor, None);

        assert_eq!(history(&["--limit", "5"]).unwrap().want(), Want::Runs(5));
        assert_eq!(history(&["--all"]).unwrap().want(), Want::All);
        let a = history(&["--cursor", "17", "--limit", "3"]).unwrap();
        assert_eq!(a.cursor.as_deref(), Some("17"));

        let a = history(&["run-12-3fa2b1"]).unwrap();
        assert_eq!(a.run_id.as_deref(), Some("run-12-3fa2b1"));
        let cli = parse(&["history", "12", "-o", "json"]).unwrap();
        assert_eq!(cli.global.output, OutputFormat::Json);

        assert!(history(&["--limit", "0"]).is_err());
        assert!(history(&["--limit", "-1"]).is_err());
        let e = history(&["--all", "--limit", "5"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
        let e = history(&["12", "--all"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
        assert!(history(&["12", "--limit", "3"]).is_err());
        assert!(history(&["12", "--cursor", "3"]).is_err());
        assert!(history(&["12", "13"]).is_err());
    }
}
