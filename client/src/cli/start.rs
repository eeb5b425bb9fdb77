//! `start`'s options and the request they make.

use clap::{ArgGroup, Args, ValueEnum};
use memstress_proto::v1::{Scope, StartRequest, start_request::Target};

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
