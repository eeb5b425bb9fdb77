//! What happens when a write fails: the history moves into memory and carries on there.
//!
//! A full disk (SQLITE_FULL), an I/O error or a file turned read-only must not cost the runs
//! recorded so far, nor the ones to come, nor the service: the database is copied into an
//! in-memory one with SQLite's backup API (reading still works on a full disk), the failed
//! write is retried there, and Status says from then on that the history is memory-only and
//! why. Nothing here panics; the worst case is one record lost, with a notice saying so.

use super::model::{HistoryMode, RunRecord};
use super::{History, Store, store};
use rusqlite::Connection;

impl History {
    /// Runs `op`; if it fails on the file, moves the history into memory and runs it again
    /// there. None if it failed for good (noticed; the caller carries on without it).
    pub(super) fn write<T>(
        &self,
        st: &mut Store,
        mut op: impl FnMut(&mut Connection) -> rusqlite::Result<T>,
    ) -> Option<T> {
        let err = match op(&mut st.conn) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        if !st.durable {
            self.notice(format!(
                "history write failed in memory: {err}; that record is lost"
            ));
            return None;
        }
        self.fail_over(st, &err);
        match op(&mut st.conn) {
            Ok(v) => Some(v),
            Err(e) => {
                self.notice(format!(
                    "history write failed in memory: {e}; that record is lost"
                ));
                None
            }
        }
    }

    /// Replaces the file connection by an in-memory copy of it. A full disk still reads, so
    /// the backup normally keeps every record; if even that fails, a fresh database gets the
    /// runs this process holds and the number counter. If no in-memory database can be had
    /// at all, the file connection stays and the next write tries again.
    fn fail_over(&self, st: &mut Store, err: &rusqlite::Error) {
        let mut reason = format!("history write failed: {err}; history is memory-only from now on");
        let conn = match copy_to_memory(&st.conn) {
            Ok(conn) => conn,
            Err(e) => {
                reason.push_str(&format!(
                    " (the records written before could not be copied: {e})"
                ));
                let previous = self.lock_cache().previous.clone();
                match rebuild_in_memory(st, previous.as_ref()) {
                    Ok(conn) => conn,
                    Err(e) => {
                        self.notice(format!(
                            "history write failed: {err}; no in-memory database either: {e}"
                        ));
                        return;
                    }
                }
            }
        };
        st.conn = conn;
        st.durable = false;
        let runs_kept = store::count(&st.conn).ok();
        let mut cache = self.lock_cache();
        cache.mode = HistoryMode::Memory {
            reason: reason.clone(),
        };
        if let Some(kept) = runs_kept {
            cache.runs_kept = kept;
        }
        drop(cache);
        self.notice(reason);
    }
}

/// Closes the run; if the database has lost its row (a rebuilt in-memory one), writes it
/// whole. Returns the runs kept.
pub(super) fn close_or_insert(conn: &mut Connection, rec: &RunRecord) -> rusqlite::Result<u64> {
    if store::close(conn, rec)? == 0 {
        store::insert(conn, rec, Some(rec.number))?;
    }
    store::count(conn)
}

fn copy_to_memory(from: &Connection) -> rusqlite::Result<Connection> {
    let mut to = Connection::open_in_memory()?;
    rusqlite::backup::Backup::new(from, &mut to)?.run_to_completion(
        i32::MAX,
        std::time::Duration::ZERO,
        None,
    )?;
    Ok(to)
}

/// The best in-memory database when the file cannot even be read: this process's open runs,
/// the previous run, and the counter, so numbers stay unique.
fn rebuild_in_memory(st: &Store, previous: Option<&RunRecord>) -> rusqlite::Result<Connection> {
    let conn = store::open_memory()?;
    store::set_last_number(&conn, st.last_number)?;
    for rec in st.open_runs.values().chain(previous) {
        store::insert(&conn, rec, Some(rec.number))?;
    }
    Ok(conn)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::model::Outcome;
    use super::super::tests::{completed_runs, end, id, new_run, open};
    use super::super::{HistoryConfig, store};
    use super::*;

    #[test]
    fn rebuilt_database_keeps_open_runs_previous_run_and_counter() {
        let h = open(&HistoryConfig::default()).history;
        completed_runs(&h, 3);
        let (running, _) = h.begin(&new_run(), id);
        let previous = h.previous_run();
        let st = h.lock_store();
        let conn = rebuild_in_memory(&st, previous.as_ref()).unwrap();
        drop(st);
        let kept: Vec<u64> = store::page(&conn, None, 10)
            .unwrap()
            .iter()
            .map(|r| r.number)
            .collect();
        assert_eq!(kept, vec![running, 3]);
        assert_eq!(store::last_number(&conn).unwrap(), running);
    }

    #[test]
    fn a_failing_memory_write_is_noticed_not_fatal() {
        let h = open(&HistoryConfig::default()).history;
        completed_runs(&h, 1);
        h.lock_store()
            .conn
            .execute_batch("DROP TABLE runs")
            .unwrap();
        let (n, run_id) = h.begin(&new_run(), id);
        assert_eq!((n, run_id), (2, id(2)));
        h.finish(n, &end(Outcome::Completed));
        assert_eq!(h.previous_run().map(|r| r.number), Some(2));
        let notices = h.take_notices();
        assert_eq!(notices.len(), 2, "{notices:?}");
        assert!(notices[0].contains("no such table: runs"), "{notices:?}");
        assert!(h.list(None, "").is_err());
    }
}
