//! The workload thread: runs the plan (each phase: move to its target, then hold), then
//! closes the run. Owns the run's `Box<dyn Workload>` and hands it back when it ends.

use super::messages;
use super::meter::Meter;
use super::run_state::{RunShared, State};
use crate::checkpoint::Checkpointer;
use crate::history::History;
use crate::history::model::Outcome;
use crate::logs::Operation;
use crate::params::{MIB, PlannedPhase, Scope};
use crate::workload::{Workload, WorkloadConfig, WorkloadError};
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Niceness of the workload thread (see `Worker::run`).
const WORKER_NICE: libc::c_int = 19;

/// Why a phase ended early.
pub(crate) enum Interrupt {
    Stopped,
    Failed(String),
}

impl From<WorkloadError> for Interrupt {
    fn from(e: WorkloadError) -> Self {
        Self::Failed(e.to_string())
    }
}

/// Everything the worker thread needs; owned by it.
pub(crate) struct Worker {
    pub(crate) shared: Arc<RunShared>,
    pub(crate) meter: Meter,
    pub(crate) history: Arc<History>,
    pub(crate) checkpointer: Arc<Checkpointer>,
    /// Hold activity of every run of this process.
    pub(crate) activity_total: Arc<AtomicU64>,
    pub(crate) thp_enabled_path: PathBuf,
    /// The kernel's refusal of huge pages was logged.
    pub(crate) huge_refusal_logged: Cell<bool>,
}

impl Worker {
    pub(crate) fn log(&self, op: Operation, msg: String) {
        self.meter.publish(op, &self.shared.run_id, msg);
    }

    /// Logs with `commit` applied atomically with the entry.
    pub(crate) fn log_then(&self, op: Operation, msg: String, commit: impl FnOnce()) {
        self.meter
            .publish_with(op, &self.shared.run_id, msg, commit);
    }

    /// Runs the plan; returns what it holds (None when the run failed and freed it).
    pub(crate) fn run(self) -> Option<Box<dyn Workload>> {
        // A full-speed build or an unthrottled hold saturates a core; at nice 19 the control
        // plane (Status, Stop, watchers) is scheduled ahead of it, and it still gets every
        // cycle nobody else wants. Nice only weighs threads inside the container's own CPU
        // cgroup, so this costs nothing against other pods. Best effort: a failure only costs
        // responsiveness. (Benchmark row 6: Status p99 during a build.)
        // SAFETY: gettid/setpriority on the calling thread have no memory-safety preconditions.
        unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, WORKER_NICE);
        }
        let p = &self.shared.params;
        let config = WorkloadConfig {
            payload_bytes: p.payload_size_kb as usize * 1024,
            huge_pages: p.huge_pages && self.thp_usable(),
        };
        let mut w = crate::workload::new_workload(p.workload, config);
        let outcome = self.run_plan(w.as_mut());
        self.close(w, outcome)
    }

    /// Whether THP can back payloads here; says so when huge pages were asked for in vain.
    fn thp_usable(&self) -> bool {
        let mode = std::fs::read_to_string(&self.thp_enabled_path).unwrap_or_default();
        let usable = mode.contains("[always]") || mode.contains("[madvise]");
        if !usable {
            self.log(Operation::Notice, messages::thp_unavailable(&mode));
        }
        usable
    }

    /// Every phase of every repetition; a single-target run is one phase without PHASE_START.
    fn run_plan(&self, w: &mut dyn Workload) -> Result<(), Interrupt> {
        let s = &self.shared;
        let profile = !s.params.phases.is_empty();
        let count = s.plan.phases.len();
        let mut rep: u32 = 1;
        let mut first = true;
        while s.plan.repeat == 0 || rep <= s.plan.repeat {
            for (i, phase) in s.plan.phases.iter().enumerate() {
                self.enter_phase(i + 1, count, rep, phase, profile);
                super::build::move_to(self, w, phase, first)?;
                first = false;
                if phase.hold.is_none_or(|d| !d.is_zero()) {
                    super::hold::hold(self, w, phase)?;
                }
            }
            rep = rep.saturating_add(1);
        }
        Ok(())
    }

    /// Publishes the phase cursor (with PHASE_START for a profile; back to BUILDING after a
    /// hold, in the same step as the entry).
    fn enter_phase(&self, index: usize, count: usize, rep: u32, ph: &PlannedPhase, profile: bool) {
        let s = &self.shared;
        let commit = || {
            // BUILDING first: Status reads without a lock, and a reader that lands between
            // the two steps then sees the old phase still moving, never the new phase index
            // reported as SEARCHING at the old phase's level.
            if s.state() == State::Searching {
                s.transition(State::Building);
            }
            let c = &s.phase;
            c.index
                .store(u32::try_from(index).unwrap_or(u32::MAX), Ordering::Release);
            c.repetition.store(rep, Ordering::Release);
            c.target_bytes.store(ph.target_bytes, Ordering::Release);
            let hold_ms = ph.hold.map_or(super::run_state::UNSET, |d| {
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
            });
            c.hold_ms.store(hold_ms, Ordering::Release);
        };
        if profile {
            let msg = messages::phase_start(index, count, rep, s.plan.repeat, ph);
            self.log_then(Operation::PhaseStart, msg, commit);
        } else {
            commit();
        }
    }

    /// Records the end, logs the closing entry and turns the state final in one step.
    fn close(
        &self,
        w: Box<dyn Workload>,
        outcome: Result<(), Interrupt>,
    ) -> Option<Box<dyn Workload>> {
        let s = &self.shared;
        let rss = self.meter.rss().unwrap_or(0);
        let peak = s.counters.peak_rss.load(Ordering::Relaxed);
        let summary = messages::summary(&w.counters(), w.kind(), peak, rss);
        match outcome {
            Ok(()) => {
                let msg = messages::run_complete(&summary);
                self.finish(Operation::StressTestComplete, msg, State::Completed);
                Some(w)
            }
            Err(Interrupt::Stopped) => {
                let msg = messages::run_stopped(&summary, &s.stopped_by());
                self.finish(Operation::StressTestStopped, msg, State::Stopped);
                Some(w)
            }
            Err(Interrupt::Failed(err)) => {
                let kind = w.kind();
                let (bytes, items) = w.release();
                s.counters.items.store(0, Ordering::Relaxed);
                s.counters.payload_bytes.store(0, Ordering::Relaxed);
                s.set_error(&err);
                let msg = messages::run_failed(&err, &summary, items, bytes, kind);
                self.finish(Operation::StressTestError, msg, State::Failed);
                None
            }
        }
    }

    /// Records the run's end in the history, then logs its closing entry and turns its state
    /// final in the same step (so a client that sees the entry finds the record).
    fn finish(&self, op: Operation, msg: String, state: State) {
        let outcome = match state {
            State::Completed => Outcome::Completed,
            State::Stopped => Outcome::Stopped,
            _ => Outcome::Failed,
        };
        super::record_end(&self.history, &self.meter, &self.shared, outcome);
        self.log_then(op, msg, || {
            self.shared.transition(state);
        });
    }

    /// The quantity the target is about: process RSS or container working set.
    pub(crate) fn measure(&self) -> Result<u64, Interrupt> {
        let s = &self.shared;
        let rss = self.meter.rss();
        if let Some(r) = rss {
            s.note_rss(r);
        }
        let value = match s.params.scope {
            Scope::Process => rss,
            Scope::Container => {
                let ws = self.meter.working_set();
                if let Some(ws) = ws {
                    s.note_working_set(ws);
                }
                ws
            }
        };
        value.ok_or_else(|| Interrupt::Failed(messages::unreadable(s.params.scope)))
    }

    /// Sleeps up to `d`, waking at once on Stop.
    pub(crate) fn nap(&self, d: Duration) {
        if !self.shared.stopping() && !d.is_zero() {
            std::thread::park_timeout(d);
        }
    }

    /// Fails with Stopped once Stop was asked for.
    pub(crate) fn check_stop(&self) -> Result<(), Interrupt> {
        if self.shared.stopping() {
            Err(Interrupt::Stopped)
        } else {
            Ok(())
        }
    }

    pub(crate) fn publish_counts(&self, w: &dyn Workload) {
        let c = w.counters();
        self.shared.counters.items.store(c.items, Ordering::Relaxed);
        self.shared
            .counters
            .payload_bytes
            .store(c.payload_bytes, Ordering::Relaxed);
    }

    /// Logs OOM kills the cgroup counted since the run started (once per new count).
    pub(crate) fn check_oom(&self, seen: &mut Option<u64>) {
        let (Some(base), Some(now)) = (
            self.shared.oom_kills_at_start,
            self.meter.cgroup.oom_kills(),
        ) else {
            return;
        };
        if now > seen.unwrap_or(base) {
            *seen = Some(now);
            self.log(Operation::Notice, messages::oom_kills(now - base));
        }
    }

    /// Samples THP-backed bytes; says once when the kernel refused huge pages.
    pub(crate) fn sample_huge(&self, w: &dyn Workload) {
        use crate::workload::HugePages;
        match w.huge_pages() {
            HugePages::Off => {}
            HugePages::Advised => {
                let bytes = self.meter.procmem.anon_huge_bytes().unwrap_or(0);
                self.shared
                    .counters
                    .huge_page_bytes
                    .store(bytes, Ordering::Relaxed);
            }
            HugePages::Refused => {
                if !self.huge_refusal_logged.replace(true) {
                    self.log(Operation::Notice, messages::thp_refused());
                }
            }
        }
    }

    /// The band around a target inside which RSS counts as on target: max(0.5 %, 2 MiB).
    pub(crate) fn band(target: u64) -> u64 {
        (target / 200).max(2 * MIB)
    }
}
