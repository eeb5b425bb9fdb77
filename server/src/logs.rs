//! Log entries: a bounded in-memory history plus a broadcast channel to every watcher.
//!
//! Publishing never blocks: the history is a ring buffer behind a short lock and
//! `broadcast::Sender::send` drops the oldest entries for a receiver that lags, which that
//! receiver learns about as a count. So a slow watcher (or a slow stdout) never slows the
//! workload or other watchers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// Entries kept for replay.
pub const HISTORY_CAPACITY: usize = 10_000;
/// Entries a live watcher may fall behind before it is told it missed some.
pub const CHANNEL_CAPACITY: usize = 1024;

/// What a log entry records (the original design's operation names, plus two of ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Operation {
    StressTestStart,
    BuildTreeStart,
    BuildTreeTarget,
    BuildTreeComplete,
    SearchTreeStart,
    SearchTreeProgress,
    SearchTreeComplete,
    StressTestComplete,
    StressTestStopped,
    StressTestError,
    MemoryCleared,
    /// A watcher missed entries (lagged, or asked for entries no longer kept).
    LogEntriesMissed,
    /// Worth knowing, not an error.
    Notice,
}

impl Operation {
    /// The original design's upper-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::StressTestStart => "STRESS_TEST_START",
            Self::BuildTreeStart => "BUILD_TREE_START",
            Self::BuildTreeTarget => "BUILD_TREE_TARGET",
            Self::BuildTreeComplete => "BUILD_TREE_COMPLETE",
            Self::SearchTreeStart => "SEARCH_TREE_START",
            Self::SearchTreeProgress => "SEARCH_TREE_PROGRESS",
            Self::SearchTreeComplete => "SEARCH_TREE_COMPLETE",
            Self::StressTestComplete => "STRESS_TEST_COMPLETE",
            Self::StressTestStopped => "STRESS_TEST_STOPPED",
            Self::StressTestError => "STRESS_TEST_ERROR",
            Self::MemoryCleared => "MEMORY_CLEARED",
            Self::LogEntriesMissed => "LOG_ENTRIES_MISSED",
            Self::Notice => "NOTICE",
        }
    }
}

/// One log entry. Cheap to clone (strings are shared).
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Monotonic, from 1; 0 for synthetic "missed" entries.
    pub sequence: u64,
    /// Unix milliseconds.
    pub timestamp_ms: i64,
    /// What happened.
    pub operation: Operation,
    /// stressd RSS at the time, MiB.
    pub memory_mb: f64,
    /// Container working set at the time, MiB, when known.
    pub working_set_mb: Option<f64>,
    /// Human-readable text.
    pub message: Arc<str>,
    /// Run the entry belongs to ("" outside a run).
    pub run_id: Arc<str>,
    /// For `LogEntriesMissed`: how many.
    pub missed: u64,
}

impl LogRecord {
    /// A synthetic entry telling one watcher it missed `n` entries.
    pub fn missed(n: u64) -> Self {
        Self {
            sequence: 0,
            timestamp_ms: now_unix_ms(),
            operation: Operation::LogEntriesMissed,
            memory_mb: 0.0,
            working_set_mb: None,
            message: Arc::from(format!(
                "missed {n} log entries (watcher fell behind or they are no longer kept)"
            )),
            run_id: Arc::from(""),
            missed: n,
        }
    }

    /// One line for stdout (`kubectl logs`).
    pub fn to_line(&self) -> String {
        let ws = self
            .working_set_mb
            .map(|w| format!(" ws={w:.1}MB"))
            .unwrap_or_default();
        let run = if self.run_id.is_empty() {
            String::new()
        } else {
            format!(" run={}", self.run_id)
        };
        format!(
            "{} #{} {}{} mem={:.1}MB{} {}",
            memstress_proto::time::format_unix_ms(self.timestamp_ms),
            self.sequence,
            self.operation.name(),
            run,
            self.memory_mb,
            ws,
            self.message
        )
    }
}

struct History {
    entries: VecDeque<LogRecord>,
    next_sequence: u64,
}

/// The log hub: history for replay, broadcast for live watchers.
pub struct LogHub {
    history: Mutex<History>,
    tx: broadcast::Sender<LogRecord>,
    capacity: usize,
    /// Live stdout printer threads; their receivers are not watchers (see [`LogHub::watchers`]).
    printers: Arc<AtomicUsize>,
}

impl std::fmt::Debug for LogHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHub")
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// What a new watcher gets: kept entries to replay, how many it asked for that are gone, and
/// a receiver positioned right after the replay (no gap, no duplicate).
pub struct Subscription {
    /// Kept entries with sequence >= the requested one.
    pub backlog: Vec<LogRecord>,
    /// Entries the watcher asked for that are no longer kept.
    pub missed_before: u64,
    /// Live entries published after the backlog was taken.
    pub live: broadcast::Receiver<LogRecord>,
}

impl LogHub {
    /// A hub keeping `capacity` entries, with live receivers that may lag `channel` entries.
    pub fn new(capacity: usize, channel: usize) -> Self {
        let (tx, _) = broadcast::channel(channel.max(1));
        Self {
            history: Mutex::new(History {
                entries: VecDeque::with_capacity(capacity.min(1024)),
                next_sequence: 1,
            }),
            tx,
            capacity: capacity.max(1),
            printers: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Records an entry and sends it to every live watcher. Never blocks on watchers.
    pub fn publish(
        &self,
        operation: Operation,
        run_id: &Arc<str>,
        memory_mb: f64,
        working_set_mb: Option<f64>,
        message: impl Into<String>,
    ) -> LogRecord {
        self.publish_with(operation, run_id, memory_mb, working_set_mb, message, || {})
    }

    /// Like [`Self::publish`], running `commit` under the history lock just before the entry
    /// is recorded and sent. A run's state changes are made this way, so a watcher that
    /// receives an entry (say STRESS_TEST_COMPLETE) already sees its state in Status, and a
    /// client that sees a state in Status finds its entry in the kept logs (reading them
    /// takes the lock).
    pub fn publish_with(
        &self,
        operation: Operation,
        run_id: &Arc<str>,
        memory_mb: f64,
        working_set_mb: Option<f64>,
        message: impl Into<String>,
        commit: impl FnOnce(),
    ) -> LogRecord {
        let mut h = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        commit();
        let record = LogRecord {
            sequence: h.next_sequence,
            timestamp_ms: now_unix_ms(),
            operation,
            memory_mb,
            working_set_mb,
            message: Arc::from(message.into()),
            run_id: Arc::clone(run_id),
            missed: 0,
        };
        h.next_sequence += 1;
        if h.entries.len() >= self.capacity {
            h.entries.pop_front();
        }
        h.entries.push_back(record.clone());
        // Sent under the lock so a concurrent subscribe sees each entry exactly once: either
        // in its backlog or on its receiver. An error only means nobody is listening.
        let _ = self.tx.send(record.clone());
        record
    }

    /// Subscribes from `from_sequence` (0 = everything kept).
    pub fn subscribe(&self, from_sequence: u64) -> Subscription {
        let h = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let live = self.tx.subscribe();
        let oldest = h.entries.front().map_or(h.next_sequence, |e| e.sequence);
        let missed_before = if from_sequence > 0 && from_sequence < oldest {
            oldest - from_sequence
        } else {
            0
        };
        let backlog = h
            .entries
            .iter()
            .filter(|e| e.sequence >= from_sequence)
            .cloned()
            .collect();
        Subscription {
            backlog,
            missed_before,
            live,
        }
    }

    /// Prints every entry to stdout on a thread of its own, so a slow or blocked stdout pipe
    /// can only make this printer lag (it then says how many lines it skipped), never the
    /// workload.
    pub fn spawn_stdout_printer(&self) -> std::io::Result<()> {
        // Counted before it subscribes and uncounted after its receiver is gone, so watchers()
        // never counts the printer as a watcher.
        let printer = PrinterCount::enter(&self.printers);
        let rx = self.tx.subscribe();
        std::thread::Builder::new()
            .name("log-stdout".into())
            .spawn(move || {
                use std::io::Write;
                let _printer = printer;
                let mut rx = rx;
                loop {
                    let line = match rx.blocking_recv() {
                        Ok(rec) => rec.to_line(),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            LogRecord::missed(n).to_line()
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    };
                    let mut out = std::io::stdout().lock();
                    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                        return;
                    }
                }
            })
            .map(|_| ())
    }

    /// Entries published since start (the sequence counter, so it is monotonic even though
    /// the kept history is bounded): a counter for /metrics.
    pub fn entries_total(&self) -> u64 {
        let h = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        h.next_sequence.saturating_sub(1)
    }

    /// WatchLogs streams being served now (replaying or following). The stdout printer also
    /// holds a receiver; it is not a watcher, so it is subtracted while it runs.
    pub fn watchers(&self) -> usize {
        let printers = self.printers.load(Ordering::Acquire);
        self.tx.receiver_count().saturating_sub(printers)
    }
}

/// Counts one stdout printer for as long as its thread lives (or until a failed spawn drops
/// it), so [`LogHub::watchers`] stays honest if the printer exits on a closed stdout.
struct PrinterCount(Arc<AtomicUsize>);

impl PrinterCount {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(count))
    }
}

impl Drop for PrinterCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn run() -> Arc<str> {
        Arc::from("run-1")
    }

    #[test]
    fn publish_with_commits_before_anyone_can_see_the_entry() {
        let hub = LogHub::new(5, 16);
        let mut live = hub.subscribe(0).live;
        let mut seen_inside = None;
        hub.publish_with(
            Operation::StressTestComplete,
            &run(),
            1.0,
            None,
            "done",
            || seen_inside = Some(live.try_recv().is_err()),
        );
        assert_eq!(seen_inside, Some(true), "commit ran before the send");
        assert_eq!(
            live.try_recv().unwrap().operation,
            Operation::StressTestComplete
        );
        assert_eq!(hub.subscribe(0).backlog.len(), 1);
    }

    #[test]
    fn history_is_bounded_and_replay_reports_what_is_gone() {
        let hub = LogHub::new(5, 16);
        for i in 0..8 {
            hub.publish(Operation::Notice, &run(), 1.0, None, format!("e{i}"));
        }
        let sub = hub.subscribe(0);
        assert_eq!(sub.backlog.len(), 5);
        assert_eq!(sub.backlog[0].sequence, 4);
        assert_eq!(sub.missed_before, 0, "0 means 'whatever is kept'");
        let sub = hub.subscribe(2);
        assert_eq!(sub.missed_before, 2, "entries 2 and 3 are gone");
        let sub = hub.subscribe(7);
        assert_eq!(
            sub.backlog.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            vec![7, 8]
        );
    }

    #[test]
    fn live_receiver_continues_right_after_backlog() {
        let hub = LogHub::new(100, 16);
        hub.publish(Operation::Notice, &run(), 1.0, None, "a");
        let mut sub = hub.subscribe(0);
        hub.publish(Operation::Notice, &run(), 1.0, None, "b");
        assert_eq!(sub.backlog.len(), 1);
        assert_eq!(sub.live.try_recv().unwrap().sequence, 2);
        assert!(sub.live.try_recv().is_err());
    }

    #[test]
    fn lagging_receiver_is_told_how_many_it_missed() {
        let hub = LogHub::new(100, 4);
        let mut sub = hub.subscribe(0);
        for i in 0..10 {
            hub.publish(Operation::Notice, &run(), 1.0, None, format!("{i}"));
        }
        match sub.live.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(n)) => assert_eq!(n, 6),
            other => panic!("expected lag, got {other:?}"),
        }
        assert_eq!(sub.live.try_recv().unwrap().sequence, 7);
    }

    #[test]
    fn line_format_has_everything() {
        let hub = LogHub::new(10, 4);
        let rec = hub.publish(
            Operation::SearchTreeProgress,
            &run(),
            1024.25,
            Some(900.0),
            "x",
        );
        let line = rec.to_line();
        assert!(
            line.contains("#1 SEARCH_TREE_PROGRESS run=run-1 mem=1024.2MB ws=900.0MB x"),
            "{line}"
        );
    }
}
