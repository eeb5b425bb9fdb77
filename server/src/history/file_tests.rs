//! Tests of the history in a state dir: creating it, a dir that cannot be used, a damaged
//! database, the lock, a disk that fills up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::model::{HistoryMode, Outcome};
use super::tests::{checkpoint, completed_runs, durable, end, id, new_run, open};
use super::*;
use crate::params::MIB;
use std::path::Path;

#[test]
fn durable_database_is_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let _h = open(&durable(dir.path(), 10)).history;
    let conn = rusqlite::Connection::open(dir.path().join("history.db")).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn missing_state_dir_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("a/b/c");
    let h = open(&durable(&deep, 10)).history;
    assert!(matches!(h.status().mode, HistoryMode::Durable { .. }));
    assert!(deep.join("history.db").is_file());
    let pid = std::fs::read_to_string(deep.join("stressd.lock")).unwrap();
    assert_eq!(pid.trim(), std::process::id().to_string());
}

#[test]
fn unusable_state_dir_means_memory_mode() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let bad = file.join("state");
    let opened = open(&durable(&bad, 10));
    let HistoryMode::Memory { reason } = opened.history.status().mode else {
        panic!("not memory mode");
    };
    assert!(reason.contains(&bad.display().to_string()), "{reason}");
    assert!(reason.contains("os error 20"), "{reason}");
    assert!(reason.contains("in memory only"), "{reason}");
    assert_eq!(opened.notices, vec![reason]);
    assert_eq!(completed_runs(&opened.history, 2), vec![1, 2]);

    // A database path that is a directory cannot be opened either.
    let dir2 = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir2.path().join("history.db")).unwrap();
    let opened = open(&durable(dir2.path(), 10));
    assert!(matches!(
        opened.history.status().mode,
        HistoryMode::Memory { .. }
    ));
    assert_eq!(opened.notices.len(), 1, "{:?}", opened.notices);
}

fn aside_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".corrupt-"))
        .collect();
    names.sort();
    names
}

fn is_stamped(name: &str, tail: &str) -> bool {
    let Some(rest) = name.strip_prefix("history.db.corrupt-") else {
        return false;
    };
    let Some(stamp) = rest.strip_suffix(tail) else {
        return false;
    };
    stamp.len() == 16
        && stamp.as_bytes()[8] == b'T'
        && stamp.ends_with('Z')
        && stamp.chars().filter(char::is_ascii_digit).count() == 14
}

#[test]
fn corrupt_database_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.path().join("history.db"), &garbage).unwrap();
    std::fs::write(dir.path().join("history.db-wal"), b"not a wal").unwrap();
    let opened = open(&durable(dir.path(), 10));
    assert!(matches!(
        opened.history.status().mode,
        HistoryMode::Durable { .. }
    ));
    // SQLite makes a -shm when it reads the WAL; it goes aside with the rest.
    let names = aside_files(dir.path());
    let [db, shm, wal] = names.as_slice() else {
        panic!("{names:?}");
    };
    assert!(is_stamped(db, ""), "{db}");
    assert!(is_stamped(shm, "-shm"), "{shm}");
    assert!(is_stamped(wal, "-wal"), "{wal}");
    assert_eq!(std::fs::read(dir.path().join(wal)).unwrap(), b"not a wal");
    assert_eq!(std::fs::read(dir.path().join(db)).unwrap(), garbage);
    let [notice] = opened.notices.as_slice() else {
        panic!("{:?}", opened.notices);
    };
    assert!(
        notice.contains(&dir.path().join("history.db").display().to_string()),
        "{notice}"
    );
    assert!(
        notice.contains(&dir.path().join(db).display().to_string()),
        "{notice}"
    );
    assert_eq!(completed_runs(&opened.history, 1), vec![1]);
    drop(opened);
    assert_eq!(open(&durable(dir.path(), 10)).history.status().runs_kept, 1);
}

#[test]
fn foreign_schema_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("history.db")).unwrap();
    conn.execute_batch("CREATE TABLE runs (number INTEGER); PRAGMA user_version = 7;")
        .unwrap();
    drop(conn);
    let opened = open(&durable(dir.path(), 10));
    assert!(
        opened.notices[0].contains("schema version 7"),
        "{:?}",
        opened.notices
    );
    assert_eq!(aside_files(dir.path()).len(), 1);
    assert_eq!(completed_runs(&opened.history, 1), vec![1]);
}

#[test]
fn version_1_file_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("history.db")).unwrap();
    let old = super::tests::record(1);
    super::store::create_v1_with(&conn, &old);
    drop(conn);
    let opened = open(&durable(dir.path(), 10));
    assert!(
        matches!(opened.history.status().mode, HistoryMode::Durable { .. }),
        "{:?}",
        opened.notices
    );
    assert!(aside_files(dir.path()).is_empty(), "nothing set aside");
    assert!(
        opened
            .notices
            .iter()
            .any(|n| n.contains("migrated to version 2")),
        "{:?}",
        opened.notices
    );
    let kept = opened.history.get(&old.run_id).unwrap();
    assert_eq!(kept.params.workload, crate::params::WorkloadKind::Tree);
    assert_eq!(kept.params.repeat, 1);
    // New runs go on from the old numbers and keep their workload.
    assert_eq!(completed_runs(&opened.history, 1), vec![2]);
    drop(opened);
    let again = open(&durable(dir.path(), 10));
    assert!(
        !again.notices.iter().any(|n| n.contains("migrated")),
        "migrated once: {:?}",
        again.notices
    );
    assert_eq!(again.history.status().runs_kept, 2);
}

#[test]
fn second_open_of_a_dir_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(&durable(dir.path(), 10));
    completed_runs(&first.history, 1);
    let err = History::open(&durable(dir.path(), 10), &CurrentCgroup::default()).unwrap_err();
    let HistoryError::Locked { dir: d, pid } = &err else {
        panic!("{err:?}");
    };
    assert_eq!((d.as_path(), *pid), (dir.path(), Some(std::process::id())));
    let msg = err.to_string();
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    // The refused open touched nothing: the first one's records are intact.
    drop(first);
    assert_eq!(open(&durable(dir.path(), 10)).history.status().runs_kept, 1);
}

#[test]
fn disk_full_moves_history_to_memory() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(&durable(dir.path(), 1000)).history;
    completed_runs(&h, 2);
    let (open_run, _) = h.begin(&new_run(), id);
    h.set_max_page_count(1).unwrap();
    let mut big = new_run();
    big.basis.detail = "x".repeat(3000);
    let mut last = open_run;
    for _ in 0..50 {
        let (n, run_id) = h.begin(&big, id);
        assert_eq!((n, run_id), (last + 1, id(last + 1)));
        last = n;
        if matches!(h.status().mode, HistoryMode::Memory { .. }) {
            break;
        }
    }
    let HistoryMode::Memory { reason } = h.status().mode else {
        panic!("never switched to memory");
    };
    assert_eq!(
        reason,
        "history write failed: database or disk is full; history is memory-only from now on"
    );
    assert_eq!(h.take_notices(), vec![reason]);
    assert!(h.take_notices().is_empty());
    // Everything written before is still there, and writing goes on.
    assert_eq!(h.get("1").unwrap().outcome, Outcome::Completed);
    assert_eq!(h.get(&last.to_string()).unwrap().basis.detail.len(), 3000);
    h.checkpoint(open_run, &checkpoint(700, Some(710)));
    h.finish(open_run, &end(Outcome::Stopped));
    assert_eq!(
        h.get(&open_run.to_string()).unwrap().peak_rss_bytes,
        700 * MIB
    );
    let (next, _) = h.begin(&new_run(), id);
    assert_eq!(next, last + 1);
    assert_eq!(h.status().runs_kept, next);
    assert_eq!(h.list(Some(1000), "").unwrap().0.len() as u64, next);
    assert!(h.take_notices().is_empty());
}
