//! The state machine and the workload thread.
//!
//! Control operations (Start, Stop, Clear, shutdown) are serialised by one lock that also owns
//! the worker handle and the held tree. Status never takes that lock: it reads the run's
//! atomics, so it answers in microseconds even during a full-speed build.

use crate::arena::{self, ArenaError, HugePages, PAGE, PayloadArena};
use crate::auth::Caller;
use crate::cgroup::{CgroupProbe, MemoryBasis};
use crate::checkpoint::{Checkpointer, Sources};
use crate::error::EngineError;
use crate::history::History;
use crate::history::model::{HistoryStatus, NewRun, Outcome, RunEnd, RunRecord};
use crate::history::tally::TallySnapshot;
use crate::logs::{LogHub, Operation, now_unix_ms};
use crate::params::{MIB, RunParams, Scope, StartSpec, Target};
use crate::procmem::{self, ProcMem};
use crate::tree::{NodeAllocError, Payload, Tree};
use rand::RngExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

/// RSS is compared with the target after at most this many bytes of new payload.
const BATCH_BYTES: usize = 8 << 20;
/// A stop is noticed at least this often while pages are being made resident.
const POPULATE_STEP: usize = 2 << 20;
/// Ramp mode grows in steps of this period.
const RAMP_STEP: Duration = Duration::from_millis(10);
/// CONTAINER scope re-reads the working set this often while holding.
const HOLD_ADJUST_PERIOD: Duration = Duration::from_millis(100);
/// Searches between clock reads in the hold loop.
const SEARCH_CHUNK: u64 = 256;
/// Niceness of the workload thread (see `WorkerCtx::run`).
const WORKER_NICE: libc::c_int = 19;
/// Window of the "current" fill rate.
const RATE_WINDOW: Duration = Duration::from_millis(500);

/// Lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Nothing held.
    Idle = 0,
    /// Growing toward the target.
    Building = 1,
    /// Holding the target and searching.
    Searching = 2,
    /// Ended on its own; tree held.
    Completed = 3,
    /// Stopped; tree held.
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
    /// Target in bytes.
    pub target_bytes: u64,
    /// Basis the target was resolved against.
    pub basis: MemoryBasis,
    /// Unix ms at start.
    pub started_at_ms: i64,
    started: Instant,
    state: AtomicU8,
    stop: AtomicBool,
    ended_after_ms: AtomicU64,
    hold_started_after_ms: AtomicU64,
    nodes: AtomicU64,
    payload_bytes: AtomicU64,
    peak_rss: AtomicU64,
    peak_working_set: AtomicU64,
    searches: AtomicU64,
    searches_per_second: AtomicU64,
    fill_rate: AtomicU64,
    current_fill_rate: AtomicU64,
    time_to_target_ms: AtomicU64,
    huge_page_bytes: AtomicU64,
    oom_kills_at_start: Option<u64>,
    last_error: Mutex<String>,
    /// Audit suffix naming who stopped the run (empty when not stopped by a call).
    stopped_by: Mutex<String>,
}

const UNSET: u64 = u64::MAX;

impl RunShared {
    /// Current state.
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }
    fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Release);
    }
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
    /// Turns the state final and stamps when; called inside `LogHub::publish_with`.
    fn end(&self, state: State) {
        self.set_state(state);
        self.ended_after_ms
            .store(self.elapsed_ms(), Ordering::Release);
    }
    pub(crate) fn note_rss(&self, rss: u64) {
        self.peak_rss.fetch_max(rss, Ordering::Relaxed);
    }
    pub(crate) fn note_working_set(&self, ws: u64) {
        // UNSET is u64::MAX, so fetch_max cannot be used on it; the first sample replaces it.
        let _ = self
            .peak_working_set
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                (cur == UNSET || ws > cur).then_some(ws)
            });
    }
    fn peak_working_set(&self) -> Option<u64> {
        let v = self.peak_working_set.load(Ordering::Relaxed);
        (v != UNSET).then_some(v)
    }
    pub(crate) fn nodes(&self) -> u64 {
        self.nodes.load(Ordering::Relaxed)
    }
    /// The history record of this run's end, as it stands now.
    fn run_end(&self, outcome: Outcome, oom_kills_at_end: Option<u64>) -> RunEnd {
        let ttt = self.time_to_target_ms.load(Ordering::Relaxed);
        RunEnd {
            outcome,
            ended_at_ms: now_unix_ms(),
            peak_rss_bytes: self.peak_rss.load(Ordering::Relaxed),
            peak_working_set_bytes: self.peak_working_set(),
            time_to_target_ms: (ttt != UNSET).then_some(ttt),
            fill_rate_mb_per_second: f64::from_bits(self.fill_rate.load(Ordering::Relaxed)),
            searches: self.searches.load(Ordering::Relaxed),
            oom_kills_at_end,
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
    fn set_error(&self, msg: &str) {
        msg.clone_into(
            &mut self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }
}

/// Status of the current or last run, read without blocking the workload.
#[derive(Debug, Clone)]
pub struct RunStatus {
    /// Run identifier.
    pub run_id: String,
    /// Validated parameters.
    pub params: RunParams,
    /// Target in bytes.
    pub target_bytes: u64,
    /// Nodes in the tree.
    pub nodes: u64,
    /// Payload bytes held.
    pub payload_bytes: u64,
    /// Peak RSS of the run.
    pub peak_rss_bytes: u64,
    /// Peak container working set seen during the run.
    pub peak_working_set_bytes: Option<u64>,
    /// Basis the target was resolved against.
    pub basis: MemoryBasis,
    /// Searches done.
    pub searches: u64,
    /// Searches per second over the last log interval.
    pub searches_per_second: f64,
    /// Unix ms at start.
    pub started_at_ms: i64,
    /// Elapsed (until end for a finished run).
    pub elapsed_ms: u64,
    /// Time left in the hold.
    pub remaining_ms: Option<u64>,
    /// Last error.
    pub last_error: String,
    /// Average fill rate MiB/s.
    pub fill_rate_mb_per_second: f64,
    /// Fill rate over the last half second, MiB/s.
    pub current_fill_rate_mb_per_second: f64,
    /// Build time to target.
    pub time_to_target_ms: Option<u64>,
    /// THP-backed bytes (sampled at log intervals).
    pub huge_page_bytes: u64,
    /// cgroup OOM kills at run start.
    pub oom_kills_at_start: Option<u64>,
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
    /// The basis now.
    pub basis: MemoryBasis,
    /// The container's memory now.
    pub container: crate::cgroup::ContainerMemory,
    /// CPU seconds used by the process.
    pub process_cpu_seconds: f64,
    /// Searches of every run of this process (monotonic).
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

/// Outcome of a Start.
#[derive(Debug, Clone)]
pub struct StartOutcome {
    /// New run id.
    pub run_id: String,
    /// Target bytes.
    pub target_bytes: u64,
    /// Basis.
    pub basis: MemoryBasis,
    /// Parameters in effect.
    pub params: RunParams,
    /// Bytes of a previous tree freed first.
    pub previous_run_released_bytes: u64,
}

/// Outcome of a Stop.
#[derive(Debug, Clone)]
pub struct StopOutcome {
    /// State afterwards.
    pub state: State,
    /// Whether a run was stopped.
    pub stopped: bool,
    /// Which run.
    pub run_id: String,
    /// What happened, in words.
    pub message: String,
}

/// Outcome of a Clear.
#[derive(Debug, Clone, Default)]
pub struct ClearOutcome {
    /// Payload bytes released.
    pub released_bytes: u64,
    /// RSS before.
    pub rss_before_bytes: u64,
    /// RSS after.
    pub rss_after_bytes: u64,
    /// Nodes freed.
    pub nodes_released: u64,
    /// Whether a run had to be stopped.
    pub stopped_running: bool,
    /// Time freeing took.
    pub duration_ms: u64,
}

/// The memory a run holds: the tree, its payload slabs, and keys in insertion order (so the
/// container hold can give back the newest nodes first and their slab space with them).
#[derive(Debug, Default)]
struct Workload {
    tree: Tree,
    arena: Option<PayloadArena>,
    keys: Vec<u64>,
}

impl Workload {
    /// Frees everything and returns (payload bytes, nodes) released.
    fn release(self) -> (u64, u64) {
        let bytes = self.arena.as_ref().map_or(0, |a| a.used_bytes() as u64);
        let nodes = self.tree.len();
        drop(self.tree);
        drop(self.keys);
        drop(self.arena);
        procmem::trim_heap();
        (bytes, nodes)
    }
}

struct Worker {
    join: JoinHandle<Workload>,
    thread: Thread,
    shared: Arc<RunShared>,
}

#[derive(Default)]
struct Control {
    worker: Option<Worker>,
    held: Option<Workload>,
}

/// Where the engine reads the OS from (injectable for tests).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Filesystem root for /proc and /sys reads ("/" in production).
    pub fs_root: PathBuf,
    /// The resolved cgroup.
    pub cgroup: CgroupProbe,
    /// Host total memory, bytes (from sysinfo).
    pub host_total_bytes: u64,
    /// `--allow-host-oom`: allow_oom runs even without any memory limit.
    pub allow_host_oom: bool,
    /// Who this process is (shown in Status).
    pub instance: Arc<crate::instance::Instance>,
}

/// The stress engine: one run at a time, on its own OS thread.
pub struct Engine {
    logs: Arc<LogHub>,
    history: Arc<History>,
    checkpointer: Arc<Checkpointer>,
    searches_total: Arc<AtomicU64>,
    procmem: ProcMem,
    cgroup: CgroupProbe,
    host_total_bytes: u64,
    allow_host_oom: bool,
    instance: Arc<crate::instance::Instance>,
    thp_enabled_path: PathBuf,
    control: Mutex<Control>,
    current: Mutex<Option<Arc<RunShared>>>,
    shutting_down: AtomicBool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// A new engine publishing to `logs` and recording runs in `history`; starts the
    /// checkpoint thread.
    pub fn new(
        config: EngineConfig,
        logs: Arc<LogHub>,
        history: Arc<History>,
    ) -> std::io::Result<Self> {
        let procmem = ProcMem::new(&config.fs_root);
        let checkpointer = Arc::new(Checkpointer::default());
        let (notice_logs, notice_history) = (Arc::clone(&logs), Arc::clone(&history));
        let (notice_procmem, notice_cgroup) = (procmem.clone(), config.cgroup.clone());
        checkpointer.spawn(Sources {
            history: Arc::clone(&history),
            procmem: procmem.clone(),
            cgroup: config.cgroup.clone(),
            after_write: Box::new(move || {
                publish_history_notices(
                    &notice_logs,
                    &notice_history,
                    &notice_procmem,
                    &notice_cgroup,
                );
            }),
        })?;
        Ok(Self {
            logs,
            history,
            checkpointer,
            searches_total: Arc::new(AtomicU64::new(0)),
            procmem,
            thp_enabled_path: config
                .fs_root
                .join("sys/kernel/mm/transparent_hugepage/enabled"),
            cgroup: config.cgroup,
            host_total_bytes: config.host_total_bytes,
            allow_host_oom: config.allow_host_oom,
            instance: config.instance,
            control: Mutex::new(Control::default()),
            current: Mutex::new(None),
            shutting_down: AtomicBool::new(false),
        })
    }

    /// The run history.
    pub fn history(&self) -> &Arc<History> {
        &self.history
    }

    /// Publishes a NOTICE outside any run (startup findings, history faults).
    pub fn notice(&self, message: String) {
        self.log(Operation::Notice, &Arc::from(""), message);
    }

    /// The log hub.
    pub fn logs(&self) -> &Arc<LogHub> {
        &self.logs
    }

    /// The memory basis now.
    pub fn basis(&self) -> MemoryBasis {
        self.cgroup.basis(self.host_total_bytes)
    }

    /// RSS now (0 if unreadable).
    pub fn rss_bytes(&self) -> u64 {
        self.procmem.rss_bytes().unwrap_or(0)
    }

    fn current_run(&self) -> Option<Arc<RunShared>> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.current_run().map_or(State::Idle, |r| r.state())
    }

    fn log(&self, op: Operation, run_id: &Arc<str>, msg: String) {
        self.log_then(op, run_id, msg, || {});
    }

    /// Logs with `commit` applied atomically with the entry (see `LogHub::publish_with`).
    fn log_then(&self, op: Operation, run_id: &Arc<str>, msg: String, commit: impl FnOnce()) {
        publish_measured(
            &self.logs,
            &self.procmem,
            &self.cgroup,
            op,
            run_id,
            msg,
            commit,
        );
    }

    fn lock_control(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a run (see the proto for the rules); its log entries name `caller`.
    pub fn start(&self, spec: &StartSpec, caller: &Caller) -> Result<StartOutcome, EngineError> {
        let mut control = self.lock_control();
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(EngineError::ShuttingDown);
        }
        if let Some(w) = &control.worker {
            let state = w.shared.state();
            if state.is_active() {
                return Err(EngineError::RunInProgress {
                    run_id: w.shared.run_id.to_string(),
                    state: state.name(),
                });
            }
        }
        let basis = self.basis();
        let readable = self.cgroup.working_set_bytes().is_some();
        let host = crate::params::HostGuard {
            available_bytes: self.procmem.mem_available_bytes(),
            allow_host_oom: self.allow_host_oom,
        };
        let (params, target_bytes) = crate::params::validate(spec, &basis, readable, &host)?;

        let audit = caller.audit();
        let previous = self.release_locked(&mut control, "before the next run", &audit);

        let started_at_ms = now_unix_ms();
        let oom_kills_at_start = self.cgroup.oom_kills();
        let (number, run_id) = self.history.begin(
            &NewRun {
                params: params.clone(),
                target_bytes,
                basis: basis.clone(),
                started_at_ms,
                oom_kills_at_start,
            },
            |n| format!("run-{n}-{:06x}", rand::rng().random::<u32>() & 0xFF_FFFF),
        );
        self.publish_history_notices();
        let run_id: Arc<str> = Arc::from(run_id);
        let shared = Arc::new(RunShared {
            run_id: Arc::clone(&run_id),
            number,
            params: params.clone(),
            target_bytes,
            basis: basis.clone(),
            started_at_ms,
            started: Instant::now(),
            state: AtomicU8::new(State::Building as u8),
            stop: AtomicBool::new(false),
            ended_after_ms: AtomicU64::new(UNSET),
            hold_started_after_ms: AtomicU64::new(UNSET),
            nodes: AtomicU64::new(0),
            payload_bytes: AtomicU64::new(0),
            peak_rss: AtomicU64::new(self.rss_bytes()),
            peak_working_set: AtomicU64::new(UNSET),
            searches: AtomicU64::new(0),
            searches_per_second: AtomicU64::new(0),
            fill_rate: AtomicU64::new(0),
            current_fill_rate: AtomicU64::new(0),
            time_to_target_ms: AtomicU64::new(UNSET),
            huge_page_bytes: AtomicU64::new(0),
            oom_kills_at_start,
            last_error: Mutex::new(String::new()),
            stopped_by: Mutex::new(String::new()),
        });
        let ctx = WorkerCtx {
            shared: Arc::clone(&shared),
            logs: Arc::clone(&self.logs),
            history: Arc::clone(&self.history),
            checkpointer: Arc::clone(&self.checkpointer),
            searches_total: Arc::clone(&self.searches_total),
            procmem: self.procmem.clone(),
            cgroup: self.cgroup.clone(),
            thp_enabled_path: self.thp_enabled_path.clone(),
        };
        ctx.log_start(&audit);
        let join = match std::thread::Builder::new()
            .name("stress-worker".into())
            .spawn(move || ctx.run())
        {
            Ok(join) => join,
            Err(e) => {
                // The run never existed for Status; the log and the history say why its start
                // entry has no end.
                let msg = format!("could not start the workload thread: {e}");
                shared.set_error(&msg);
                self.record_end(&shared, Outcome::Failed);
                self.log(
                    Operation::StressTestError,
                    &run_id,
                    format!("run failed: {msg}"),
                );
                return Err(EngineError::WorkerSpawn(e));
            }
        };
        let thread = join.thread().clone();
        control.worker = Some(Worker {
            join,
            thread,
            shared: Arc::clone(&shared),
        });
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&shared));
        self.checkpointer.track(shared);
        Ok(StartOutcome {
            run_id: run_id.to_string(),
            target_bytes,
            basis,
            params,
            previous_run_released_bytes: previous.released_bytes,
        })
    }

    /// Stops a running run and waits until its worker has stopped allocating; the stop entry
    /// names `caller`.
    pub fn stop(&self, caller: &Caller) -> StopOutcome {
        let mut control = self.lock_control();
        self.stop_locked(&mut control, Some(caller))
    }

    /// `by`: who asked (named in the STRESS_TEST_STOPPED entry); `None` for shutdown.
    fn stop_locked(&self, control: &mut Control, by: Option<&Caller>) -> StopOutcome {
        let Some(worker) = control.worker.take() else {
            return StopOutcome {
                state: self.state(),
                stopped: false,
                run_id: String::new(),
                message: "no run in progress".into(),
            };
        };
        let was = worker.shared.state();
        let run_id = worker.shared.run_id.to_string();
        if let Some(by) = by {
            *worker
                .shared
                .stopped_by
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = by.audit();
        }
        worker.shared.stop.store(true, Ordering::Release);
        worker.thread.unpark();
        let shared = Arc::clone(&worker.shared);
        self.join_into(control, worker);
        let state = shared.state();
        if was.is_active() {
            StopOutcome {
                state,
                stopped: true,
                message: format!("run {run_id} stopped while {}", was.name()),
                run_id,
            }
        } else {
            StopOutcome {
                state,
                stopped: false,
                message: format!("no run in progress (run {run_id} already {})", was.name()),
                run_id,
            }
        }
    }

    /// Joins a worker and keeps what it holds.
    fn join_into(&self, control: &mut Control, worker: Worker) {
        match worker.join.join() {
            Ok(workload) => {
                if !workload.tree.is_empty() || workload.arena.is_some() {
                    control.held = Some(workload);
                }
            }
            Err(_) => {
                // The worker panicked (a bug); its memory was freed while unwinding.
                let shared = &worker.shared;
                shared.set_error("the workload thread panicked");
                self.record_end(shared, Outcome::Failed);
                self.log_then(
                    Operation::StressTestError,
                    &shared.run_id,
                    "the workload thread panicked; its memory was released".into(),
                    || shared.end(State::Failed),
                );
            }
        }
    }

    /// Stops a running run, frees the tree and gives its pages back to the OS; the entries
    /// name `caller`.
    pub fn clear(&self, caller: &Caller) -> ClearOutcome {
        let mut control = self.lock_control();
        let stopped_running = control
            .worker
            .as_ref()
            .is_some_and(|w| w.shared.state().is_active());
        if stopped_running {
            self.stop_locked(&mut control, Some(caller));
        }
        let mut out = self.release_locked(&mut control, "on Clear", &caller.audit());
        out.stopped_running = stopped_running;
        out
    }

    /// Frees whatever is held (joining a finished worker first). Logs MEMORY_CLEARED, ending
    /// with `audit` (who asked), if anything was freed.
    fn release_locked(&self, control: &mut Control, why: &str, audit: &str) -> ClearOutcome {
        if let Some(worker) = control.worker.take() {
            // Not active (callers check), so this returns at once.
            self.join_into(control, worker);
        }
        let rss_before = self.rss_bytes();
        let t0 = Instant::now();
        let (released_bytes, nodes_released) =
            control.held.take().map_or((0, 0), Workload::release);
        let duration_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        let rss_after = self.rss_bytes();
        let run = self.current_run();
        if let Some(run) = &run
            && matches!(run.state(), State::Completed | State::Stopped)
        {
            run.set_state(State::Idle);
            run.nodes.store(0, Ordering::Relaxed);
            run.payload_bytes.store(0, Ordering::Relaxed);
        }
        if released_bytes > 0 || nodes_released > 0 {
            let run_id = run.map_or_else(|| Arc::from(""), |r| Arc::clone(&r.run_id));
            self.log(
                Operation::MemoryCleared,
                &run_id,
                format!(
                    "freed {nodes_released} nodes and {:.1} MiB of payload {why} in {duration_ms} ms; RSS {:.1} -> {:.1} MiB{audit}",
                    mib(released_bytes),
                    mib(rss_before),
                    mib(rss_after)
                ),
            );
        }
        ClearOutcome {
            released_bytes,
            rss_before_bytes: rss_before,
            rss_after_bytes: rss_after,
            nodes_released,
            stopped_running: false,
            duration_ms,
        }
    }

    /// Refuses new runs and stops the running one (recorded as stopped), then ends the
    /// checkpoint thread.
    pub fn shutdown(&self) -> StopOutcome {
        self.shutting_down.store(true, Ordering::Release);
        let out = self.stop_locked(&mut self.lock_control(), None);
        self.checkpointer.shutdown();
        out
    }

    /// Closes `run` in the history with what it reached.
    fn record_end(&self, run: &RunShared, outcome: Outcome) {
        record_end(&self.history, &self.cgroup, run, outcome);
        self.publish_history_notices();
    }

    fn publish_history_notices(&self) {
        publish_history_notices(&self.logs, &self.history, &self.procmem, &self.cgroup);
    }

    /// Status snapshot; never waits for the workload.
    pub fn status(&self) -> StatusSnapshot {
        let run = self.current_run();
        let rss = self.rss_bytes();
        let state = run.as_ref().map_or(State::Idle, |r| r.state());
        let (container, basis) = self.cgroup.read_with_basis(self.host_total_bytes);
        let run = run.map(|r| {
            if state.is_active() {
                r.note_rss(rss);
                if let Some(ws) = container.working_set_bytes {
                    r.note_working_set(ws);
                }
            }
            let ended = r.ended_after_ms.load(Ordering::Acquire);
            let elapsed_ms = if ended == UNSET {
                r.elapsed_ms()
            } else {
                ended
            };
            let hold = r.hold_started_after_ms.load(Ordering::Acquire);
            let remaining_ms = (state == State::Searching
                && hold != UNSET
                && r.params.duration_seconds > 0)
                .then(|| {
                    (hold + u64::from(r.params.duration_seconds) * 1000).saturating_sub(elapsed_ms)
                });
            let ttt = r.time_to_target_ms.load(Ordering::Relaxed);
            RunStatus {
                run_id: r.run_id.to_string(),
                params: r.params.clone(),
                target_bytes: r.target_bytes,
                nodes: r.nodes.load(Ordering::Relaxed),
                payload_bytes: r.payload_bytes.load(Ordering::Relaxed),
                peak_rss_bytes: r.peak_rss.load(Ordering::Relaxed),
                peak_working_set_bytes: r.peak_working_set(),
                basis: r.basis.clone(),
                searches: r.searches.load(Ordering::Relaxed),
                searches_per_second: f64::from_bits(r.searches_per_second.load(Ordering::Relaxed)),
                started_at_ms: r.started_at_ms,
                elapsed_ms,
                remaining_ms,
                last_error: r
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
                fill_rate_mb_per_second: f64::from_bits(r.fill_rate.load(Ordering::Relaxed)),
                current_fill_rate_mb_per_second: if state == State::Building {
                    f64::from_bits(r.current_fill_rate.load(Ordering::Relaxed))
                } else {
                    0.0
                },
                time_to_target_ms: (ttt != UNSET).then_some(ttt),
                huge_page_bytes: r.huge_page_bytes.load(Ordering::Relaxed),
                oom_kills_at_start: r.oom_kills_at_start,
            }
        });
        StatusSnapshot {
            state,
            run,
            rss_bytes: rss,
            basis,
            container,
            process_cpu_seconds: procmem::process_cpu_seconds(),
            searches_total: self.searches_total.load(Ordering::Relaxed),
            history: HistoryView {
                status: self.history.status(),
                previous_run: self.history.previous_run(),
                tally: self.history.tally().snapshot(),
            },
            instance: Arc::clone(&self.instance),
        }
    }
}

/// Bytes to MiB as a float, for messages and log fields.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

/// Why a phase ended early.
enum Interrupt {
    Stopped,
    Failed(String),
}

impl From<ArenaError> for Interrupt {
    fn from(e: ArenaError) -> Self {
        Self::Failed(e.to_string())
    }
}

impl From<NodeAllocError> for Interrupt {
    fn from(e: NodeAllocError) -> Self {
        Self::Failed(e.to_string())
    }
}

/// Everything the worker thread needs; owned by it.
struct WorkerCtx {
    shared: Arc<RunShared>,
    logs: Arc<LogHub>,
    history: Arc<History>,
    checkpointer: Arc<Checkpointer>,
    searches_total: Arc<AtomicU64>,
    procmem: ProcMem,
    cgroup: CgroupProbe,
    thp_enabled_path: PathBuf,
}

/// Rate over a sliding window of (time, bytes) samples.
struct RateMeter {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl RateMeter {
    fn new(t: Instant) -> Self {
        let mut samples = std::collections::VecDeque::with_capacity(64);
        samples.push_back((t, 0));
        Self { samples }
    }
    fn push(&mut self, t: Instant, total: u64) -> f64 {
        while self.samples.len() > 1
            && self
                .samples
                .get(1)
                .is_some_and(|(t1, _)| t.duration_since(*t1) >= RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        if self.samples.len() >= 64 {
            self.samples.pop_front();
        }
        self.samples.push_back((t, total));
        match (self.samples.front(), self.samples.back()) {
            (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => {
                mib(b1.saturating_sub(*b0)) / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// Publishes an entry stamped with the process RSS and the container working set now (RSS 0
/// if unreadable), running `commit` with it (see `LogHub::publish_with`). Shared by the
/// control plane and the worker so every entry is measured the same way.
fn publish_measured(
    logs: &LogHub,
    procmem: &ProcMem,
    cgroup: &CgroupProbe,
    op: Operation,
    run_id: &Arc<str>,
    msg: String,
    commit: impl FnOnce(),
) {
    let rss = procmem.rss_bytes().unwrap_or(0);
    let ws = cgroup.working_set_bytes().map(mib);
    logs.publish_with(op, run_id, mib(rss), ws, msg, commit);
}

/// Publishes what the history store has to say since it was last asked (e.g. that it fell
/// back to memory after a write failed).
fn publish_history_notices(
    logs: &LogHub,
    history: &History,
    procmem: &ProcMem,
    cgroup: &CgroupProbe,
) {
    for msg in history.take_notices() {
        publish_measured(
            logs,
            procmem,
            cgroup,
            Operation::Notice,
            &Arc::from(""),
            msg,
            || {},
        );
    }
}

/// Closes `run` in the history: the one place a run's end is recorded, whoever ended it.
fn record_end(history: &History, cgroup: &CgroupProbe, run: &RunShared, outcome: Outcome) {
    if let Some(ws) = cgroup.working_set_bytes() {
        run.note_working_set(ws);
    }
    history.finish(run.number, &run.run_end(outcome, cgroup.oom_kills()));
}

impl WorkerCtx {
    fn log(&self, op: Operation, msg: String) {
        self.log_then(op, msg, || {});
    }

    /// Logs with `commit` applied atomically with the entry (see `LogHub::publish_with`).
    fn log_then(&self, op: Operation, msg: String, commit: impl FnOnce()) {
        publish_measured(
            &self.logs,
            &self.procmem,
            &self.cgroup,
            op,
            &self.shared.run_id,
            msg,
            commit,
        );
    }

    /// Records the run's end in the history, then logs its closing entry and turns its state
    /// final in the same step (so a client that sees the entry finds the record).
    fn finish(&self, op: Operation, msg: String, state: State, outcome: Outcome) {
        record_end(&self.history, &self.cgroup, &self.shared, outcome);
        publish_history_notices(&self.logs, &self.history, &self.procmem, &self.cgroup);
        self.log_then(op, msg, || self.shared.end(state));
    }

    /// The quantity the target is about: process RSS or container working set.
    fn measure(&self) -> Result<u64, Interrupt> {
        let rss = self.procmem.rss_bytes();
        if let Some(r) = rss {
            self.shared.note_rss(r);
        }
        let value = match self.shared.params.scope {
            Scope::Process => rss,
            Scope::Container => {
                let ws = self.cgroup.working_set_bytes();
                if let Some(ws) = ws {
                    self.shared.note_working_set(ws);
                }
                ws
            }
        };
        value.ok_or_else(|| {
            Interrupt::Failed(match self.shared.params.scope {
                Scope::Process => "cannot read the process RSS (/proc/self/statm)".into(),
                Scope::Container => {
                    "cannot read the container working set (cgroup memory files)".into()
                }
            })
        })
    }

    /// Sleeps up to `d`, waking at once on Stop.
    fn nap(&self, d: Duration) {
        if !self.shared.stopping() && !d.is_zero() {
            std::thread::park_timeout(d);
        }
    }

    /// Logs STRESS_TEST_START, ending with `audit` (who started it). Called by `Engine::start`
    /// before the worker exists, so the entry is kept by the time the Start RPC returns.
    fn log_start(&self, audit: &str) {
        let s = &self.shared;
        let p = &s.params;
        let target_words = match p.target {
            Target::MemoryMb(mb) => format!("{mb} MiB"),
            Target::Percent(pc) => format!("{pc}% of {:.1} MiB", mib(s.basis.limit_bytes)),
        };
        let scope = match p.scope {
            Scope::Process => "process RSS",
            Scope::Container => "container working set",
        };
        let duration = if p.duration_seconds == 0 {
            "until stopped".to_string()
        } else {
            format!("{} s", p.duration_seconds)
        };
        let ramp = if p.ramp_mb_per_second > 0.0 {
            format!("{} MiB/s", p.ramp_mb_per_second)
        } else {
            "full speed".into()
        };
        self.log(
            Operation::StressTestStart,
            format!(
                "target {target_words} = {} bytes ({scope}); memory limit {:.1} MiB from {}; hold {duration}; payload {} KiB; ramp {ramp}; search rate {}/s; keep_hot {}; huge_pages {}{}{audit}",
                s.target_bytes,
                mib(s.basis.limit_bytes),
                s.basis.detail,
                p.payload_size_kb,
                p.search_rate,
                p.keep_hot,
                p.huge_pages,
                if p.allow_oom && s.target_bytes >= s.basis.limit_bytes {
                    "; allow_oom: growing past the limit until the kernel OOM-kills stressd"
                } else {
                    ""
                }
            ),
        );
    }

    fn run(self) -> Workload {
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
        let s = &self.shared;
        let p = &s.params;
        let mut huge = p.huge_pages;
        if huge {
            let mode = std::fs::read_to_string(&self.thp_enabled_path).unwrap_or_default();
            if !(mode.contains("[always]") || mode.contains("[madvise]")) {
                huge = false;
                self.log(
                    Operation::Notice,
                    format!(
                        "huge_pages asked for, but transparent huge pages are {} on this node; using 4 KiB pages",
                        if mode.is_empty() { "unavailable".to_string() } else { format!("'{}'", mode.trim()) }
                    ),
                );
            }
        }
        let mut w = Workload {
            arena: Some(PayloadArena::new(huge)),
            ..Workload::default()
        };
        let outcome = self.build(&mut w).and_then(|()| self.hold(&mut w));
        let summary = |w: &Workload| {
            format!(
                "{} nodes, {:.1} MiB payload, peak RSS {:.1} MiB, {} searches",
                w.tree.len(),
                mib(w.arena.as_ref().map_or(0, |a| a.used_bytes() as u64)),
                mib(s.peak_rss.load(Ordering::Relaxed)),
                s.searches.load(Ordering::Relaxed)
            )
        };
        match outcome {
            Ok(()) => {
                self.finish(
                    Operation::StressTestComplete,
                    format!(
                        "run complete: {}; the tree stays in memory until Clear",
                        summary(&w)
                    ),
                    State::Completed,
                    Outcome::Completed,
                );
                w
            }
            Err(Interrupt::Stopped) => {
                self.finish(
                    Operation::StressTestStopped,
                    format!(
                        "run stopped: {}; the tree stays in memory until Clear{}",
                        summary(&w),
                        s.stopped_by.lock().unwrap_or_else(PoisonError::into_inner)
                    ),
                    State::Stopped,
                    Outcome::Stopped,
                );
                w
            }
            Err(Interrupt::Failed(msg)) => {
                let what = summary(&w);
                let (bytes, nodes) = w.release();
                s.nodes.store(0, Ordering::Relaxed);
                s.payload_bytes.store(0, Ordering::Relaxed);
                s.set_error(&msg);
                self.finish(
                    Operation::StressTestError,
                    format!(
                        "run failed: {msg} (reached {what}); freed {nodes} nodes and {:.1} MiB \
                         of payload",
                        mib(bytes)
                    ),
                    State::Failed,
                    Outcome::Failed,
                );
                Workload::default()
            }
        }
    }

    fn publish_counts(&self, w: &Workload) {
        self.shared.nodes.store(w.tree.len(), Ordering::Relaxed);
        self.shared.payload_bytes.store(
            w.arena.as_ref().map_or(0, |a| a.used_bytes() as u64),
            Ordering::Relaxed,
        );
    }

    fn check_oom(&self, seen: &mut Option<u64>) {
        let (Some(base), Some(now)) = (self.shared.oom_kills_at_start, self.cgroup.oom_kills())
        else {
            return;
        };
        if now > seen.unwrap_or(base) {
            *seen = Some(now);
            self.log(
                Operation::Notice,
                format!(
                    "the container's cgroup counted {} OOM kill(s) since this run started",
                    now - base
                ),
            );
        }
    }

    fn build(&self, w: &mut Workload) -> Result<(), Interrupt> {
        let s = &self.shared;
        let p = &s.params;
        let interval = Duration::from_secs(u64::from(p.log_interval_seconds));
        let t0 = Instant::now();
        let start_value = self.measure()?;
        self.log(
            Operation::BuildTreeStart,
            format!(
                "building toward {:.1} MiB from {:.1} MiB",
                mib(s.target_bytes),
                mib(start_value)
            ),
        );
        let mut grown: u64 = 0;
        let mut meter = RateMeter::new(t0);
        let mut next_log = t0 + interval;
        let mut oom_seen = None;
        let ramp_bps = p.ramp_mb_per_second * MIB as f64;
        let ramp_step = ((ramp_bps * RAMP_STEP.as_secs_f64()) as usize).max(PAGE);
        // A checkpoint after every 1 % of the limit grown: where an OOM kill lands is then
        // known to within 1 % even at full speed.
        let checkpoint_step = (s.basis.limit_bytes / 100).max(PAGE as u64);
        let mut next_checkpoint = start_value + checkpoint_step;
        loop {
            if s.stopping() {
                return Err(Interrupt::Stopped);
            }
            let now_value = self.measure()?;
            if now_value >= next_checkpoint {
                self.checkpointer.poke();
                next_checkpoint = now_value + checkpoint_step;
            }
            let deficit = s.target_bytes.saturating_sub(now_value);
            if deficit < PAGE as u64 {
                break;
            }
            let mut budget = usize::try_from(deficit).unwrap_or(usize::MAX);
            if ramp_bps > 0.0 {
                let allowed = (ramp_bps * t0.elapsed().as_secs_f64()) as u64;
                let allowance = allowed.saturating_sub(grown) as usize;
                if allowance < ramp_step.min(budget) {
                    let wait = (grown as f64 + ramp_step.min(budget) as f64) / ramp_bps
                        - t0.elapsed().as_secs_f64();
                    self.nap(Duration::from_secs_f64(wait.clamp(0.0, 0.05)));
                    continue;
                }
                budget = budget.min(allowance);
            }
            grown += self.grow(w, budget)?;
            let now = Instant::now();
            let elapsed = now.duration_since(t0).as_secs_f64();
            if elapsed > 0.0 {
                s.fill_rate
                    .store((mib(grown) / elapsed).to_bits(), Ordering::Relaxed);
            }
            s.current_fill_rate
                .store(meter.push(now, grown).to_bits(), Ordering::Relaxed);
            self.publish_counts(w);
            if now >= next_log {
                next_log = now + interval;
                self.check_oom(&mut oom_seen);
                self.log(
                    Operation::BuildTreeTarget,
                    format!(
                        "building: {:.1} of {:.1} MiB ({:.0}%), {} nodes, {:.1} MiB/s",
                        mib(now_value),
                        mib(s.target_bytes),
                        100.0 * now_value as f64 / s.target_bytes as f64,
                        w.tree.len(),
                        mib(grown) / elapsed.max(1e-9)
                    ),
                );
            }
        }
        let took = t0.elapsed();
        let took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        let rate = mib(grown) / took.as_secs_f64().max(1e-9);
        s.fill_rate.store(rate.to_bits(), Ordering::Relaxed);
        s.time_to_target_ms.store(took_ms, Ordering::Relaxed);
        self.history
            .tally()
            .observe_time_to_target(took.as_secs_f64());
        self.publish_counts(w);
        if let Some(a) = &w.arena
            && a.huge_pages() != HugePages::Off
        {
            self.sample_huge(a);
        }
        let reached = self.measure()?;
        self.log(
            Operation::BuildTreeComplete,
            format!(
                "target reached: {:.1} MiB (target {:.1} MiB) in {took_ms} ms at {rate:.1} MiB/s; {} nodes, {:.1} MiB payload in {} slabs, tree height {}",
                mib(reached),
                mib(s.target_bytes),
                w.tree.len(),
                mib(w.arena.as_ref().map_or(0, |a| a.used_bytes() as u64)),
                w.arena.as_ref().map_or(0, PayloadArena::slab_count),
                w.tree.height()
            ),
        );
        Ok(())
    }

    fn sample_huge(&self, a: &PayloadArena) {
        let bytes = self.procmem.anon_huge_bytes().unwrap_or(0);
        self.shared.huge_page_bytes.store(bytes, Ordering::Relaxed);
        if a.huge_pages() == HugePages::Refused {
            self.log(
                Operation::Notice,
                "the kernel refused MADV_HUGEPAGE; payloads use 4 KiB pages".into(),
            );
        }
    }

    /// Adds up to `budget` bytes of payload in nodes; returns bytes added. Checks Stop between
    /// page-population steps and keeps what was made resident when stopped.
    fn grow(&self, w: &mut Workload, budget: usize) -> Result<u64, Interrupt> {
        let Workload { tree, arena, keys } = w;
        let Some(arena) = arena.as_mut() else {
            return Ok(0);
        };
        let payload_size = self.shared.params.payload_size_kb as usize * 1024;
        let batch_cap = budget.min(BATCH_BYTES.max(payload_size));
        let min_len = payload_size.min(PAGE);
        // Carve a batch that stays inside one slab so it is one contiguous range.
        let mut batch: Vec<Payload> = Vec::new();
        batch
            .try_reserve(batch_cap / payload_size.max(1) + 1)
            .map_err(|_| Interrupt::Failed("could not allocate batch bookkeeping".into()))?;
        let mut left = batch_cap;
        while left >= min_len {
            let len = payload_size.min(left);
            if !batch.is_empty() && arena.room_in_current_slab() < len {
                break;
            }
            batch.push(arena.carve(len)?);
            left -= len;
        }
        let (Some(first), Some(last)) = (batch.first().copied(), batch.last().copied()) else {
            return Ok(0);
        };
        let start = first.ptr.as_ptr() as usize;
        let end = last.ptr.as_ptr() as usize + last.len;
        keys.try_reserve(batch.len())
            .map_err(|_| Interrupt::Failed("could not grow the key list".into()))?;
        // Populate in steps and insert each node as soon as its payload is resident. The
        // stamping and inserting between two MADV_POPULATE_WRITE calls (which hold mmap_lock
        // for reading) leave the lock free long enough for a waiting writer — a tokio thread
        // growing its malloc heap — so Status and Stop never wait out a whole build.
        let mut added = 0u64;
        let mut done_to = start;
        let mut next = 0;
        let mut rng = rand::rng();
        let mut insert = |pl: Payload| -> Result<(), Interrupt> {
            let mut key: u64 = rng.random();
            // SAFETY: pl is a resident range inside a live slab.
            unsafe { arena::stamp(pl, key) };
            while !tree.insert(key, pl)? {
                key = rng.random();
            }
            keys.push(key);
            added += pl.len as u64;
            Ok(())
        };
        while done_to < end && !self.shared.stopping() {
            let step_end = (done_to + POPULATE_STEP).min(end);
            // SAFETY: [done_to, step_end) lies inside the batch, carved from a live slab.
            unsafe {
                arena::populate(done_to, step_end - done_to)?;
            }
            done_to = step_end;
            while let Some(&pl) = batch.get(next)
                && pl.ptr.as_ptr() as usize + pl.len <= done_to
            {
                insert(pl)?;
                next += 1;
            }
        }
        if next < batch.len() {
            // Stopped mid-batch: give back what was not made resident (newest first) and keep
            // the resident part of the payload the stop landed in.
            while batch.len() > next + 1 {
                if let Some(pl) = batch.pop() {
                    arena.release_last(pl);
                }
            }
            if let Some(pl) = batch.pop() {
                let resident = done_to.saturating_sub(pl.ptr.as_ptr() as usize);
                if resident == 0 {
                    arena.release_last(pl);
                } else if let Some(cut) = arena.shrink_last(pl, resident) {
                    insert(cut)?;
                }
            }
        }
        Ok(added)
    }

    /// Gives back the newest nodes (and, for the last one, the tail of its payload) until
    /// `excess` bytes are freed. Returns bytes freed.
    fn shrink(&self, w: &mut Workload, excess: u64) -> u64 {
        let Some(arena) = w.arena.as_mut() else {
            return 0;
        };
        let mut freed = 0u64;
        while freed + (PAGE as u64) <= excess {
            let Some(&key) = w.keys.last() else { break };
            let Some(payload) = w.tree.payload_mut(key) else {
                break;
            };
            let left = usize::try_from(excess - freed).unwrap_or(usize::MAX);
            if payload.len > left {
                // Cut the newest payload rather than overshoot below the target.
                let new_len = payload.len - left;
                if let Some(cut) = arena.shrink_last(*payload, new_len) {
                    *payload = cut;
                    freed += left as u64;
                }
                break;
            }
            w.keys.pop();
            if let Some(pl) = w.tree.remove(key) {
                arena.release_last(pl);
                freed += pl.len as u64;
            }
        }
        if freed > 0 {
            procmem::trim_heap();
        }
        freed
    }

    fn hold(&self, w: &mut Workload) -> Result<(), Interrupt> {
        let s = &self.shared;
        let p = &s.params;
        let interval = Duration::from_secs(u64::from(p.log_interval_seconds));
        let t0 = Instant::now();
        let deadline = (p.duration_seconds > 0)
            .then(|| t0 + Duration::from_secs(u64::from(p.duration_seconds)));
        // SEARCHING becomes visible together with its SEARCH_TREE_START entry.
        self.log_then(
            Operation::SearchTreeStart,
            format!(
                "holding {} for {}; {} searches/s{}{}",
                match p.scope {
                    Scope::Process => format!("{:.1} MiB of process RSS", mib(s.target_bytes)),
                    Scope::Container => format!(
                        "the container working set at {:.1} MiB",
                        mib(s.target_bytes)
                    ),
                },
                if p.duration_seconds == 0 {
                    "until stopped".to_string()
                } else {
                    format!("{} s", p.duration_seconds)
                },
                if p.search_rate == 0 {
                    "unthrottled".to_string()
                } else {
                    p.search_rate.to_string()
                },
                if p.keep_hot {
                    "; keeping every payload page hot"
                } else {
                    ""
                },
                if p.scope == Scope::Container {
                    "; adjusting the tree every 100 ms"
                } else {
                    ""
                },
            ),
            || {
                s.set_state(State::Searching);
                s.hold_started_after_ms
                    .store(s.elapsed_ms(), Ordering::Release);
            },
        );
        self.checkpointer.poke();
        let band = (s.target_bytes / 200).max(2 * MIB);
        let mut rng = rand::rng();
        let mut total: u64 = 0;
        let mut hits: u64 = 0;
        let mut interval_start = (t0, 0u64);
        let mut next_log = t0 + interval;
        let mut next_adjust = t0 + HOLD_ADJUST_PERIOD;
        let mut oom_seen = None;
        let mut checksum = 0u64;
        loop {
            if s.stopping() {
                return Err(Interrupt::Stopped);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            // Searches due now (all of a chunk when unthrottled).
            let due = if p.search_rate == 0 {
                SEARCH_CHUNK
            } else {
                let allowed = (p.search_rate as f64 * now.duration_since(t0).as_secs_f64()) as u64;
                allowed.saturating_sub(total).min(SEARCH_CHUNK)
            };
            for i in 0..due {
                let key = if i % 2 == 0 && !w.keys.is_empty() {
                    w.keys[rng.random_range(0..w.keys.len())]
                } else {
                    rng.random()
                };
                if let Some(hit) = w.tree.search(key) {
                    hits += 1;
                    checksum = checksum.wrapping_add(hit.first_word);
                }
            }
            total += due;
            s.searches.store(total, Ordering::Relaxed);
            self.searches_total.fetch_add(due, Ordering::Relaxed);

            if p.scope == Scope::Container && now >= next_adjust {
                next_adjust = now + HOLD_ADJUST_PERIOD;
                let ws = self.measure()?;
                if ws + band < s.target_bytes {
                    let mut added = 0u64;
                    let want = s.target_bytes - ws;
                    while added + (PAGE as u64) < want && !s.stopping() {
                        let got =
                            self.grow(w, usize::try_from(want - added).unwrap_or(usize::MAX))?;
                        if got == 0 {
                            break;
                        }
                        added += got;
                    }
                    self.publish_counts(w);
                    self.log(
                        Operation::Notice,
                        format!("container hold: working set {:.1} MiB below target {:.1} MiB; grew the tree by {:.1} MiB", mib(ws), mib(s.target_bytes), mib(added)),
                    );
                } else if ws > s.target_bytes + band {
                    let freed = self.shrink(w, ws - s.target_bytes);
                    self.publish_counts(w);
                    if freed > 0 {
                        self.log(
                            Operation::Notice,
                            format!("container hold: working set {:.1} MiB above target {:.1} MiB; released {:.1} MiB of the tree", mib(ws), mib(s.target_bytes), mib(freed)),
                        );
                    }
                }
            }

            if now >= next_log {
                let secs = now.duration_since(interval_start.0).as_secs_f64();
                let rate = (total - interval_start.1) as f64 / secs.max(1e-9);
                s.searches_per_second
                    .store(rate.to_bits(), Ordering::Relaxed);
                interval_start = (now, total);
                next_log = now + interval;
                if p.keep_hot
                    && let Some(a) = &w.arena
                {
                    checksum = checksum.wrapping_add(arena::touch_all(a, || s.stopping()));
                }
                if let Some(a) = &w.arena
                    && a.huge_pages() != HugePages::Off
                {
                    self.sample_huge(a);
                }
                self.check_oom(&mut oom_seen);
                let rss = self.procmem.rss_bytes().unwrap_or(0);
                self.log(
                    Operation::SearchTreeProgress,
                    format!(
                        "{total} searches ({hits} hits), {rate:.0}/s; {} nodes; RSS {:.1} MiB{}",
                        w.tree.len(),
                        mib(rss),
                        deadline.map_or(String::new(), |d| format!(
                            "; {:.0} s left",
                            d.saturating_duration_since(now).as_secs_f64().ceil()
                        )),
                    ),
                );
            }

            // Sleep until the next search is due or something else needs doing.
            let mut wake = next_log;
            if let Some(d) = deadline {
                wake = wake.min(d);
            }
            if p.scope == Scope::Container {
                wake = wake.min(next_adjust);
            }
            if p.search_rate > 0 {
                let next_search = t0
                    + Duration::from_secs_f64(
                        (total + SEARCH_CHUNK.min(p.search_rate)) as f64 / p.search_rate as f64,
                    );
                wake = wake.min(next_search);
                self.nap(wake.saturating_duration_since(Instant::now()));
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        std::hint::black_box(checksum);
        self.log(
            Operation::SearchTreeComplete,
            format!(
                "hold complete: {total} searches ({hits} hits) in {secs:.1} s, {:.0}/s",
                total as f64 / secs.max(1e-9)
            ),
        );
        Ok(())
    }
}
