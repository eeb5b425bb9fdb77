//! Log entries: a bounded in-memory history plus a broadcast channel to every watcher.
//!
//! Publishing never blocks: the history is a ring buffer behind a short lock and
//! `broadcast::Sender::send` drops the oldest entries for a receiver that lags, which that
//! receiver learns about as a count. So a slow watcher (or a slow stdout) never slows the
//! workload or other watchers.
//!
//! A watcher replays the kept history through a cursor (a sequence number), a small page at a
//! time under the lock, never a copy of the whole history: its memory does not depend on how
//! much is kept. Watchers are counted (RAII) and limited (`--max-watchers`).

use crate::error::EngineError;
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
    /// A phase of a target profile started.
    PhaseStart,
}

impl Operation {
    /// Severity for JSON log lines.
    pub fn level(self) -> &'static str {
        match self {
            Self::StressTestError => "error",
            Self::LogEntriesMissed => "warn",
            _ => "info",
        }
    }

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
            Self::PhaseStart => "PHASE_START",
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

    /// One line for stdout (`kubectl logs`) in `format`.
    pub fn to_stdout_line(&self, format: LogFormat) -> String {
        match format {
            LogFormat::Text => self.to_line(),
            LogFormat::Json => self.to_json_line(),
        }
    }

    /// One JSON object per line, for log pipelines (Loki, Elasticsearch): field names are
    /// stable, sizes are MiB, and `level` follows the operation.
    pub fn to_json_line(&self) -> String {
        let mut v = serde_json::json!({
            "ts": memstress_proto::time::format_unix_ms(self.timestamp_ms),
            "ts_unix_ms": self.timestamp_ms,
            "level": self.operation.level(),
            "sequence": self.sequence,
            "operation": self.operation.name(),
            "run_id": &*self.run_id,
            "rss_mib": round1(self.memory_mb),
            "working_set_mib": self.working_set_mb.map(round1),
            "message": &*self.message,
        });
        if self.operation == Operation::LogEntriesMissed
            && let Some(o) = v.as_object_mut()
        {
            o.insert("missed".into(), self.missed.into());
        }
        v.to_string()
    }

    /// One line of text for stdout (`kubectl logs`).
    pub fn to_line(&self) -> String {
        let ws = self
            .working_set_mb
            .map(|w| format!(" ws={w:.1}MiB"))
            .unwrap_or_default();
        let run = if self.run_id.is_empty() {
            String::new()
        } else {
            format!(" run={}", self.run_id)
        };
        format!(
            "{} #{} {}{} rss={:.1}MiB{} {}",
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

impl History {
    /// Sequence number of the oldest kept entry (`next_sequence` when nothing is kept).
    fn oldest(&self) -> u64 {
        self.entries
            .front()
            .map_or(self.next_sequence, |e| e.sequence)
    }
}

/// The log hub: history for replay, broadcast for live watchers.
pub struct LogHub {
    history: Arc<Mutex<History>>,
    tx: broadcast::Sender<LogRecord>,
    capacity: usize,
    /// WatchLogs streams being served (each holds a [`WatcherSlot`]).
    watchers: Arc<AtomicUsize>,
    /// Most concurrent watchers [`LogHub::try_subscribe`] admits.
    max_watchers: usize,
}

impl std::fmt::Debug for LogHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHub")
            .field("capacity", &self.capacity)
            .field("max_watchers", &self.max_watchers)
            .finish()
    }
}

/// Entries a watcher reads from the kept history per page ([`Subscription::next_page`]).
pub const PAGE_SIZE: usize = 64;

/// Default for `--max-watchers`.
pub const DEFAULT_MAX_WATCHERS: usize = 256;

/// One watcher's place in the log: a cursor into the kept history (a sequence number, not a
/// copy of the backlog, so a watcher costs the same whatever is kept) and, once it has caught
/// up, a live receiver positioned right after the last entry it read (no gap, no duplicate).
/// Holds one watcher slot for as long as it lives.
pub struct Subscription {
    history: Arc<Mutex<History>>,
    tx: broadcast::Sender<LogRecord>,
    /// Next sequence to read; 0 = the oldest kept entry, whatever it is.
    next: u64,
    _slot: WatcherSlot,
}

/// One page of a replay ([`Subscription::next_page`]).
#[derive(Debug)]
pub struct Page {
    /// Entries the watcher asked for (or was due next) that are no longer kept.
    pub missed: u64,
    /// Up to [`PAGE_SIZE`] kept entries, in sequence order, continuing the previous page.
    pub entries: Vec<LogRecord>,
    /// True when these were the newest entries: nothing more is kept after them.
    pub caught_up: bool,
    /// With `follow` and `caught_up`: live entries published after this page.
    pub live: Option<broadcast::Receiver<LogRecord>>,
}

impl Subscription {
    /// Reads the next page under the history lock. Entries that fell out of the history
    /// since the previous page are reported in [`Page::missed`]. When the page reaches the
    /// newest entry and `follow` is set, the live receiver is taken under the same lock, so
    /// the next entry published is the first it receives.
    pub fn next_page(&mut self, follow: bool) -> Page {
        let h = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest = h.oldest();
        let mut missed = 0;
        if self.next < oldest {
            if self.next > 0 {
                missed = oldest - self.next;
            }
            self.next = oldest;
        }
        let skip = usize::try_from(self.next - oldest).unwrap_or(usize::MAX);
        let entries: Vec<LogRecord> = h
            .entries
            .iter()
            .skip(skip)
            .take(PAGE_SIZE)
            .cloned()
            .collect();
        if let Some(last) = entries.last() {
            self.next = last.sequence + 1;
        }
        let caught_up = self.next >= h.next_sequence;
        let live = (follow && caught_up).then(|| self.tx.subscribe());
        Page {
            missed,
            entries,
            caught_up,
            live,
        }
    }
}

impl LogHub {
    /// A hub keeping `capacity` entries, with live receivers that may lag `channel` entries,
    /// admitting [`DEFAULT_MAX_WATCHERS`] watchers through [`Self::try_subscribe`].
    pub fn new(capacity: usize, channel: usize) -> Self {
        let (tx, _) = broadcast::channel(channel.max(1));
        Self {
            history: Arc::new(Mutex::new(History {
                entries: VecDeque::with_capacity(capacity.min(1024)),
                next_sequence: 1,
            })),
            tx,
            capacity: capacity.max(1),
            watchers: Arc::new(AtomicUsize::new(0)),
            max_watchers: DEFAULT_MAX_WATCHERS,
        }
    }

    /// The same hub admitting at most `max` concurrent watchers (`--max-watchers`).
    #[must_use]
    pub fn with_max_watchers(mut self, max: usize) -> Self {
        self.max_watchers = max;
        self
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
        // Sent under the lock so a watcher that catches up (takes its receiver under this
        // lock) sees each entry exactly once: in a page or on its receiver. An error only
        // means nobody is listening.
        let _ = self.tx.send(record.clone());
        record
    }

    /// Subscribes from `from_sequence` (0 = everything kept), whatever the watcher limit.
    pub fn subscribe(&self, from_sequence: u64) -> Subscription {
        Subscription {
            history: Arc::clone(&self.history),
            tx: self.tx.clone(),
            next: from_sequence,
            _slot: WatcherSlot::enter(&self.watchers),
        }
    }

    /// Like [`Self::subscribe`], refused with [`EngineError::TooManyWatchers`] when
    /// `--max-watchers` streams are already served.
    pub fn try_subscribe(&self, from_sequence: u64) -> Result<Subscription, EngineError> {
        let sub = self.subscribe(from_sequence);
        // Counted first, checked after: two racing watchers cannot both take the last slot.
        if self.watchers() > self.max_watchers {
            return Err(EngineError::TooManyWatchers {
                limit: self.max_watchers,
            });
        }
        Ok(sub)
    }

    /// Prints every entry to stdout on a thread of its own, so a slow or blocked stdout pipe
    /// can only make this printer lag (it then says how many lines it skipped), never the
    /// workload.
    pub fn spawn_stdout_printer(&self) -> std::io::Result<()> {
        self.spawn_stdout_printer_as(LogFormat::Text)
    }

    /// [`Self::spawn_stdout_printer`] writing lines in `format`.
    pub fn spawn_stdout_printer_as(&self, format: LogFormat) -> std::io::Result<()> {
        let rx = self.tx.subscribe();
        std::thread::Builder::new()
            .name("log-stdout".into())
            .spawn(move || {
                use std::io::Write;
                let mut rx = rx;
                loop {
                    let line = match rx.blocking_recv() {
                        Ok(rec) => rec.to_stdout_line(format),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            LogRecord::missed(n).to_stdout_line(format)
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

    /// WatchLogs streams being served now (replaying or following): live [`Subscription`]s.
    /// The stdout printer is not one.
    pub fn watchers(&self) -> usize {
        self.watchers.load(Ordering::Acquire)
    }
}

/// Counts one watcher for as long as its subscription lives (RAII: a stream that ends or a
/// client that goes away drops it).
struct WatcherSlot(Arc<AtomicUsize>);

impl WatcherSlot {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(count))
    }
}

impl Drop for WatcherSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How stressd writes its stdout: text for people, JSON lines for log pipelines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One line of text per entry (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("log format '{other}' is not one of: text, json")),
        }
    }
}

/// A line stressd prints about itself (listening, shutting down), outside the log hub: as is
/// in text, as a JSON object with operation "SERVER" in JSON, so every stdout line of a JSON
/// stressd parses.
pub fn process_line(format: LogFormat, message: &str) -> String {
    match format {
        LogFormat::Text => message.to_string(),
        LogFormat::Json => {
            let now = now_unix_ms();
            serde_json::json!({
                "ts": memstress_proto::time::format_unix_ms(now),
                "ts_unix_ms": now,
                "level": "info",
                "operation": "SERVER",
                "message": message,
            })
            .to_string()
        }
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
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

    fn seqs(entries: &[LogRecord]) -> Vec<u64> {
        entries.iter().map(|e| e.sequence).collect()
    }

    fn publish_n(hub: &LogHub, n: usize) {
        for i in 0..n {
            hub.publish(Operation::Notice, &run(), 1.0, None, format!("e{i}"));
        }
    }

    /// Follows `sub` until it catches up; returns the pages' entries, missed total and live.
    fn replay(sub: &mut Subscription) -> (Vec<u64>, u64, broadcast::Receiver<LogRecord>) {
        let (mut got, mut missed) = (Vec::new(), 0);
        loop {
            let page = sub.next_page(true);
            assert!(page.entries.len() <= PAGE_SIZE);
            missed += page.missed;
            got.extend(seqs(&page.entries));
            if let Some(live) = page.live {
                return (got, missed, live);
            }
        }
    }

    #[test]
    fn publish_with_commits_before_anyone_can_see_the_entry() {
        let hub = LogHub::new(5, 16);
        let (_, _, mut live) = replay(&mut hub.subscribe(0));
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
        assert_eq!(hub.subscribe(0).next_page(false).entries.len(), 1);
    }

    #[test]
    fn history_is_bounded_and_replay_reports_what_is_gone() {
        let hub = LogHub::new(5, 16);
        publish_n(&hub, 8);
        let page = hub.subscribe(0).next_page(false);
        assert_eq!(seqs(&page.entries), vec![4, 5, 6, 7, 8]);
        assert!(page.caught_up);
        assert_eq!(page.missed, 0, "0 means 'whatever is kept'");
        assert!(page.live.is_none(), "no receiver without follow");
        assert_eq!(
            hub.subscribe(2).next_page(false).missed,
            2,
            "2 and 3 are gone"
        );
        assert_eq!(seqs(&hub.subscribe(7).next_page(false).entries), vec![7, 8]);
        let page = hub.subscribe(100).next_page(true);
        assert!(page.entries.is_empty() && page.caught_up && page.live.is_some());
    }

    #[test]
    fn cursor_pages_through_the_history_in_small_batches() {
        let hub = LogHub::new(1000, 16);
        publish_n(&hub, 200);
        let mut sub = hub.subscribe(0);
        let first = sub.next_page(true);
        assert_eq!(first.entries.len(), PAGE_SIZE);
        assert!(
            !first.caught_up && first.live.is_none(),
            "not caught up yet"
        );
        let (rest, missed, _) = replay(&mut sub);
        assert_eq!(missed, 0);
        let all: Vec<u64> = seqs(&first.entries).into_iter().chain(rest).collect();
        assert_eq!(
            all,
            (1..=200).collect::<Vec<_>>(),
            "every entry once, in order"
        );
    }

    #[test]
    fn cursor_reports_entries_evicted_while_it_was_replaying() {
        let hub = LogHub::new(100, 16);
        publish_n(&hub, 100);
        let mut sub = hub.subscribe(0);
        assert_eq!(
            seqs(&sub.next_page(false).entries),
            (1..=64).collect::<Vec<_>>()
        );
        // 50 more push out 1..=50; the cursor stood at 65, so nothing it needed went...
        publish_n(&hub, 50);
        let page = sub.next_page(false);
        assert_eq!(page.missed, 0);
        assert_eq!(page.entries[0].sequence, 65);
        // ...until 100 more keep only 151..=250 while it stood at 129.
        publish_n(&hub, 100);
        let page = sub.next_page(false);
        assert_eq!(page.missed, 22, "129..=150 are gone");
        assert_eq!(page.entries[0].sequence, 151);
    }

    #[test]
    fn live_receiver_continues_right_after_the_last_page() {
        let hub = LogHub::new(100, 16);
        publish_n(&hub, 70);
        let mut sub = hub.subscribe(0);
        let first = sub.next_page(true);
        // published between pages: read from the history, not from the receiver
        hub.publish(Operation::Notice, &run(), 1.0, None, "between");
        let (rest, _, mut live) = replay(&mut sub);
        assert_eq!(rest, (65..=71).collect::<Vec<_>>());
        assert_eq!(first.entries.len(), PAGE_SIZE);
        hub.publish(Operation::Notice, &run(), 1.0, None, "live");
        assert_eq!(
            live.try_recv().unwrap().sequence,
            72,
            "no gap, no duplicate"
        );
        assert!(live.try_recv().is_err());
    }

    #[test]
    fn lagging_receiver_is_told_how_many_it_missed() {
        let hub = LogHub::new(100, 4);
        let (_, _, mut live) = replay(&mut hub.subscribe(0));
        publish_n(&hub, 10);
        match live.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(n)) => assert_eq!(n, 6),
            other => panic!("expected lag, got {other:?}"),
        }
        assert_eq!(live.try_recv().unwrap().sequence, 7);
    }

    #[test]
    fn watchers_are_counted_while_subscribed_and_limited() {
        let hub = LogHub::new(10, 4).with_max_watchers(2);
        let a = hub.try_subscribe(0).unwrap();
        let b = hub.try_subscribe(0).unwrap();
        assert_eq!(hub.watchers(), 2);
        let err = hub.try_subscribe(0).err().unwrap();
        assert!(matches!(err, EngineError::TooManyWatchers { limit: 2 }));
        assert!(err.to_string().contains("--max-watchers"), "{err}");
        assert_eq!(hub.watchers(), 2, "a refusal holds no slot");
        drop(a);
        let _c = hub.try_subscribe(0).unwrap();
        drop(b);
        assert_eq!(hub.watchers(), 1);
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
            line.contains("#1 SEARCH_TREE_PROGRESS run=run-1 rss=1024.2MiB ws=900.0MiB x"),
            "{line}"
        );
    }

    #[test]
    fn json_lines_carry_every_field_with_mib_sizes_and_a_level() {
        let hub = LogHub::new(10, 4);
        let rec = hub.publish(
            Operation::StressTestError,
            &run(),
            1024.26,
            Some(900.04),
            "boom \"q\"",
        );
        let v: serde_json::Value = serde_json::from_str(&rec.to_json_line()).unwrap();
        assert_eq!(v["operation"], "STRESS_TEST_ERROR");
        assert_eq!(v["level"], "error");
        assert_eq!(v["sequence"], 1);
        assert_eq!(v["run_id"], "run-1");
        assert_eq!(v["rss_mib"], 1024.3);
        assert_eq!(v["working_set_mib"], 900.0);
        assert_eq!(v["message"], "boom \"q\"");
        assert!(v["ts"].as_str().unwrap().ends_with('Z'));
        assert!(v.get("missed").is_none());
        let missed: serde_json::Value =
            serde_json::from_str(&LogRecord::missed(7).to_stdout_line(LogFormat::Json)).unwrap();
        assert_eq!(
            (missed["level"].as_str(), missed["missed"].as_u64()),
            (Some("warn"), Some(7))
        );
        assert!(missed["working_set_mib"].is_null());
    }

    #[test]
    fn process_lines_are_json_in_json_mode_and_verbatim_in_text() {
        assert_eq!(
            process_line(LogFormat::Text, "stressd: stopped"),
            "stressd: stopped"
        );
        let v: serde_json::Value =
            serde_json::from_str(&process_line(LogFormat::Json, "stressd: stopped")).unwrap();
        assert_eq!(
            (v["operation"].as_str(), v["message"].as_str()),
            (Some("SERVER"), Some("stressd: stopped"))
        );
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!(" text ".parse::<LogFormat>(), Ok(LogFormat::Text));
        let err = "yaml".parse::<LogFormat>().unwrap_err();
        assert!(err.contains("yaml") && err.contains("text, json"), "{err}");
    }
}
