//! The SQL of the run history: schema, writes, queries and pruning. Every function works on
//! the connection it is given; which database that is (file or memory) and what happens when
//! a write fails is the facade's business (`super::History`).
//!
//! Records are stored column by column, no serialisation format: the database stays readable
//! with the `sqlite3` shell during an incident, and a column added later is one ALTER TABLE.

use super::columns::{
    COLUMNS, checkpoint_values, int, record_from_row, record_values, to_i64, to_u64,
};
use super::model::{Checkpoint, Evidence, RunRecord};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

/// Bumped whenever the `runs` table changes. A version-1 database is migrated in place
/// ([`migrate`]); any other version is set aside.
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// Columns of a version-1 table (version 2 appended the workload and the profile).
const V1_COLUMNS: usize = 41;

/// Version 1 → 2: columns with defaults that describe every run a version-1 stressd made
/// (a tree, one target, once).
const MIGRATE_V1_SQL: &str = "
ALTER TABLE runs ADD COLUMN workload TEXT NOT NULL DEFAULT 'tree';
ALTER TABLE runs ADD COLUMN phases TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN profile_repeat INTEGER NOT NULL DEFAULT 1;
";

const CREATE_SQL: &str = "
CREATE TABLE runs (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_mb INTEGER,
    target_percent REAL,
    duration_seconds INTEGER NOT NULL,
    log_interval_seconds INTEGER NOT NULL,
    payload_size_kb INTEGER NOT NULL,
    ramp_mb_per_second REAL NOT NULL,
    search_rate INTEGER NOT NULL,
    keep_hot INTEGER NOT NULL,
    huge_pages INTEGER NOT NULL,
    scope TEXT NOT NULL,
    allow_oom INTEGER NOT NULL,
    target_bytes INTEGER NOT NULL,
    basis_limit_bytes INTEGER NOT NULL,
    basis_source TEXT NOT NULL,
    basis_detail TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL,
    ended_at_ms INTEGER,
    outcome TEXT NOT NULL,
    evidence TEXT,
    outcome_message TEXT NOT NULL,
    peak_rss_bytes INTEGER NOT NULL,
    peak_working_set_bytes INTEGER,
    time_to_target_ms INTEGER,
    fill_rate_mb_per_second REAL,
    searches INTEGER NOT NULL,
    oom_kills_at_start INTEGER,
    oom_kills_at_end INTEGER,
    last_error TEXT NOT NULL,
    recovered INTEGER NOT NULL,
    cp_taken_at_ms INTEGER,
    cp_state TEXT,
    cp_rss_bytes INTEGER,
    cp_working_set_bytes INTEGER,
    cp_nodes INTEGER,
    cp_cgroup_version TEXT,
    cp_cgroup_path TEXT,
    cp_cgroup_inode INTEGER,
    cp_oom_kills INTEGER,
    workload TEXT NOT NULL DEFAULT 'tree',
    phases TEXT NOT NULL DEFAULT '',
    profile_repeat INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX runs_run_id ON runs(run_id);
CREATE INDEX runs_outcome ON runs(outcome);
";

const RUNNING: &str = "running";

/// What an opened database holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Nothing yet: the schema is to be created.
    Fresh,
    /// Our schema, intact.
    Ready,
    /// Our version-1 schema, intact: [`migrate`] brings it to this version.
    Outdated,
    /// Damaged or someone else's schema; the text says what is wrong.
    Damaged(String),
}

/// Settings for the durable file. WAL with synchronous=NORMAL: a commit is in the WAL (page
/// cache) when it returns, so a killed process loses nothing; only a kernel crash or power
/// loss can take the last commits. Returns the journal mode actually in force (a filesystem
/// without shared-memory support keeps the rollback journal).
pub(crate) fn configure_durable(conn: &Connection) -> rusqlite::Result<String> {
    // Nothing else opens the file (the lock file sees to that), so a short wait is plenty.
    conn.busy_timeout(std::time::Duration::from_millis(250))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(mode)
}

/// Tells a fresh database from ours and from a damaged one.
pub(crate) fn check(conn: &Connection) -> rusqlite::Result<Check> {
    let verdict: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if verdict != "ok" {
        return Ok(Check::Damaged(format!("quick_check: {verdict}")));
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if version == 0 && tables == 0 {
        return Ok(Check::Fresh);
    }
    let expected = match version {
        1 => &COLUMNS[..V1_COLUMNS],
        SCHEMA_VERSION => &COLUMNS[..],
        _ => {
            return Ok(Check::Damaged(format!(
                "schema version {version}, this stressd writes version {SCHEMA_VERSION}"
            )));
        }
    };
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('runs')")?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if names != expected {
        return Ok(Check::Damaged(format!(
            "unexpected columns in table runs: {}",
            names.join(", ")
        )));
    }
    Ok(if version == 1 {
        Check::Outdated
    } else {
        Check::Ready
    })
}

/// Brings a version-1 database to this version in one transaction (nothing half-migrated).
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute_batch(MIGRATE_V1_SQL)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

/// Creates the schema in an empty database.
pub(crate) fn create_schema(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute_batch(CREATE_SQL)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

/// An in-memory database with the schema.
pub(crate) fn open_memory() -> rusqlite::Result<Connection> {
    let mut conn = Connection::open_in_memory()?;
    create_schema(&mut conn)?;
    Ok(conn)
}

/// Inserts a whole record. `number: None` lets AUTOINCREMENT assign it (never a number used
/// before, even after the newest runs were pruned); with `Some`, a row already there under
/// that number is kept as it is. Returns the number.
pub(crate) fn insert(
    conn: &Connection,
    rec: &RunRecord,
    number: Option<u64>,
) -> rusqlite::Result<u64> {
    let mut values = record_values(rec);
    values[0] = number.map_or(Value::Null, int);
    let sql = format!(
        "INSERT {} INTO runs ({}) VALUES ({})",
        if number.is_some() { "OR IGNORE" } else { "" },
        COLUMNS.join(", "),
        vec!["?"; COLUMNS.len()].join(", ")
    );
    conn.prepare_cached(&sql)?
        .execute(params_from_iter(values))?;
    Ok(number.unwrap_or_else(|| to_u64(conn.last_insert_rowid())))
}

/// Records a new run: inserts it, names it with `make_id(number)`, prunes beyond `limit`.
/// One transaction, so a failure leaves nothing half-written. Returns (number, run id, runs kept).
pub(crate) fn begin(
    conn: &mut Connection,
    rec: &RunRecord,
    limit: u64,
    make_id: &mut dyn FnMut(u64) -> String,
) -> rusqlite::Result<(u64, String, u64)> {
    let tx = conn.transaction()?;
    let number = insert(&tx, rec, None)?;
    let run_id = make_id(number);
    tx.execute(
        "UPDATE runs SET run_id = ?1 WHERE number = ?2",
        params![run_id, to_i64(number)],
    )?;
    prune(&tx, limit, Some(number))?;
    let kept = count(&tx)?;
    tx.commit()?;
    Ok((number, run_id, kept))
}

/// Stores the newest checkpoint of a running run and raises its peaks; a run already closed
/// is left alone (a checkpoint racing the run's end must not reopen or alter it).
pub(crate) fn checkpoint(
    conn: &Connection,
    number: u64,
    cp: &Checkpoint,
) -> rusqlite::Result<usize> {
    let mut values = vec![int(number)];
    values.extend(checkpoint_values(Some(cp)));
    conn.prepare_cached(
        "UPDATE runs SET cp_taken_at_ms = ?2, cp_state = ?3, cp_rss_bytes = ?4,
            cp_working_set_bytes = ?5, cp_nodes = ?6, cp_cgroup_version = ?7,
            cp_cgroup_path = ?8, cp_cgroup_inode = ?9, cp_oom_kills = ?10,
            peak_rss_bytes = max(peak_rss_bytes, ?4),
            peak_working_set_bytes = CASE WHEN ?5 IS NULL THEN peak_working_set_bytes
                ELSE max(coalesce(peak_working_set_bytes, ?5), ?5) END
         WHERE number = ?1 AND outcome = 'running'",
    )?
    .execute(params_from_iter(values))
}

/// Closes a running run with the end fields of `rec` (peaks only ever rise). Returns the rows
/// changed: 0 if the run is unknown or already closed.
pub(crate) fn close(conn: &Connection, rec: &RunRecord) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE runs SET outcome = ?2, evidence = ?3, outcome_message = ?4, ended_at_ms = ?5,
            peak_rss_bytes = max(peak_rss_bytes, ?6),
            peak_working_set_bytes = CASE WHEN ?7 IS NULL THEN peak_working_set_bytes
                ELSE max(coalesce(peak_working_set_bytes, ?7), ?7) END,
            time_to_target_ms = ?8, fill_rate_mb_per_second = ?9, searches = ?10,
            oom_kills_at_end = ?11, last_error = ?12, recovered = ?13
         WHERE number = ?1 AND outcome = 'running'",
    )?
    .execute(params![
        to_i64(rec.number),
        rec.outcome.name(),
        rec.evidence.map(Evidence::name),
        rec.outcome_message,
        rec.ended_at_ms,
        to_i64(rec.peak_rss_bytes),
        rec.peak_working_set_bytes.map(to_i64),
        rec.time_to_target_ms.map(to_i64),
        rec.fill_rate_mb_per_second,
        to_i64(rec.searches),
        rec.oom_kills_at_end.map(to_i64),
        rec.last_error,
        rec.recovered,
    ])
}

/// Deletes the oldest closed runs until at most `limit` remain; never `keep` and never a
/// running run (its process may still write it). Returns the rows deleted.
pub(crate) fn prune(conn: &Connection, limit: u64, keep: Option<u64>) -> rusqlite::Result<usize> {
    let excess = count(conn)?.saturating_sub(limit);
    if excess == 0 {
        return Ok(0);
    }
    conn.prepare_cached(
        "DELETE FROM runs WHERE number IN (
            SELECT number FROM runs WHERE outcome != 'running' AND number != ?1
            ORDER BY number ASC LIMIT ?2)",
    )?
    .execute(params![keep.map_or(-1, to_i64), to_i64(excess)])
}

/// Runs kept.
pub(crate) fn count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0))
        .map(to_u64)
}

/// The highest number ever assigned (pruned runs included), 0 if none.
pub(crate) fn last_number(conn: &Connection) -> rusqlite::Result<u64> {
    let seq: Option<i64> = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'runs'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(seq.map_or(0, to_u64))
}

/// Makes AUTOINCREMENT continue after `number` (for a database rebuilt from scratch).
pub(crate) fn set_last_number(conn: &Connection, number: u64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM sqlite_sequence WHERE name = 'runs'", [])?;
    conn.execute(
        "INSERT INTO sqlite_sequence (name, seq) VALUES ('runs', ?1)",
        params![to_i64(number)],
    )?;
    Ok(())
}

/// Newest first, numbers below `before` (all if None), at most `limit`.
pub(crate) fn page(
    conn: &Connection,
    before: Option<u64>,
    limit: u32,
) -> rusqlite::Result<Vec<RunRecord>> {
    let mut stmt =
        conn.prepare_cached("SELECT * FROM runs WHERE number < ?1 ORDER BY number DESC LIMIT ?2")?;
    let rows = stmt.query_map(params![before.map_or(i64::MAX, to_i64), limit], |r| {
        Ok(record_from_row(r))
    })?;
    rows.collect()
}

/// The run with this number.
pub(crate) fn by_number(conn: &Connection, number: u64) -> rusqlite::Result<Option<RunRecord>> {
    conn.query_row(
        "SELECT * FROM runs WHERE number = ?1",
        [to_i64(number)],
        |r| Ok(record_from_row(r)),
    )
    .optional()
}

/// The newest run with this run id.
pub(crate) fn by_run_id(conn: &Connection, run_id: &str) -> rusqlite::Result<Option<RunRecord>> {
    conn.query_row(
        "SELECT * FROM runs WHERE run_id = ?1 ORDER BY number DESC LIMIT 1",
        [run_id],
        |r| Ok(record_from_row(r)),
    )
    .optional()
}

/// Runs still marked running, oldest first.
pub(crate) fn running(conn: &Connection) -> rusqlite::Result<Vec<RunRecord>> {
    let mut stmt = conn.prepare("SELECT * FROM runs WHERE outcome = ?1 ORDER BY number ASC")?;
    let rows = stmt.query_map([RUNNING], |r| Ok(record_from_row(r)))?;
    rows.collect()
}

/// The newest closed run.
pub(crate) fn latest_finished(conn: &Connection) -> rusqlite::Result<Option<RunRecord>> {
    conn.query_row(
        "SELECT * FROM runs WHERE outcome != ?1 ORDER BY number DESC LIMIT 1",
        [RUNNING],
        |r| Ok(record_from_row(r)),
    )
    .optional()
}

/// Test support: the version-1 schema as stressd 0.1 created it (the current table without
/// the columns version 2 appended), holding `rec` as such a stressd wrote it.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn create_v1_with(conn: &Connection, rec: &RunRecord) {
    let cut = CREATE_SQL.find(",\n    workload TEXT").unwrap();
    let end = CREATE_SQL.find("\n);").unwrap();
    conn.execute_batch(&format!("{}{}", &CREATE_SQL[..cut], &CREATE_SQL[end..]))
        .unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    let sql = format!(
        "INSERT INTO runs ({}) VALUES ({})",
        COLUMNS[..V1_COLUMNS].join(", "),
        vec!["?"; V1_COLUMNS].join(", ")
    );
    let values = record_values(rec).into_iter().take(V1_COLUMNS);
    conn.execute(&sql, params_from_iter(values)).unwrap();
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn fresh_schema_passes_its_own_check() {
        let conn = open_memory().unwrap();
        assert_eq!(check(&conn).unwrap(), Check::Ready);
        assert_eq!(CREATE_SQL.matches(",\n").count() + 1, COLUMNS.len());
    }

    fn v1_database() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        create_v1_with(&conn, &super::super::tests::record(3));
        conn
    }

    #[test]
    fn version_1_is_migrated_and_its_rows_read_as_single_target_tree_runs() {
        let mut conn = Connection::open_in_memory().unwrap();
        let mut rec = super::super::tests::record(3);
        rec.params.workload = crate::params::WorkloadKind::Hash;
        create_v1_with(&conn, &rec);
        assert_eq!(check(&conn).unwrap(), Check::Outdated);
        migrate(&mut conn).unwrap();
        assert_eq!(check(&conn).unwrap(), Check::Ready);
        let old = page(&conn, None, 10).unwrap().pop().unwrap();
        assert_eq!(old.params.workload, crate::params::WorkloadKind::Tree);
        assert!(old.params.phases.is_empty());
        assert_eq!(old.params.repeat, 1);
        assert_eq!(old.run_id, rec.run_id);
    }

    #[test]
    fn other_versions_are_damaged() {
        let conn = v1_database();
        conn.pragma_update(None, "user_version", 7).unwrap();
        assert!(matches!(check(&conn).unwrap(), Check::Damaged(_)));
    }
}
