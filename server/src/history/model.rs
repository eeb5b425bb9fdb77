//! What the run history records, in domain terms (no SQL, no proto).

pub use crate::cgroup::CgroupIdentity;
use crate::cgroup::MemoryBasis;
use crate::engine::State;
use crate::params::RunParams;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Still building or holding (or, in the store, not yet closed).
    Running,
    /// The hold ended on its own.
    Completed,
    /// Stopped (Stop, Clear, shutdown).
    Stopped,
    /// Ended with an error.
    Failed,
    /// The process died during the run; no sign of the OOM killer.
    Killed,
    /// The process died during the run; the evidence points to the OOM killer.
    OomKilled,
}

impl Outcome {
    /// Every outcome, in proto order (for metrics that list all of them).
    pub const ALL: [Outcome; 6] = [
        Self::Running,
        Self::Completed,
        Self::Stopped,
        Self::Failed,
        Self::Killed,
        Self::OomKilled,
    ];

    /// Lower-case name, used in the store, in metrics labels and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Killed => "killed",
            Self::OomKilled => "oom_killed",
        }
    }

    /// Inverse of [`Self::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.name() == s)
    }
}

/// What a Killed / OomKilled verdict rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// Confirmed: the checkpoint's cgroup is still there and its oom_kill counter rose.
    OomCounter,
    /// Likely: counter not comparable, last checkpoint within 2 % of the limit.
    NearLimit,
    /// Likely: counter not comparable, growing with allow_oom toward a target past the limit.
    AllowOomGrowth,
    /// The counter was comparable and did not rise.
    OomCounterUnchanged,
    /// Nothing points to the OOM killer.
    None,
}

impl Evidence {
    /// Every variant.
    pub const ALL: [Evidence; 5] = [
        Self::OomCounter,
        Self::NearLimit,
        Self::AllowOomGrowth,
        Self::OomCounterUnchanged,
        Self::None,
    ];

    /// Stable name for the store.
    pub fn name(self) -> &'static str {
        match self {
            Self::OomCounter => "oom_counter",
            Self::NearLimit => "near_limit",
            Self::AllowOomGrowth => "allow_oom_growth",
            Self::OomCounterUnchanged => "oom_counter_unchanged",
            Self::None => "none",
        }
    }

    /// Inverse of [`Self::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == s)
    }
}

/// The newest known state of an active run.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Unix ms.
    pub taken_at_ms: i64,
    /// Run state then.
    pub state: State,
    /// stressd RSS, bytes.
    pub rss_bytes: u64,
    /// Container working set, bytes.
    pub working_set_bytes: Option<u64>,
    /// Nodes in the workload.
    pub nodes: u64,
    /// The cgroup the counter below belongs to.
    pub cgroup: Option<CgroupIdentity>,
    /// That cgroup's oom_kill counter.
    pub oom_kills: Option<u64>,
}

/// What is known when a run starts.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// Validated parameters.
    pub params: RunParams,
    /// Target, bytes.
    pub target_bytes: u64,
    /// The basis (limit and source).
    pub basis: MemoryBasis,
    /// Unix ms.
    pub started_at_ms: i64,
    /// cgroup oom_kill counter at start.
    pub oom_kills_at_start: Option<u64>,
}

/// What is known when a run ends in this process.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// Completed, Stopped or Failed.
    pub outcome: Outcome,
    /// Unix ms.
    pub ended_at_ms: i64,
    /// Peak RSS, bytes.
    pub peak_rss_bytes: u64,
    /// Peak container working set, bytes.
    pub peak_working_set_bytes: Option<u64>,
    /// Build time to target.
    pub time_to_target_ms: Option<u64>,
    /// Average fill rate, MiB/s.
    pub fill_rate_mb_per_second: f64,
    /// Searches done.
    pub searches: u64,
    /// cgroup oom_kill counter at the end.
    pub oom_kills_at_end: Option<u64>,
    /// Last error ("" if none).
    pub last_error: String,
}

/// One run as kept in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// Store-assigned number, unique across restarts with a durable store.
    pub number: u64,
    /// "run-N-xxxxxx".
    pub run_id: String,
    /// Parameters.
    pub params: RunParams,
    /// Target, bytes.
    pub target_bytes: u64,
    /// Basis.
    pub basis: MemoryBasis,
    /// Unix ms.
    pub started_at_ms: i64,
    /// Unix ms (None while running).
    pub ended_at_ms: Option<i64>,
    /// How it ended.
    pub outcome: Outcome,
    /// For recovered runs.
    pub evidence: Option<Evidence>,
    /// The verdict in words ("" for runs that ended in their own process).
    pub outcome_message: String,
    /// Peak RSS, bytes.
    pub peak_rss_bytes: u64,
    /// Peak working set, bytes.
    pub peak_working_set_bytes: Option<u64>,
    /// Time to target, ms.
    pub time_to_target_ms: Option<u64>,
    /// MiB/s.
    pub fill_rate_mb_per_second: f64,
    /// Searches.
    pub searches: u64,
    /// Counter at start.
    pub oom_kills_at_start: Option<u64>,
    /// Counter at end.
    pub oom_kills_at_end: Option<u64>,
    /// Last error.
    pub last_error: String,
    /// Newest checkpoint.
    pub last_checkpoint: Option<Checkpoint>,
    /// Closed at a later process's start.
    pub recovered: bool,
}

/// Where the history lives now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryMode {
    /// SQLite file in the state dir.
    Durable {
        /// The database file.
        path: String,
    },
    /// In memory only.
    Memory {
        /// Why (no --state-dir, or what failed).
        reason: String,
    },
}

/// The history's health, for Status and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryStatus {
    /// Durable or memory-only.
    pub mode: HistoryMode,
    /// Runs kept now.
    pub runs_kept: u64,
    /// Most runs kept.
    pub limit: u64,
}
