//! One way to publish a log entry: stamped with the process RSS and the container working set
//! at that moment. Shared by the control plane and the worker so every entry is measured the
//! same way.

use super::mib;
use crate::cgroup::CgroupProbe;
use crate::history::History;
use crate::logs::{LogHub, Operation};
use crate::procmem::ProcMem;
use std::sync::Arc;

/// The log hub plus what its entries are stamped with.
#[derive(Debug, Clone)]
pub(crate) struct Meter {
    pub(crate) logs: Arc<LogHub>,
    pub(crate) procmem: ProcMem,
    pub(crate) cgroup: CgroupProbe,
}

impl Meter {
    /// RSS now.
    pub(crate) fn rss(&self) -> Option<u64> {
        self.procmem.rss_bytes()
    }

    /// Container working set now.
    pub(crate) fn working_set(&self) -> Option<u64> {
        self.cgroup.working_set_bytes()
    }

    /// Publishes an entry stamped with RSS (0 if unreadable) and working set.
    pub(crate) fn publish(&self, op: Operation, run_id: &Arc<str>, msg: String) {
        self.publish_with(op, run_id, msg, || {});
    }

    /// Publishes with `commit` applied atomically with the entry (see
    /// `LogHub::publish_with`): a state change and the entry announcing it are seen together.
    pub(crate) fn publish_with(
        &self,
        op: Operation,
        run_id: &Arc<str>,
        msg: String,
        commit: impl FnOnce(),
    ) {
        let rss = self.rss().unwrap_or(0);
        let ws = self.working_set().map(mib);
        self.logs
            .publish_with(op, run_id, mib(rss), ws, msg, commit);
    }

    /// Publishes what the history store has to say since it was last asked (e.g. that it
    /// fell back to memory after a write failed).
    pub(crate) fn history_notices(&self, history: &History) {
        let none: Arc<str> = Arc::from("");
        for msg in history.take_notices() {
            self.publish(Operation::Notice, &none, msg);
        }
    }
}
