//! Checkpoints of the active run, written to the run history off the workload's path.
//!
//! A full-speed fill crosses 2 GiB in under a second, so a once-a-second checkpoint alone
//! could not say where an OOM kill came. The worker therefore pokes this thread at every
//! state change and after every 1 % of the limit grown; a poke costs the worker one short
//! lock and a futex wake. The thread takes the measurements (RSS, working set, OOM-kill
//! counter) and writes the row; pokes that arrive while it writes coalesce into one, so the
//! newest state always wins and the worker never waits for SQLite.

use crate::cgroup::{CgroupIdentity, CgroupProbe};
use crate::engine::RunShared;
use crate::history::History;
use crate::history::model::Checkpoint;
use crate::logs::now_unix_ms;
use crate::procmem::ProcMem;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// A checkpoint is written at least this often while a run is active.
pub(crate) const PERIOD: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Slot {
    run: Option<Arc<RunShared>>,
    poked: bool,
    shutdown: bool,
}

/// The checkpoint thread's mailbox.
#[derive(Default)]
pub(crate) struct Checkpointer {
    slot: Mutex<Slot>,
    wake: Condvar,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").finish_non_exhaustive()
    }
}

/// What the thread measures with.
pub(crate) struct Sources {
    /// The store.
    pub history: Arc<History>,
    /// RSS.
    pub procmem: ProcMem,
    /// Working set, OOM-kill counter and the cgroup's identity.
    pub cgroup: CgroupProbe,
    /// Called after each write, so notices the store raised (e.g. it fell back to memory)
    /// reach the log.
    pub after_write: Box<dyn Fn() + Send>,
}

impl Checkpointer {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the thread.
    pub(crate) fn spawn(self: &Arc<Self>, sources: Sources) -> std::io::Result<()> {
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || me.run(&sources))
            .map(|_| ())
    }

    /// Follows `run` from now on and checkpoints it at once.
    pub(crate) fn track(&self, run: Arc<RunShared>) {
        let mut slot = self.lock();
        slot.run = Some(run);
        slot.poked = true;
        self.wake.notify_one();
    }

    /// Asks for a checkpoint now (coalesced with any still pending).
    pub(crate) fn poke(&self) {
        let mut slot = self.lock();
        if !slot.poked {
            slot.poked = true;
            self.wake.notify_one();
        }
    }

    /// Ends the thread after its current write.
    pub(crate) fn shutdown(&self) {
        self.lock().shutdown = true;
        self.wake.notify_one();
    }

    fn run(&self, src: &Sources) {
        let mut identity: Option<(usize, Option<CgroupIdentity>)> = None;
        loop {
            let run = {
                let mut slot = self.lock();
                if !slot.poked && !slot.shutdown {
                    slot = self
                        .wake
                        .wait_timeout(slot, PERIOD)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                if slot.shutdown {
                    return;
                }
                slot.poked = false;
                // A finished run's record is written by its worker; nothing to follow.
                if slot.run.as_ref().is_some_and(|r| !r.state().is_active()) {
                    slot.run = None;
                }
                slot.run.clone()
            };
            let Some(run) = run else { continue };
            // The identity costs a stat; read it once per run.
            let key = Arc::as_ptr(&run) as usize;
            if identity.as_ref().is_none_or(|(k, _)| *k != key) {
                identity = Some((key, src.cgroup.identity()));
            }
            let cgroup = identity.as_ref().and_then(|(_, id)| id.clone());
            let cp = take(&run, src, cgroup);
            src.history.checkpoint(run.number, &cp);
            (src.after_write)();
        }
    }
}

/// Measures a checkpoint of `run` and raises its peaks with what it saw.
fn take(run: &RunShared, src: &Sources, cgroup: Option<CgroupIdentity>) -> Checkpoint {
    let state = run.state();
    let rss_bytes = src.procmem.rss_bytes().unwrap_or(0);
    let working_set_bytes = src.cgroup.working_set_bytes();
    run.note_rss(rss_bytes);
    if let Some(ws) = working_set_bytes {
        run.note_working_set(ws);
    }
    Checkpoint {
        taken_at_ms: now_unix_ms(),
        state,
        rss_bytes,
        working_set_bytes,
        nodes: run.nodes(),
        cgroup,
        oom_kills: src.cgroup.oom_kills(),
    }
}
