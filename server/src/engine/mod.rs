//! The state machine and the workload thread.
//!
//! Control operations (Start, Stop, Clear, shutdown) are serialised by one lock that also owns
//! the worker handle and the held workload. Status never takes that lock: it reads the run's
//! atomics, so it answers in microseconds even during a full-speed build.
//!
//! `run_state` owns every state change; `worker` runs the plan (`build` moves to a phase's
//! target, `hold` holds it); `messages` has every log text; `meter` stamps log entries;
//! `status` computes the one Status snapshot.

mod build;
mod hold;
mod messages;
mod meter;
mod run_state;
mod status;
mod worker;

pub use run_state::{RunShared, State};
pub use status::{HistoryView, PhaseProgress, RunStatus, StatusSnapshot};

use crate::auth::Caller;
use crate::cgroup::{CgroupProbe, MemoryBasis};
use crate::checkpoint::{Checkpointer, Sources};
use crate::error::EngineError;
use crate::history::History;
use crate::history::model::{NewRun, Outcome};
use crate::logs::{LogHub, Operation, now_unix_ms};
use crate::params::{MIB, RunParams, StartSpec};
use crate::procmem::{self, ProcMem};
use crate::workload::Workload;
use meter::Meter;
use rand::RngExt;
use run_state::RunInit;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::Instant;

/// Outcome of a Start.
#[derive(Debug, Clone)]
pub struct StartOutcome {
    /// New run id.
    pub run_id: String,
    /// Target bytes (the largest phase's for a profile).
    pub target_bytes: u64,
    /// Each phase's target in order (one entry for a single-target run).
    pub phase_target_bytes: Vec<u64>,
    /// Basis.
    pub basis: MemoryBasis,
    /// Parameters in effect.
    pub params: RunParams,
    /// Bytes of a previous run's memory freed first.
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
    /// Items freed.
    pub nodes_released: u64,
    /// Whether a run had to be stopped.
    pub stopped_running: bool,
    /// Time freeing took.
    pub duration_ms: u64,
}

struct WorkerHandle {
    join: JoinHandle<Option<Box<dyn Workload>>>,
    thread: Thread,
    shared: Arc<RunShared>,
}

#[derive(Default)]
struct Control {
    worker: Option<WorkerHandle>,
    held: Option<Box<dyn Workload>>,
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
    meter: Meter,
    history: Arc<History>,
    checkpointer: Arc<Checkpointer>,
    activity_total: Arc<AtomicU64>,
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

/// Bytes to MiB as a float, for messages and log fields.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

/// Closes `run` in the history: the one place a run's end is recorded, whoever ended it.
fn record_end(history: &History, meter: &Meter, run: &RunShared, outcome: Outcome) {
    if let Some(ws) = meter.working_set() {
        run.note_working_set(ws);
    }
    history.finish(run.number, &run.run_end(outcome, meter.cgroup.oom_kills()));
    meter.history_notices(history);
}

impl Engine {
    /// A new engine publishing to `logs` and recording runs in `history`; starts the
    /// checkpoint thread.
    pub fn new(
        config: EngineConfig,
        logs: Arc<LogHub>,
        history: Arc<History>,
    ) -> std::io::Result<Self> {
        let meter = Meter {
            logs,
            procmem: ProcMem::new(&config.fs_root),
            cgroup: config.cgroup.clone(),
        };
        let checkpointer = Arc::new(Checkpointer::default());
        let (notice_meter, notice_history) = (meter.clone(), Arc::clone(&history));
        checkpointer.spawn(Sources {
            history: Arc::clone(&history),
            procmem: meter.procmem.clone(),
            cgroup: config.cgroup,
            after_write: Box::new(move || notice_meter.history_notices(&notice_history)),
        })?;
        Ok(Self {
            meter,
            history,
            checkpointer,
            activity_total: Arc::new(AtomicU64::new(0)),
            thp_enabled_path: config
                .fs_root
                .join("sys/kernel/mm/transparent_hugepage/enabled"),
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
        self.meter
            .publish(Operation::Notice, &Arc::from(""), message);
    }

    /// The log hub.
    pub fn logs(&self) -> &Arc<LogHub> {
        &self.meter.logs
    }

    /// The memory basis now.
    pub fn basis(&self) -> MemoryBasis {
        self.meter.cgroup.basis(self.host_total_bytes)
    }

    /// RSS now (0 if unreadable).
    pub fn rss_bytes(&self) -> u64 {
        self.meter.rss().unwrap_or(0)
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
        let readable = self.meter.working_set().is_some();
        let host = crate::params::HostGuard {
            available_bytes: self.meter.procmem.mem_available_bytes(),
            allow_host_oom: self.allow_host_oom,
        };
        let (params, target_bytes) = crate::params::validate(spec, &basis, readable, &host)?;
        let plan = crate::params::plan(&params, &basis);
        let audit = caller.audit();
        let previous = self.release_locked(&mut control, messages::BEFORE_NEXT_RUN, &audit);
        let shared = Arc::new(self.begin_run(params, plan, basis, target_bytes));
        let worker = worker::Worker {
            shared: Arc::clone(&shared),
            meter: self.meter.clone(),
            history: Arc::clone(&self.history),
            checkpointer: Arc::clone(&self.checkpointer),
            activity_total: Arc::clone(&self.activity_total),
            thp_enabled_path: self.thp_enabled_path.clone(),
            huge_refusal_logged: std::cell::Cell::new(false),
        };
        let msg = messages::start(&shared.params, &shared.plan, &shared.basis, &audit);
        worker.log(Operation::StressTestStart, msg);
        let join = std::thread::Builder::new()
            .name("stress-worker".into())
            .spawn(move || worker.run())
            .map_err(|e| self.spawn_failed(&shared, e))?;
        let thread = join.thread().clone();
        control.worker = Some(WorkerHandle {
            join,
            thread,
            shared: Arc::clone(&shared),
        });
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&shared));
        self.checkpointer.track(Arc::clone(&shared));
        Ok(StartOutcome {
            run_id: shared.run_id.to_string(),
            target_bytes: shared.target_bytes,
            phase_target_bytes: shared.plan.targets(),
            basis: shared.basis.clone(),
            params: shared.params.clone(),
            previous_run_released_bytes: previous.released_bytes,
        })
    }

    /// Opens the run's history record and its shared state.
    fn begin_run(
        &self,
        params: RunParams,
        plan: crate::params::Plan,
        basis: MemoryBasis,
        target_bytes: u64,
    ) -> RunShared {
        let started_at_ms = now_unix_ms();
        let oom_kills_at_start = self.meter.cgroup.oom_kills();
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
        self.meter.history_notices(&self.history);
        RunShared::new(RunInit {
            run_id: Arc::from(run_id),
            number,
            params,
            plan,
            basis,
            started_at_ms,
            oom_kills_at_start,
            rss_bytes: self.rss_bytes(),
        })
    }

    /// The run never existed for Status; the log and the history say why its start entry has
    /// no end.
    fn spawn_failed(&self, shared: &RunShared, e: std::io::Error) -> EngineError {
        let msg = messages::spawn_failed(&e);
        shared.set_error(&msg);
        record_end(&self.history, &self.meter, shared, Outcome::Failed);
        self.meter.publish(
            Operation::StressTestError,
            &shared.run_id,
            messages::spawn_failed_entry(&msg),
        );
        EngineError::WorkerSpawn(e)
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
                message: messages::nothing_to_stop(),
            };
        };
        let was = worker.shared.state();
        let run_id = worker.shared.run_id.to_string();
        worker.shared.request_stop(by.map(Caller::audit));
        worker.thread.unpark();
        let shared = Arc::clone(&worker.shared);
        self.join_into(control, worker);
        let state = shared.state();
        let (stopped, message) = if was.is_active() {
            (true, messages::stopped_while(&run_id, was))
        } else {
            (false, messages::already_ended(&run_id, was))
        };
        StopOutcome {
            state,
            stopped,
            run_id,
            message,
        }
    }

    /// Joins a worker and keeps what it holds.
    fn join_into(&self, control: &mut Control, worker: WorkerHandle) {
        match worker.join.join() {
            Ok(held) => {
                if held.is_some() {
                    control.held = held;
                }
            }
            Err(_) => {
                // The worker panicked (a bug); its memory was freed while unwinding.
                let shared = &worker.shared;
                shared.set_error(&messages::worker_panicked_error());
                record_end(&self.history, &self.meter, shared, Outcome::Failed);
                self.meter.publish_with(
                    Operation::StressTestError,
                    &shared.run_id,
                    messages::worker_panicked(),
                    || {
                        shared.transition(State::Failed);
                    },
                );
            }
        }
    }

    /// Stops a running run, frees its memory and gives the pages back to the OS; the entries
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
        let mut out = self.release_locked(&mut control, messages::ON_CLEAR, &caller.audit());
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
        let freed = control.held.take().map(|w| {
            let kind = w.kind();
            let (bytes, items) = w.release();
            (bytes, items, kind)
        });
        let duration_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        let rss_after = self.rss_bytes();
        let run = self.current_run();
        if let Some(run) = &run {
            run.transition(State::Idle);
        }
        let (released_bytes, nodes_released) = freed.map_or((0, 0), |(b, n, _)| (b, n));
        if let Some(freed) = freed.filter(|(b, n, _)| *b > 0 || *n > 0) {
            let run_id = run.map_or_else(|| Arc::from(""), |r| Arc::clone(&r.run_id));
            let msg = messages::cleared(freed, why, duration_ms, rss_before, rss_after, audit);
            self.meter.publish(Operation::MemoryCleared, &run_id, msg);
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

    /// Status snapshot; never waits for the workload.
    pub fn status(&self) -> StatusSnapshot {
        let run = self.current_run();
        let rss = self.rss_bytes();
        let state = run.as_ref().map_or(State::Idle, |r| r.state());
        let (container, basis) = self.meter.cgroup.read_with_basis(self.host_total_bytes);
        let run = run.map(|r| status::run_status(&r, state, rss, container.working_set_bytes));
        let workload = run.as_ref().map(RunStatus::workload).unwrap_or_default();
        StatusSnapshot {
            state,
            peak_rss_bytes: run.as_ref().map_or(rss, |r| r.peak_rss_bytes.max(rss)),
            peak_working_set_bytes: match &run {
                Some(r) => r.peak_working_set_bytes,
                None => container.working_set_bytes,
            },
            oom_kills_during_run: status::oom_kills_during(run.as_ref(), container.oom_kills),
            run,
            rss_bytes: rss,
            workload,
            activity_unit: workload.activity_unit(),
            basis,
            container,
            process_cpu_seconds: procmem::process_cpu_seconds(),
            searches_total: self.activity_total.load(Ordering::Relaxed),
            history: HistoryView {
                status: self.history.status(),
                previous_run: self.history.previous_run(),
                tally: self.history.tally().snapshot(),
            },
            instance: Arc::clone(&self.instance),
        }
    }
}
