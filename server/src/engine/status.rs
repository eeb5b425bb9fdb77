//! The Status snapshot, computed once here for gRPC Status and `/metrics` alike: the
//! transport only maps fields.

use super::run_state::{RunShared, State, load_f64};
use crate::cgroup::{ContainerMemory, MemoryBasis};
use crate::history::model::{HistoryStatus, RunRecord};
use crate::history::tally::TallySnapshot;
use crate::params::RunParams;
use crate::workload::WorkloadKind;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Where a target profile stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseProgress {
    /// Phase now, from 1 (0 before the first starts).
    pub index: u32,
    /// Phases in the profile.
    pub count: u32,
    /// Repetition now, from 1.
    pub repetition: u32,
    /// Repetitions asked for; 0 = until stopped.
    pub repeat: u32,
    /// The current phase's target, bytes.
    pub target_bytes: u64,
}

/// Status of the current or last run, read without blocking the workload.
#[derive(Debug, Clone)]
pub struct RunStatus {
    /// Run identifier.
    pub run_id: String,
    /// Validated parameters.
    pub params: RunParams,
    /// Target in bytes (the largest phase's for a profile).
    pub target_bytes: u64,
    /// Items held (tree or list nodes, hash entries, matrix blocks).
    pub nodes: u64,
    /// Payload bytes held.
    pub payload_bytes: u64,
    /// Peak RSS of the run (never below the RSS now while it is active).
    pub peak_rss_bytes: u64,
    /// Peak container working set seen during the run.
    pub peak_working_set_bytes: Option<u64>,
    /// Basis the target was resolved against.
    pub basis: MemoryBasis,
    /// Hold activity so far, in the workload's unit.
    pub searches: u64,
    /// Hold activity per second over the last log interval; 0 unless holding.
    pub searches_per_second: f64,
    /// Unix ms at start.
    pub started_at_ms: i64,
    /// Elapsed (until end for a finished run).
    pub elapsed_ms: u64,
    /// Time left in the current hold.
    pub remaining_ms: Option<u64>,
    /// Last error.
    pub last_error: String,
    /// Fill rate of the first build, MiB/s.
    pub fill_rate_mb_per_second: f64,
    /// Fill rate over the last half second while building, MiB/s; 0 otherwise.
    pub current_fill_rate_mb_per_second: f64,
    /// Time of the first build to its target.
    pub time_to_target_ms: Option<u64>,
    /// THP-backed bytes (sampled at log intervals).
    pub huge_page_bytes: u64,
    /// cgroup OOM kills at run start.
    pub oom_kills_at_start: Option<u64>,
    /// The profile's progress (None for a single-target run).
    pub phase: Option<PhaseProgress>,
}

impl RunStatus {
    /// The structure holding the memory.
    pub fn workload(&self) -> WorkloadKind {
        self.params.workload
    }
}

/// A full status snapshot.
#[derive(Debug, Clone)]
pub struct StatusSnapshot {
    /// Current state.
    pub state: State,
    /// Current or last run.
    pub run: Option<RunStatus>,
    /// RSS now.
    pub rss_bytes: u64,
    /// Peak RSS of the current or last run; the RSS now before any run.
    pub peak_rss_bytes: u64,
    /// Peak working set of the current or last run; the working set now before any run.
    pub peak_working_set_bytes: Option<u64>,
    /// The structure of the current or last run (the default before any run).
    pub workload: WorkloadKind,
    /// What `searches` counts for that structure.
    pub activity_unit: &'static str,
    /// The basis now.
    pub basis: MemoryBasis,
    /// The container's memory now.
    pub container: ContainerMemory,
    /// cgroup OOM kills since the current or last run started (0 when unknown).
    pub oom_kills_during_run: u64,
    /// CPU seconds used by the process.
    pub process_cpu_seconds: f64,
    /// Hold activity of every run of this process (monotonic).
    pub searches_total: u64,
    /// The run history: where it lives, the last finished run, the tally.
    pub history: HistoryView,
    /// Who this process is.
    pub instance: Arc<crate::instance::Instance>,
}

/// The run history as Status and metrics see it (no SQL behind any of it).
#[derive(Debug, Clone)]
pub struct HistoryView {
    /// Durable or memory-only, runs kept.
    pub status: HistoryStatus,
    /// The last finished run.
    pub previous_run: Option<RunRecord>,
    /// Finished runs by outcome, time-to-target histogram.
    pub tally: TallySnapshot,
}

/// The status of `r` in `state`, with the RSS and working set just read.
pub(crate) fn run_status(r: &RunShared, state: State, rss: u64, ws: Option<u64>) -> RunStatus {
    if state.is_active() {
        r.note_rss(rss);
        if let Some(ws) = ws {
            r.note_working_set(ws);
        }
    }
    let c = &r.counters;
    let elapsed_ms = r.elapsed_or_ended_ms();
    RunStatus {
        run_id: r.run_id.to_string(),
        params: r.params.clone(),
        target_bytes: r.target_bytes,
        nodes: c.items.load(Ordering::Relaxed),
        payload_bytes: c.payload_bytes.load(Ordering::Relaxed),
        peak_rss_bytes: c.peak_rss.load(Ordering::Relaxed),
        peak_working_set_bytes: r.peak_working_set(),
        basis: r.basis.clone(),
        searches: c.activity.load(Ordering::Relaxed),
        searches_per_second: if state == State::Searching {
            load_f64(&c.activity_per_second)
        } else {
            0.0
        },
        started_at_ms: r.started_at_ms,
        elapsed_ms,
        remaining_ms: remaining_ms(r, state, elapsed_ms),
        last_error: r.last_error(),
        fill_rate_mb_per_second: load_f64(&c.fill_rate),
        current_fill_rate_mb_per_second: if state == State::Building {
            load_f64(&c.current_fill_rate)
        } else {
            0.0
        },
        time_to_target_ms: r.time_to_target_ms(),
        huge_page_bytes: c.huge_page_bytes.load(Ordering::Relaxed),
        oom_kills_at_start: r.oom_kills_at_start,
        phase: phase_progress(r),
    }
}

/// Time left in the current hold (None unless holding with a hold time).
fn remaining_ms(r: &RunShared, state: State, elapsed_ms: u64) -> Option<u64> {
    let hold_ms = r.phase.hold_ms.load(Ordering::Acquire);
    if state != State::Searching || hold_ms == super::run_state::UNSET {
        return None;
    }
    let started = r.hold_started_ms()?;
    Some((started + hold_ms).saturating_sub(elapsed_ms))
}

fn phase_progress(r: &RunShared) -> Option<PhaseProgress> {
    if r.params.phases.is_empty() {
        return None;
    }
    let p = &r.phase;
    Some(PhaseProgress {
        index: p.index.load(Ordering::Acquire),
        count: u32::try_from(r.plan.phases.len()).unwrap_or(u32::MAX),
        repetition: p.repetition.load(Ordering::Acquire),
        repeat: r.plan.repeat,
        target_bytes: p.target_bytes.load(Ordering::Acquire),
    })
}

/// OOM kills the cgroup counted since the run started.
pub(crate) fn oom_kills_during(run: Option<&RunStatus>, now: Option<u64>) -> u64 {
    match (run.and_then(|r| r.oom_kills_at_start), now) {
        (Some(base), Some(now)) => now.saturating_sub(base),
        _ => 0,
    }
}
