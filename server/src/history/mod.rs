//! Run history: one record per run in an embedded SQLite database, so the result of a run
//! outlives the process that ran it (an OOM kill above all).
//!
//! Why SQLite (rusqlite with the `bundled` library, so the image needs no system libsqlite):
//! the history is small (at most `limit` rows), written a few times per run and read by
//! ListRuns/GetRun, and it must survive exactly the event this tool provokes: the process
//! being killed mid-write. The database runs in WAL mode with `synchronous=NORMAL`: a commit
//! has reached the WAL in the page cache when it returns, so SIGKILL or the OOM killer lose
//! nothing written; only a kernel crash or power loss can take the last few commits, and
//! commits stay cheap (no fsync per checkpoint). A torn write leaves the WAL to be replayed,
//! not a half-written file to be parsed.
//!
//! Memory-only mode (no `--state-dir`, an unusable dir, or a write failure at runtime) is an
//! in-memory SQLite database rather than a second implementation: one code path for paging,
//! lookup, pruning and recovery, and a failing disk is survived by copying the file's
//! contents into memory with SQLite's backup API and carrying on there.
//!
//! Status never waits for SQL: the mode, the run count, the previous run and the tally are
//! cached behind their own short locks, apart from the connection's.

mod columns;
mod failover;
pub mod model;
mod open;
pub mod recovery;
mod store;
pub mod tally;

use model::{CgroupIdentity, Checkpoint, HistoryMode, HistoryStatus, NewRun, RunEnd, RunRecord};
use rusqlite::Connection;
use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use tally::RunTally;

/// Most runs kept unless configured otherwise.
pub const DEFAULT_LIMIT: u64 = 1000;
/// Runs per ListRuns page unless asked otherwise.
pub const DEFAULT_PAGE: u32 = 50;
/// Largest ListRuns page.
pub const MAX_PAGE: u32 = 1000;

const NO_STATE_DIR: &str =
    "no --state-dir: history is kept in memory only and will not survive a restart";

/// Where and how much history to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Directory of `history.db` and `stressd.lock`; `None` keeps the history in memory.
    pub state_dir: Option<PathBuf>,
    /// Most runs kept; the oldest closed runs go first (at least 1 is kept).
    pub limit: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            state_dir: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// What the process knows about its own cgroup now, for recovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentCgroup {
    /// This process's cgroup, if it could be resolved.
    pub identity: Option<CgroupIdentity>,
    /// Its oom_kill counter, if readable.
    pub oom_kills: Option<u64>,
}

/// Why the history refused a request or could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Another stressd holds the state dir's lock.
    #[error("{}", locked_message(dir, pid))]
    Locked {
        /// The state dir.
        dir: PathBuf,
        /// The other process, if its lock file says.
        pid: Option<u32>,
    },
    /// No run with this id or number.
    #[error(
        "no run {run_id:?} in the history; run ids look like \"run-12-3fa2b1\" or \"12\" (ListRuns shows those kept)"
    )]
    NotFound {
        /// The id asked for.
        run_id: String,
    },
    /// A ListRuns/GetRun argument is invalid.
    #[error("{field} = {value:?} is invalid (allowed: {allowed})")]
    InvalidArgument {
        /// Request field name as in the proto.
        field: &'static str,
        /// The value received.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// The database failed on a read.
    #[error("history read failed: {0}")]
    Storage(String),
}

/// An opened history and what opening it found.
#[derive(Debug)]
pub struct Opened {
    /// The history.
    pub history: History,
    /// Things to log at startup (memory-only mode and why, a damaged file set aside, …).
    pub notices: Vec<String>,
    /// Runs a previous process left open, now closed as Killed/OomKilled, oldest first; each
    /// `outcome_message` is the sentence to log.
    pub recovered: Vec<RunRecord>,
}

/// The connection and what only writers touch.
struct Store {
    conn: Connection,
    /// Still writing to the file (false after a failover or in memory mode).
    durable: bool,
    /// Runs begun by this process and not finished yet. The authority on which runs may still
    /// be written, and the copy that survives a write failure.
    open_runs: HashMap<u64, RunRecord>,
    /// Highest number handed out, so a rebuilt database never reuses one.
    last_number: u64,
    /// Held for the life of the history: the flock is released when the file is closed.
    _lock: Option<File>,
}

/// What Status reads, apart from the connection so a slow write never delays it.
struct Cache {
    mode: HistoryMode,
    runs_kept: u64,
    previous: Option<RunRecord>,
}

/// The run history. `Send + Sync`; writes are synchronous SQL on the caller's thread.
pub struct History {
    store: Mutex<Store>,
    cache: Mutex<Cache>,
    notices: Mutex<Vec<String>>,
    tally: RunTally,
    limit: u64,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl History {
    /// Opens (or creates) the store and closes the runs a previous process left open. Err only
    /// for [`HistoryError::Locked`] (and [`HistoryError::Storage`] if not even an in-memory
    /// database can be had); every other problem degrades to memory-only with a notice.
    pub fn open(config: &HistoryConfig, current: &CurrentCgroup) -> Result<Opened, HistoryError> {
        let mut notices = Vec::new();
        let (conn, lock, mode) = connect(config, &mut notices)?;
        let store = Store {
            last_number: store::last_number(&conn).unwrap_or(0),
            durable: lock.is_some(),
            conn,
            open_runs: HashMap::new(),
            _lock: lock,
        };
        let history = History {
            store: Mutex::new(store),
            cache: Mutex::new(Cache {
                mode,
                runs_kept: 0,
                previous: None,
            }),
            notices: Mutex::new(Vec::new()),
            tally: RunTally::default(),
            limit: config.limit.max(1),
        };
        let recovered = history.recover(current);
        history.settle();
        notices.extend(history.take_notices());
        Ok(Opened {
            history,
            notices,
            recovered,
        })
    }

    /// Records a new run and returns its number and run id (`make_id(number)`). Numbers come
    /// from the store's AUTOINCREMENT counter, so they are never reused, pruning included.
    /// Prunes the oldest runs beyond the limit (never this one, never a running one).
    pub fn begin(&self, run: &NewRun, make_id: impl FnOnce(u64) -> String) -> (u64, String) {
        let mut record = new_record(run);
        let mut make_id = Some(make_id);
        let mut made: Option<(u64, String)> = None;
        // A write retried after a failover asks for the id again; the closure runs once.
        let mut id_for = |n: u64| -> String {
            if let Some((m, id)) = &made
                && *m == n
            {
                return id.clone();
            }
            let id = make_id.take().map_or_else(|| format!("run-{n}"), |f| f(n));
            made = Some((n, id.clone()));
            id
        };
        let limit = self.limit;
        let mut st = self.lock_store();
        let written = self.write(&mut st, |conn| {
            store::begin(conn, &record, limit, &mut id_for)
        });
        let (number, run_id, kept) = match written {
            Some(w) => (w.0, w.1, Some(w.2)),
            None => {
                let n = st.last_number + 1;
                (n, id_for(n), None)
            }
        };
        st.last_number = st.last_number.max(number);
        record.number = number;
        record.run_id.clone_from(&run_id);
        st.open_runs.insert(number, record);
        drop(st);
        if let Some(kept) = kept {
            self.lock_cache().runs_kept = kept;
        }
        (number, run_id)
    }

    /// Writes the newest checkpoint of an open run and raises its stored peaks. A checkpoint
    /// of a run already finished (a late one) or unknown is ignored.
    pub fn checkpoint(&self, number: u64, cp: &Checkpoint) {
        let mut st = self.lock_store();
        let Some(rec) = st.open_runs.get_mut(&number) else {
            return;
        };
        rec.peak_rss_bytes = rec.peak_rss_bytes.max(cp.rss_bytes);
        rec.peak_working_set_bytes = max_opt(rec.peak_working_set_bytes, cp.working_set_bytes);
        rec.last_checkpoint = Some(cp.clone());
        self.write(&mut st, |conn| store::checkpoint(conn, number, cp));
    }

    /// Closes a run that ended in this process, counts its outcome in the tally and makes it
    /// the previous run. A second finish of the same run is ignored.
    pub fn finish(&self, number: u64, end: &RunEnd) {
        let mut st = self.lock_store();
        let Some(mut rec) = st.open_runs.remove(&number) else {
            return;
        };
        rec.outcome = end.outcome;
        rec.ended_at_ms = Some(end.ended_at_ms);
        rec.peak_rss_bytes = rec.peak_rss_bytes.max(end.peak_rss_bytes);
        rec.peak_working_set_bytes =
            max_opt(rec.peak_working_set_bytes, end.peak_working_set_bytes);
        rec.time_to_target_ms = end.time_to_target_ms;
        rec.fill_rate_mb_per_second = end.fill_rate_mb_per_second;
        rec.searches = end.searches;
        rec.oom_kills_at_end = end.oom_kills_at_end;
        rec.last_error.clone_from(&end.last_error);
        let kept = self.write(&mut st, |conn| failover::close_or_insert(conn, &rec));
        drop(st);
        self.tally.count_run(rec.outcome);
        let mut cache = self.lock_cache();
        if let Some(kept) = kept {
            cache.runs_kept = kept;
        }
        cache.previous = Some(rec);
    }

    /// Runs newest first, at most `limit` (default 50, 1 to 1000), after `cursor` ("" for the
    /// first page, else the `next_cursor` of the previous page). Returns the page and the
    /// next cursor ("" when there is no further page).
    pub fn list(
        &self,
        limit: Option<u32>,
        cursor: &str,
    ) -> Result<(Vec<RunRecord>, String), HistoryError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(HistoryError::InvalidArgument {
                field: "limit",
                value: limit.to_string(),
                allowed: format!("1 to {MAX_PAGE} (default {DEFAULT_PAGE})"),
            });
        }
        let before =
            match cursor.trim() {
                "" => None,
                c => Some(c.parse::<u64>().map_err(|_| {
                    HistoryError::InvalidArgument {
                        field: "cursor",
                        value: cursor.to_owned(),
                        allowed:
                            "empty for the first page, else the next_cursor of the previous page"
                                .to_owned(),
                    }
                })?),
            };
        let st = self.lock_store();
        // One row more than asked tells whether another page follows.
        let mut runs = store::page(&st.conn, before, limit + 1).map_err(storage)?;
        drop(st);
        let mut next = String::new();
        if runs.len() > limit as usize {
            runs.truncate(limit as usize);
            next = runs
                .last()
                .map(|r| r.number.to_string())
                .unwrap_or_default();
        }
        Ok((runs, next))
    }

    /// One run, by run id ("run-12-3fa2b1", exact) or by number ("12").
    pub fn get(&self, run_id: &str) -> Result<RunRecord, HistoryError> {
        let id = run_id.trim();
        if id.is_empty() {
            return Err(HistoryError::InvalidArgument {
                field: "run_id",
                value: run_id.to_owned(),
                allowed: "a run id like \"run-12-3fa2b1\" or a run number like \"12\"".to_owned(),
            });
        }
        let st = self.lock_store();
        let found = match id.parse::<u64>() {
            Ok(n) => store::by_number(&st.conn, n),
            Err(_) => store::by_run_id(&st.conn, id),
        }
        .map_err(storage)?;
        found.ok_or_else(|| HistoryError::NotFound {
            run_id: run_id.to_owned(),
        })
    }

    /// The last finished run (outcome not Running), from memory: Status never queries SQL.
    pub fn previous_run(&self) -> Option<RunRecord> {
        self.lock_cache().previous.clone()
    }

    /// Mode, runs kept and limit, from memory.
    pub fn status(&self) -> HistoryStatus {
        let cache = self.lock_cache();
        HistoryStatus {
            mode: cache.mode.clone(),
            runs_kept: cache.runs_kept,
            limit: self.limit,
        }
    }

    /// Finished runs by outcome (counted in `finish` and for each run recovered at open) and
    /// the time-to-target histogram (observed by the engine when a build reaches its target,
    /// not here: a run's time to target is known long before it finishes).
    pub fn tally(&self) -> &RunTally {
        &self.tally
    }

    /// Takes the notices produced since the last call (e.g. "history write failed: database
    /// or disk is full; history is memory-only from now on"), for the log.
    pub fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.notices.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Makes the durable database refuse to grow, to provoke SQLITE_FULL in tests.
    #[cfg(test)]
    pub(crate) fn set_max_page_count(&self, pages: u64) -> rusqlite::Result<u64> {
        let st = self.lock_store();
        st.conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .map(columns::to_u64)
    }

    fn lock_store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notice(&self, msg: String) {
        self.notices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(msg);
    }

    /// Closes every run still marked running (killed with a previous process) and counts it.
    fn recover(&self, current: &CurrentCgroup) -> Vec<RunRecord> {
        let mut st = self.lock_store();
        let open = match store::running(&st.conn) {
            Ok(runs) => runs,
            Err(e) => {
                self.notice(format!("history: unfinished runs could not be read: {e}"));
                return Vec::new();
            }
        };
        let mut closed = Vec::with_capacity(open.len());
        for run in &open {
            let rec = recovery::close(run, current);
            self.write(&mut st, |conn| store::close(conn, &rec));
            self.tally.count_run(rec.outcome);
            closed.push(rec);
        }
        closed
    }

    /// After recovery: prune to the limit (it may have been lowered), then fill the cache.
    fn settle(&self) {
        let limit = self.limit;
        let mut st = self.lock_store();
        self.write(&mut st, |conn| store::prune(conn, limit, None));
        let kept = store::count(&st.conn);
        let previous = store::latest_finished(&st.conn);
        st.last_number = st
            .last_number
            .max(store::last_number(&st.conn).unwrap_or(0));
        drop(st);
        let mut cache = self.lock_cache();
        match kept {
            Ok(k) => cache.runs_kept = k,
            Err(e) => self.notice(format!("history: runs could not be counted: {e}")),
        }
        match previous {
            Ok(p) => cache.previous = p,
            Err(e) => self.notice(format!("history: the previous run could not be read: {e}")),
        }
    }
}

/// The connection and mode for `config`, before recovery.
fn connect(
    config: &HistoryConfig,
    notices: &mut Vec<String>,
) -> Result<(Connection, Option<File>, HistoryMode), HistoryError> {
    let reason = match &config.state_dir {
        None => NO_STATE_DIR.to_owned(),
        Some(dir) => match open::open_dir(dir, notices) {
            Ok(d) => {
                let path = d.db_path.display().to_string();
                return Ok((d.conn, Some(d.lock), HistoryMode::Durable { path }));
            }
            Err(open::OpenError::Locked { dir, pid }) => {
                return Err(HistoryError::Locked { dir, pid });
            }
            Err(open::OpenError::Unusable(why)) => {
                format!("{why}: history is kept in memory only and will not survive a restart")
            }
        },
    };
    notices.push(reason.clone());
    let conn = store::open_memory().map_err(|e| {
        HistoryError::Storage(format!(
            "not even an in-memory database could be opened: {e}"
        ))
    })?;
    Ok((conn, None, HistoryMode::Memory { reason }))
}

/// A record for a run that has just started.
fn new_record(run: &NewRun) -> RunRecord {
    RunRecord {
        number: 0,
        run_id: String::new(),
        params: run.params.clone(),
        target_bytes: run.target_bytes,
        basis: run.basis.clone(),
        started_at_ms: run.started_at_ms,
        ended_at_ms: None,
        outcome: model::Outcome::Running,
        evidence: None,
        outcome_message: String::new(),
        peak_rss_bytes: 0,
        peak_working_set_bytes: None,
        time_to_target_ms: None,
        fill_rate_mb_per_second: 0.0,
        searches: 0,
        oom_kills_at_start: run.oom_kills_at_start,
        oom_kills_at_end: None,
        last_error: String::new(),
        last_checkpoint: None,
        recovered: false,
    }
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn locked_message(dir: &std::path::Path, pid: &Option<u32>) -> String {
    let who = pid.map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"));
    format!(
        "state dir {} is in use by another stressd ({who}, holding {}); two servers must not \
         share one history: give each its own --state-dir",
        dir.display(),
        dir.join(open::LOCK_FILE).display()
    )
}

fn storage(e: rusqlite::Error) -> HistoryError {
    HistoryError::Storage(e.to_string())
}

#[cfg(test)]
mod file_tests;
#[cfg(test)]
mod tests;
