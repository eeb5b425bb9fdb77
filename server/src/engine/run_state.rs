//! The lifecycle state and what a run shares between its worker, the checkpoint thread and
//! Status readers. Every state change goes through [`RunShared::transition`], which refuses
//! the changes the lifecycle does not have.

use crate::cgroup::MemoryBasis;
use crate::history::model::{Outcome, RunEnd};
use crate::logs::now_unix_ms;
use crate::params::{Plan, RunParams};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Nothing held.
    Idle = 0,
    /// Growing or shrinking toward a (phase's) target.
    Building = 1,
    /// Holding the target and doing the workload's hold activity.
    Searching = 2,
    /// Ended on its own; memory held.
    Completed = 3,
    /// Stopped; memory held.
    Stopped = 4,
    /// Failed; memory released.
    Failed = 5,
}

impl State {
    /// Every state, in proto order.
    pub const ALL: [State; 6] = [
        Self::Idle,
        Self::Building,
        Self::Searching,
        Self::Completed,
        Self::Stopped,
        Self::Failed,
    ];

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Building,
            2 => Self::Searching,
            3 => Self::Completed,
            4 => Self::Stopped,
            5 => Self::Failed,
            _ => Self::Idle,
        }
    }

    /// Lower-case name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Building => "building",
            Self::Searching => "searching",
            Self::Completed => "completed",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }

    /// Building or searching.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Building | Self::Searching)
    }

    /// Whether the lifecycle has the change `self` → `to`. A run starts BUILDING; it moves
    /// between BUILDING and SEARCHING once per phase; an active run ends COMPLETED, STOPPED or
    /// FAILED; a held run's memory is freed to IDLE (a FAILED run has nothing left to free).
    pub fn may_become(self, to: State) -> bool {
        use State::{Building, Completed, Failed, Idle, Searching, Stopped};
        matches!(
            (self, to),
            (Building, Searching)
                | (Searching, Building)
                | (Building | Searching, Completed | Stopped | Failed)
                | (Completed | Stopped, Idle)
        )
    }
}

pub(crate) const UNSET: u64 = u64::MAX;

/// Where a target profile stands (all 0 before the first phase).
#[derive(Debug, Default)]
pub(crate) struct PhaseCursor {
    /// Phase now, from 1.
    pub(crate) index: AtomicU32,
    /// Repetition now, from 1.
    pub(crate) repetition: AtomicU32,
    /// The phase's target, bytes.
    pub(crate) target_bytes: AtomicU64,
    /// Its hold in ms (UNSET = until stopped).
    pub(crate) hold_ms: AtomicU64,
}

/// Progress counters, written by the worker and read without locks.
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) items: AtomicU64,
    pub(crate) payload_bytes: AtomicU64,
    pub(crate) peak_rss: AtomicU64,
    pub(crate) peak_working_set: AtomicU64,
    /// Hold activity in the workload's unit (searches for the tree).
    pub(crate) activity: AtomicU64,
    /// f64 bits, per second over the last log interval.
    pub(crate) activity_per_second: AtomicU64,
    /// f64 bits, MiB/s of the first phase's build.
    pub(crate) fill_rate: AtomicU64,
    /// f64 bits, MiB/s over the last half second.
    pub(crate) current_fill_rate: AtomicU64,
    pub(crate) time_to_target_ms: AtomicU64,
    pub(crate) huge_page_bytes: AtomicU64,
}

impl Counters {
    fn new(rss: u64) -> Self {
        Self {
            items: AtomicU64::new(0),
            payload_bytes: AtomicU64::new(0),
            peak_rss: AtomicU64::new(rss),
            peak_working_set: AtomicU64::new(UNSET),
            activity: AtomicU64::new(0),
            activity_per_second: AtomicU64::new(0),
            fill_rate: AtomicU64::new(0),
            current_fill_rate: AtomicU64::new(0),
            time_to_target_ms: AtomicU64::new(UNSET),
            huge_page_bytes: AtomicU64::new(0),
        }
    }
}

/// What a run shares between its worker, the checkpoint thread and Status readers.
#[derive(Debug)]
pub struct RunShared {
    /// Run identifier.
    pub run_id: Arc<str>,
    /// The run's number in the history store.
    pub number: u64,
    /// Validated parameters.
    pub params: RunParams,
    /// What the run does, in bytes.
    pub plan: Plan,
    /// Target in bytes (the largest phase's).
    pub target_bytes: u64,
    /// Basis the target was resolved against.
    pub basis: MemoryBasis,
    /// Unix ms at start.
    pub started_at_ms: i64,
    pub(crate) oom_kills_at_start: Option<u64>,
    pub(crate) counters: Counters,
    pub(crate) phase: PhaseCursor,
    started: Instant,
    state: AtomicU8,
    stop: AtomicBool,
    ended_after_ms: AtomicU64,
    hold_started_after_ms: AtomicU64,
    last_error: Mutex<String>,
    stopped_by: Mutex<String>,
}

/// What a new run is, before its worker exists.
pub(crate) struct RunInit {
    pub(crate) run_id: Arc<str>,
    pub(crate) number: u64,
    pub(crate) params: RunParams,
    pub(crate) plan: Plan,
    pub(crate) basis: MemoryBasis,
    pub(crate) started_at_ms: i64,
    pub(crate) oom_kills_at_start: Option<u64>,
    pub(crate) rss_bytes: u64,
}

impl RunShared {
    /// A run in BUILDING.
    pub(crate) fn new(init: RunInit) -> Self {
        Self {
            run_id: init.run_id,
            number: init.number,
            target_bytes: init.plan.peak_bytes(),
            params: init.params,
            plan: init.plan,
            basis: init.basis,
            started_at_ms: init.started_at_ms,
            oom_kills_at_start: init.oom_kills_at_start,
            counters: Counters::new(init.rss_bytes),
            phase: PhaseCursor::default(),
            started: Instant::now(),
            state: AtomicU8::new(State::Building as u8),
            stop: AtomicBool::new(false),
            ended_after_ms: AtomicU64::new(UNSET),
            hold_started_after_ms: AtomicU64::new(UNSET),
            last_error: Mutex::new(String::new()),
            stopped_by: Mutex::new(String::new()),
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// The one place a run's state changes. Refuses (returns false, changes nothing) what
    /// [`State::may_become`] refuses, so e.g. a run that ended cannot be revived by a late
    /// worker step. Stamps when the hold started and when the run ended.
    pub(crate) fn transition(&self, to: State) -> bool {
        let moved = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                State::from_u8(cur).may_become(to).then_some(to as u8)
            })
            .is_ok();
        if moved {
            match to {
                State::Searching => self
                    .hold_started_after_ms
                    .store(self.elapsed_ms(), Ordering::Release),
                State::Completed | State::Stopped | State::Failed => self
                    .ended_after_ms
                    .store(self.elapsed_ms(), Ordering::Release),
                State::Idle => {
                    self.counters.items.store(0, Ordering::Relaxed);
                    self.counters.payload_bytes.store(0, Ordering::Relaxed);
                }
                State::Building => {}
            }
        }
        moved
    }

    /// Asks the worker to stop, noting who asked.
    pub(crate) fn request_stop(&self, audit: Option<String>) {
        if let Some(audit) = audit {
            *self
                .stopped_by
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = audit;
        }
        self.stop.store(true, Ordering::Release);
    }

    /// Who stopped the run (audit suffix, empty when not stopped by a call).
    pub(crate) fn stopped_by(&self) -> String {
        self.stopped_by
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub(crate) fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Elapsed until now, or until the end for an ended run.
    pub(crate) fn elapsed_or_ended_ms(&self) -> u64 {
        match self.ended_after_ms.load(Ordering::Acquire) {
            UNSET => self.elapsed_ms(),
            ended => ended,
        }
    }

    /// When the current hold started, ms after the run started.
    pub(crate) fn hold_started_ms(&self) -> Option<u64> {
        let v = self.hold_started_after_ms.load(Ordering::Acquire);
        (v != UNSET).then_some(v)
    }

    pub(crate) fn note_rss(&self, rss: u64) {
        self.counters.peak_rss.fetch_max(rss, Ordering::Relaxed);
    }

    pub(crate) fn note_working_set(&self, ws: u64) {
        // UNSET is u64::MAX, so fetch_max cannot be used on it; the first sample replaces it.
        let _ = self.counters.peak_working_set.fetch_update(
            Ordering::Relaxed,
            Ordering::Relaxed,
            |cur| (cur == UNSET || ws > cur).then_some(ws),
        );
    }

    pub(crate) fn peak_working_set(&self) -> Option<u64> {
        let v = self.counters.peak_working_set.load(Ordering::Relaxed);
        (v != UNSET).then_some(v)
    }

    pub(crate) fn nodes(&self) -> u64 {
        self.counters.items.load(Ordering::Relaxed)
    }

    pub(crate) fn time_to_target_ms(&self) -> Option<u64> {
        let v = self.counters.time_to_target_ms.load(Ordering::Relaxed);
        (v != UNSET).then_some(v)
    }

    pub(crate) fn last_error(&self) -> String {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_error(&self, msg: &str) {
        msg.clone_into(
            &mut self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    /// The history record of this run's end, as it stands now.
    pub(crate) fn run_end(&self, outcome: Outcome, oom_kills_at_end: Option<u64>) -> RunEnd {
        let c = &self.counters;
        RunEnd {
            outcome,
            ended_at_ms: now_unix_ms(),
            peak_rss_bytes: c.peak_rss.load(Ordering::Relaxed),
            peak_working_set_bytes: self.peak_working_set(),
            time_to_target_ms: self.time_to_target_ms(),
            fill_rate_mb_per_second: load_f64(&c.fill_rate),
            searches: c.activity.load(Ordering::Relaxed),
            oom_kills_at_end,
            last_error: self.last_error(),
        }
    }
}

pub(crate) fn load_f64(a: &AtomicU64) -> f64 {
    f64::from_bits(a.load(Ordering::Relaxed))
}

pub(crate) fn store_f64(a: &AtomicU64, v: f64) {
    a.store(v.to_bits(), Ordering::Relaxed);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::cgroup::BasisSource;
    use crate::params::{PlannedPhase, Scope, Target, WorkloadKind};

    fn run() -> RunShared {
        RunShared::new(RunInit {
            run_id: Arc::from("run-1-abcdef"),
            number: 1,
            params: RunParams {
                target: Target::MemoryMb(64),
                duration_seconds: 0,
                log_interval_seconds: 5,
                payload_size_kb: 100,
                ramp_mb_per_second: 0.0,
                search_rate: 1000,
                keep_hot: false,
                huge_pages: false,
                scope: Scope::Process,
                allow_oom: false,
                workload: WorkloadKind::Tree,
                phases: Vec::new(),
                repeat: 1,
            },
            plan: Plan {
                phases: vec![PlannedPhase {
                    target_bytes: 64 << 20,
                    hold: None,
                    ramp_mb_per_second: 0.0,
                }],
                repeat: 1,
            },
            basis: MemoryBasis {
                limit_bytes: 512 << 20,
                source: BasisSource::CgroupV2,
                detail: "memory.max".into(),
            },
            started_at_ms: 0,
            oom_kills_at_start: None,
            rss_bytes: 10 << 20,
        })
    }

    #[test]
    fn the_lifecycle_has_exactly_these_changes() {
        use State::*;
        let legal = [
            (Building, Searching),
            (Searching, Building),
            (Building, Completed),
            (Building, Stopped),
            (Building, Failed),
            (Searching, Completed),
            (Searching, Stopped),
            (Searching, Failed),
            (Completed, Idle),
            (Stopped, Idle),
        ];
        for from in State::ALL {
            for to in State::ALL {
                assert_eq!(
                    from.may_become(to),
                    legal.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn transition_refuses_what_the_lifecycle_does_not_have() {
        let r = run();
        assert_eq!(r.state(), State::Building);
        assert!(!r.transition(State::Idle), "an active run is not freed");
        assert!(r.transition(State::Searching));
        assert!(r.hold_started_ms().is_some());
        assert!(r.transition(State::Stopped));
        assert!(
            !r.transition(State::Searching),
            "an ended run is not revived"
        );
        assert!(!r.transition(State::Failed));
        assert_eq!(r.state(), State::Stopped);
        r.counters.items.store(5, Ordering::Relaxed);
        assert!(r.transition(State::Idle));
        assert_eq!(r.nodes(), 0, "freed memory is not counted");
        assert!(!r.transition(State::Building));
    }

    #[test]
    fn the_end_is_stamped_once() {
        let r = run();
        assert!(r.transition(State::Failed));
        let ended = r.elapsed_or_ended_ms();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(r.elapsed_or_ended_ms(), ended);
        assert!(
            !r.transition(State::Idle),
            "a failed run has nothing to free"
        );
    }

    #[test]
    fn peaks_only_rise_and_the_first_working_set_replaces_unset() {
        let r = run();
        assert_eq!(r.peak_working_set(), None);
        r.note_working_set(5);
        r.note_working_set(3);
        assert_eq!(r.peak_working_set(), Some(5));
        r.note_rss(1);
        assert_eq!(r.counters.peak_rss.load(Ordering::Relaxed), 10 << 20);
    }
}
