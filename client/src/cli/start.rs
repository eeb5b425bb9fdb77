//! `start`'s options and the request they make.

use clap::{ArgGroup, Args, ValueEnum};
use memstress_proto::v1::{Scope, StartRequest, Workload, start_request::Target};

use super::phase::parse_profile;

/// Parameters of `start`. Options left out are not sent, so stressd's defaults apply.
#[derive(Debug, Clone, Default, Args)]
#[command(group(
    ArgGroup::new("target")
        .required(true)
        .multiple(false)
        .args(["memory_mb", "memory_percent", "phases"])
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
    #[arg(long, value_name = "SECONDS", conflicts_with = "phases")]
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

    /// The data structure that holds the memory, and what it does while holding: tree
    /// (searches), list (a walk along it), hash (lookups), matrix (multiply-adds: memory
    /// bandwidth and CPU). [server default: tree]
    #[arg(long, value_enum, value_name = "WORKLOAD")]
    pub workload: Option<WorkloadArg>,

    /// One step of a target profile, instead of --memory-mb/--memory-percent and --duration:
    /// MIB:SECONDS[:RAMP] or PERCENT%:SECONDS[:RAMP]. The run grows or shrinks to the target,
    /// holds it SECONDS (0 moves on at once), then goes to the next --phase; RAMP is the
    /// growth rate in MiB/s (default --ramp-mb-per-second; shrinking is always at once).
    /// Repeatable, in order, 1 to 64 phases.
    ///
    /// Example, to push a HorizontalPodAutoscaler with a 70% memory target over it and back,
    /// three times: --phase 50%:60 --phase 85%:120:50 --phase 40%:60 --repeat 3
    #[arg(long = "phase", value_name = "PHASE")]
    pub phases: Vec<String>,

    /// How often the --phase profile runs, 0 to 10000; 0 repeats until stopped. Only with
    /// --phase. [server default: 1]
    #[arg(long, value_name = "N", conflicts_with_all = ["memory_mb", "memory_percent"])]
    pub repeat: Option<u32>,

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

/// `--workload` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkloadArg {
    /// A binary search tree; holds by searching random keys.
    Tree,
    /// A linked list; holds by walking along it.
    List,
    /// A hash table; holds by looking up random keys.
    Hash,
    /// Dense f64 blocks; holds by multiplying them (memory bandwidth and CPU).
    Matrix,
}

impl From<WorkloadArg> for Workload {
    fn from(w: WorkloadArg) -> Self {
        match w {
            WorkloadArg::Tree => Workload::Tree,
            WorkloadArg::List => Workload::List,
            WorkloadArg::Hash => Workload::Hash,
            WorkloadArg::Matrix => Workload::Matrix,
        }
    }
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
    /// server reads as "use the default". Fails on a --phase that does not parse (the message
    /// names it) or a --repeat out of range.
    pub fn to_request(&self) -> Result<StartRequest, String> {
        let target = match (self.memory_mb, self.memory_percent) {
            (Some(mb), _) => Some(Target::MemoryMb(mb)),
            (None, Some(p)) => Some(Target::MemoryPercent(p)),
            (None, None) => None,
        };
        let phases = parse_profile(&self.phases, self.repeat)?;
        Ok(StartRequest {
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
            workload: self.workload.map_or(Workload::Unspecified, Workload::from) as i32,
            phases,
            repeat: self.repeat,
        })
    }
}
