//! Opening the state dir: the lock file first, then the database, setting a damaged database
//! aside so that a bad file costs its old records, never the service.

use super::store::{self, Check};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The database file in the state dir.
pub(crate) const DB_FILE: &str = "history.db";
/// The lock file in the state dir; holds the owner's pid.
pub(crate) const LOCK_FILE: &str = "stressd.lock";

/// An opened state dir.
pub(crate) struct Durable {
    /// The database, configured and with our schema.
    pub conn: Connection,
    /// The locked lock file; the lock lasts as long as this handle.
    pub lock: File,
    /// The database file.
    pub db_path: PathBuf,
}

/// Why the state dir cannot be used.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// Another process holds the lock.
    Locked {
        /// The state dir.
        dir: PathBuf,
        /// Its pid, if the lock file says.
        pid: Option<u32>,
    },
    /// Anything else; the text names the path and the OS error.
    Unusable(String),
}

/// Why a database file could not be opened.
enum DbProblem {
    /// The file is not a (healthy) history database.
    Damaged(String),
    /// The file cannot be opened or written at all.
    Unusable(String),
}

/// Locks `dir` (creating it) and opens its database. A damaged database is moved aside and
/// replaced by a fresh one, with a notice naming both files.
pub(crate) fn open_dir(dir: &Path, notices: &mut Vec<String>) -> Result<Durable, OpenError> {
    fs::create_dir_all(dir).map_err(|e| {
        OpenError::Unusable(format!(
            "state dir {} cannot be created ({e})",
            dir.display()
        ))
    })?;
    // Locked before the database is touched: a second stressd must not read, recover or
    // set aside a database that the first one is still writing.
    let lock = take_lock(dir)?;
    let db_path = dir.join(DB_FILE);
    let conn = match open_db(&db_path, notices) {
        Ok(conn) => conn,
        Err(DbProblem::Unusable(why)) => return Err(OpenError::Unusable(why)),
        Err(DbProblem::Damaged(why)) => {
            let aside = set_aside(&db_path).map_err(OpenError::Unusable)?;
            notices.push(format!(
                "history database {} was unreadable ({why}); moved it aside to {} and started \
                 a new, empty history",
                db_path.display(),
                aside.display()
            ));
            open_db(&db_path, notices).map_err(|p| match p {
                DbProblem::Damaged(why) | DbProblem::Unusable(why) => OpenError::Unusable(why),
            })?
        }
    };
    Ok(Durable {
        conn,
        lock,
        db_path,
    })
}

fn take_lock(dir: &Path) -> Result<File, OpenError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            OpenError::Unusable(format!(
                "state dir {} is not writable: cannot open {} ({e})",
                dir.display(),
                path.display()
            ))
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(OpenError::Locked {
                dir: dir.to_owned(),
                pid: read_pid(&mut file),
            });
        }
        Err(TryLockError::Error(e)) => {
            return Err(OpenError::Unusable(format!(
                "cannot lock {} ({e})",
                path.display()
            )));
        }
    }
    // The pid only improves a second stressd's error message; failing to write it (a full
    // disk) must not cost the history.
    let _ = file
        .set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.flush());
    Ok(file)
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(64).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn open_db(path: &Path, notices: &mut Vec<String>) -> Result<Connection, DbProblem> {
    let unusable = |e: rusqlite::Error| {
        DbProblem::Unusable(format!(
            "database {} cannot be opened ({e})",
            path.display()
        ))
    };
    let mut conn = Connection::open(path).map_err(unusable)?;
    // Until the file has passed the check, closing must not checkpoint: SQLite would fold a
    // WAL into a damaged file, or delete a WAL it could not read, destroying the evidence
    // that is about to be set aside. For the same reason it is checked before configuring.
    let checked = conn
        .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .and_then(|_| store::check(&conn))
        .and_then(|check| {
            if !matches!(check, Check::Damaged(_)) {
                conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)?;
                let mode = store::configure_durable(&conn)?;
                if !mode.eq_ignore_ascii_case("wal") {
                    notices.push(format!(
                        "history database {}: journal mode is {mode}, not wal (the filesystem may \
                     not support it); a killed process still loses nothing",
                        path.display()
                    ));
                }
            }
            Ok(check)
        });
    // A read-only file opens without complaint and fails only at the first write: better to
    // say so now, with the path.
    if matches!(checked, Ok(Check::Ready | Check::Fresh | Check::Outdated))
        && conn.is_readonly("main").unwrap_or(false)
    {
        return Err(DbProblem::Unusable(format!(
            "database {} is read-only",
            path.display()
        )));
    }
    match checked {
        Ok(Check::Ready) => Ok(conn),
        Ok(Check::Outdated) => match store::migrate(&mut conn) {
            Ok(()) => {
                notices.push(format!(
                    "history database {}: schema migrated to version {} (workload and phases \
                     columns; earlier runs read as tree runs with one target)",
                    path.display(),
                    store::SCHEMA_VERSION
                ));
                Ok(conn)
            }
            Err(e) => Err(unusable(e)),
        },
        Ok(Check::Fresh) => match store::create_schema(&mut conn) {
            Ok(()) => Ok(conn),
            Err(e) => Err(unusable(e)),
        },
        Ok(Check::Damaged(why)) => Err(DbProblem::Damaged(why)),
        Err(e) if is_damage(&e) => Err(DbProblem::Damaged(e.to_string())),
        Err(e) => Err(unusable(e)),
    }
}

fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

/// Renames `history.db` to `history.db.corrupt-<UTC time>`, and its `-wal`/`-shm` files to
/// the same name plus `-wal`/`-shm`, so `sqlite3` opens the set-aside file together with its
/// WAL. Returns the new path of the database file.
fn set_aside(db: &Path) -> Result<PathBuf, String> {
    let stamp = utc_stamp(SystemTime::now());
    let mut aside = PathBuf::from(format!("{}.corrupt-{stamp}", db.display()));
    // Two corruptions within a second must not overwrite the first one's evidence.
    let mut n = 1;
    while aside.exists() {
        n += 1;
        aside = PathBuf::from(format!("{}.corrupt-{stamp}-{n}", db.display()));
    }
    let fail = |from: &Path, e: std::io::Error| {
        format!(
            "database {} is damaged and cannot be moved aside ({e})",
            from.display()
        )
    };
    fs::rename(db, &aside).map_err(|e| fail(db, e))?;
    for ext in ["-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{ext}", db.display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}{ext}", aside.display()));
            fs::rename(&from, &to).map_err(|e| fail(&from, e))?;
        }
    }
    Ok(aside)
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
pub(crate) fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    let s = secs % 86_400;
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamps() {
        let at = |s: u64| utc_stamp(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "19700101T000000Z");
        assert_eq!(at(951_782_400 + 3_723), "20000229T010203Z");
        assert_eq!(at(1_704_067_199), "20231231T235959Z");
        assert_eq!(at(1_709_251_200), "20240301T000000Z");
    }

    #[test]
    fn lock_names_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = take_lock(dir.path()).unwrap();
        match take_lock(dir.path()) {
            Err(OpenError::Locked { dir: d, pid }) => {
                assert_eq!(d, dir.path());
                assert_eq!(pid, Some(std::process::id()));
            }
            other => panic!("expected Locked, got {:?}", other.map(|_| ())),
        }
        drop(first);
        assert!(take_lock(dir.path()).is_ok());
    }
}
