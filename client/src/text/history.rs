//! Text for the run history: the `history` table, one run in full (`history RUN_ID`), and the
//! previous-run and history lines of `status`. Sizes here are always MiB so runs compare at a
//! glance.

use std::fmt::Write as _;

use memstress_proto::v1::{
    Checkpoint, Evidence, HistoryMode, HistoryStatus, MemoryBasis, Outcome, RunParameters,
    RunRecord, StatusResponse,
};

use super::status::opt_count;
use super::{line, parameters, state};
use crate::human;

/// How a run ended, in lower-case words: "completed", "stopped", "failed", "killed",
/// "running", "OOM-killed", with "(confirmed)" when the cgroup's oom_kill counter rose and
/// "(likely)" when the verdict rests on the memory limit being near or exceeded.
pub(crate) fn outcome(outcome: i32, evidence: i32) -> String {
    let word = match Outcome::try_from(outcome) {
        Ok(Outcome::Running) => "running",
        Ok(Outcome::Completed) => "completed",
        Ok(Outcome::Stopped) => "stopped",
        Ok(Outcome::Failed) => "failed",
        Ok(Outcome::Killed) => "killed",
        Ok(Outcome::OomKilled) => "OOM-killed",
        Ok(Outcome::Unspecified) => "unknown",
        Err(_) => return format!("unknown ({outcome})"),
    };
    if word != "OOM-killed" {
        return word.to_owned();
    }
    match Evidence::try_from(evidence) {
        Ok(Evidence::OomCounter) => "OOM-killed (confirmed)".to_owned(),
        Ok(Evidence::NearLimit | Evidence::AllowOomGrowth) => "OOM-killed (likely)".to_owned(),
        _ => word.to_owned(),
    }
}

/// What a killed / OOM-killed verdict rests on, in words ("-" for a run that was not recovered).
pub(super) fn evidence(v: i32) -> String {
    match Evidence::try_from(v) {
        Ok(Evidence::Unspecified) => "-".to_owned(),
        Ok(Evidence::OomCounter) => "the cgroup's oom_kill counter rose (confirmed)".to_owned(),
        Ok(Evidence::NearLimit) => {
            "counter not comparable; last checkpoint within 2% of the limit (likely)".to_owned()
        }
        Ok(Evidence::AllowOomGrowth) => {
            "counter not comparable; growing past the limit with allow OOM (likely)".to_owned()
        }
        Ok(Evidence::OomCounterUnchanged) => {
            "the cgroup's oom_kill counter did not rise".to_owned()
        }
        Ok(Evidence::None) => "nothing points to the OOM killer".to_owned(),
        Err(_) => format!("unknown ({v})"),
    }
}

/// A Unix-millisecond time, or "-" when unset (0).
fn time(unix_ms: i64) -> String {
    if unix_ms == 0 {
        "-".to_owned()
    } else {
        memstress_proto::time::format_unix_ms(unix_ms)
    }
}

/// Time to target: "812 ms", "3.2s", or "-" when never reached.
fn time_to_target(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".to_owned(), human::duration_ms)
}

/// How a table column is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// The `history` table's columns.
pub(crate) const COLUMNS: [(&str, Align); 7] = [
    ("ID", Align::Left),
    ("STARTED", Align::Left),
    ("TARGET", Align::Right),
    ("PEAK RSS", Align::Right),
    ("PEAK WS", Align::Right),
    ("TO TARGET", Align::Right),
    ("OUTCOME", Align::Left),
];

/// Lays out a header and rows in columns two spaces apart, each as wide as its widest cell;
/// trailing spaces are trimmed.
fn table(columns: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|(h, _)| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = columns.iter().map(|(h, _)| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut text = String::new();
        for (i, (((_, align), cell), w)) in columns.iter().zip(row).zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let _ = match align {
                Align::Left => write!(text, "{cell:<w$}"),
                Align::Right => write!(text, "{cell:>w$}"),
            };
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// One run as a row of the `history` table.
pub(crate) fn row(r: &RunRecord) -> Vec<String> {
    vec![
        r.run_id.clone(),
        time(r.started_at_unix_ms),
        human::bytes_mib(r.target_bytes),
        human::bytes_mib(r.peak_rss_bytes),
        human::opt_bytes_mib(r.peak_working_set_bytes),
        time_to_target(r.time_to_target_ms),
        outcome(r.outcome, r.evidence),
    ]
}

/// The result of `history`: a table of runs, newest first, and a closing note when older runs
/// are kept than were listed (`next_cursor` not empty).
pub(crate) fn run_list(runs: &[RunRecord], next_cursor: &str) -> String {
    let mut out = if runs.is_empty() {
        "No runs recorded.\n".to_owned()
    } else {
        let rows: Vec<Vec<String>> = runs.iter().map(row).collect();
        table(&COLUMNS, &rows)
    };
    if !next_cursor.is_empty() {
        out.push_str("(older runs are kept: --limit N or --all lists more)\n");
    }
    out
}

/// The target in MiB with what was asked for: "2048.0 MiB (50% requested)".
fn target_mib(target_bytes: u64, p: Option<&RunParameters>) -> String {
    super::with_request(human::bytes_mib(target_bytes), p)
}

/// The basis in MiB: "4096.0 MiB from cgroup v2 (/sys/fs/cgroup/memory.max)", or "-".
fn basis_mib(b: Option<&MemoryBasis>) -> String {
    super::basis_in(b, human::bytes_mib)
}

/// When a run ended and how long after its start: "2026-...Z (37.2s after the start)".
fn ended(r: &RunRecord) -> String {
    match r.ended_at_unix_ms {
        None if r.outcome == Outcome::Running as i32 => "- (still running)".to_owned(),
        None => "-".to_owned(),
        Some(end) => {
            let at = time(end);
            match u64::try_from(end - r.started_at_unix_ms) {
                Ok(ms) if r.started_at_unix_ms > 0 => {
                    format!("{at} ({} after the start)", human::duration_ms(ms))
                }
                _ => at,
            }
        }
    }
}

/// Text for a proto string that may be empty.
fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// The outcome lines of a full record.
fn record_outcome(out: &mut String, r: &RunRecord) {
    line(out, 0, "outcome", outcome(r.outcome, r.evidence));
    line(out, 0, "outcome message", or_dash(&r.outcome_message));
    line(out, 0, "evidence", evidence(r.evidence));
    let recovered = if r.recovered {
        "yes (the process running it died; closed when stressd next started)"
    } else {
        "no"
    };
    line(out, 0, "recovered", recovered);
    line(out, 0, "last error", or_dash(&r.last_error));
}

/// The time and memory lines of a full record.
fn record_figures(out: &mut String, r: &RunRecord) {
    line(out, 0, "started", time(r.started_at_unix_ms));
    line(out, 0, "ended", ended(r));
    line(
        out,
        0,
        "target",
        target_mib(r.target_bytes, r.parameters.as_ref()),
    );
    line(out, 0, "basis", basis_mib(r.basis.as_ref()));
    line(out, 0, "peak rss", human::bytes_mib(r.peak_rss_bytes));
    line(
        out,
        0,
        "peak working set",
        human::opt_bytes_mib(r.peak_working_set_bytes),
    );
    line(
        out,
        0,
        "time to target",
        time_to_target(r.time_to_target_ms),
    );
    line(
        out,
        0,
        "fill rate",
        human::mib_rate(r.fill_rate_mb_per_second),
    );
    let unit = super::activity_of(r.parameters.as_ref().map_or(0, |p| p.workload));
    line(out, 0, unit, human::thousands(r.searches));
    line(
        out,
        0,
        "oom kills",
        format!(
            "{} at start, {} at end",
            opt_count(r.oom_kills_at_start),
            opt_count(r.oom_kills_at_end)
        ),
    );
}

/// The last-checkpoint section of a full record.
fn checkpoint(out: &mut String, c: Option<&Checkpoint>) {
    let Some(c) = c else {
        line(out, 0, "last checkpoint", "-");
        return;
    };
    line(out, 0, "last checkpoint", "");
    line(out, 2, "taken", time(c.taken_at_unix_ms));
    line(out, 2, "state", state(c.state));
    line(out, 2, "rss", human::bytes_mib(c.rss_bytes));
    line(
        out,
        2,
        "working set",
        human::opt_bytes_mib(c.working_set_bytes),
    );
    line(out, 2, "nodes", human::thousands(c.nodes));
    let cgroup = if c.cgroup_path.is_empty() && c.cgroup_version.is_empty() {
        "-".to_owned()
    } else {
        format!("{} {}", or_dash(&c.cgroup_version), or_dash(&c.cgroup_path))
    };
    line(out, 2, "cgroup", cgroup);
    line(out, 2, "oom kills", opt_count(c.oom_kills));
}

/// The result of `history RUN_ID`: every field of the record, labelled, sizes in MiB.
pub(crate) fn run_record(r: &RunRecord) -> String {
    let mut out = String::new();
    line(
        &mut out,
        0,
        "run",
        format!("{} (number {})", r.run_id, r.number),
    );
    record_outcome(&mut out, r);
    record_figures(&mut out, r);
    match &r.parameters {
        Some(p) => {
            line(&mut out, 0, "parameters", "");
            parameters(&mut out, 2, p);
        }
        None => line(&mut out, 0, "parameters", "-"),
    }
    checkpoint(&mut out, r.last_checkpoint.as_ref());
    out
}

/// Where history is kept, compactly: "durable (/state/runs.db), 12 of 1000 runs kept" or
/// "memory only (no --state-dir), 3 of 1000 runs kept".
fn history_status(h: &HistoryStatus) -> String {
    let (mode, detail) = match HistoryMode::try_from(h.mode) {
        Ok(HistoryMode::Durable) => ("durable".to_owned(), h.path.as_str()),
        Ok(HistoryMode::Memory) => ("memory only".to_owned(), h.reason.as_str()),
        Ok(HistoryMode::Unspecified) => ("unknown mode".to_owned(), h.reason.as_str()),
        Err(_) => (format!("unknown mode ({})", h.mode), h.reason.as_str()),
    };
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    };
    format!(
        "{mode}{detail}, {} of {} runs kept",
        human::thousands(h.runs_kept),
        human::thousands(h.limit)
    )
}

/// The previous-run and history lines at the end of `status`.
pub(super) fn status_section(out: &mut String, s: &StatusResponse) {
    match &s.previous_run {
        None => line(out, 0, "previous run", "-"),
        Some(r) => {
            let mut head = format!("{} {}", r.run_id, outcome(r.outcome, r.evidence));
            if let Some(end) = r.ended_at_unix_ms {
                let _ = write!(head, ", ended {}", time(end));
            }
            line(out, 0, "previous run", head);
            if !r.outcome_message.is_empty() {
                line(out, 2, "outcome", &r.outcome_message);
            }
            line(
                out,
                2,
                "peak",
                format!(
                    "{} RSS, {} working set",
                    human::bytes_mib(r.peak_rss_bytes),
                    human::opt_bytes_mib(r.peak_working_set_bytes)
                ),
            );
        }
    }
    let history = s
        .history
        .as_ref()
        .map_or_else(|| "-".to_owned(), history_status);
    line(out, 0, "history", history);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use memstress_proto::v1::{BasisSource, Scope, State};

    fn oom_record() -> RunRecord {
        RunRecord {
            number: 12,
            run_id: "run-12-3fa2b1".into(),
            parameters: Some(RunParameters {
                memory_percent: Some(120.0),
                duration_seconds: 60,
                log_interval_seconds: 5,
                payload_size_kb: 100,
                search_rate: 1000,
                scope: Scope::Container as i32,
                allow_oom: true,
                ..RunParameters::default()
            }),
            target_bytes: 2458 << 20,
            basis: Some(MemoryBasis {
                limit_bytes: 2 << 30,
                source: BasisSource::CgroupV2 as i32,
                detail: "/sys/fs/cgroup/memory.max".into(),
            }),
            started_at_unix_ms: 1_795_759_501_123,
            ended_at_unix_ms: Some(1_795_759_538_323),
            outcome: Outcome::OomKilled as i32,
            evidence: Evidence::OomCounter as i32,
            outcome_message: "OOM-killed at 2041.6 MiB working set".into(),
            peak_rss_bytes: 2040 << 20,
            peak_working_set_bytes: Some(2041 << 20),
            time_to_target_ms: None,
            fill_rate_mb_per_second: 55.5,
            searches: 0,
            oom_kills_at_start: Some(0),
            oom_kills_at_end: Some(1),
            last_error: String::new(),
            last_checkpoint: Some(Checkpoint {
                taken_at_unix_ms: 1_795_759_538_323,
                state: State::Building as i32,
                rss_bytes: 2039 << 20,
                working_set_bytes: None,
                nodes: 20_000,
                cgroup_path: "/kubepods/pod1/c1".into(),
                cgroup_version: "v2".into(),
                oom_kills: Some(0),
            }),
            recovered: true,
        }
    }

    fn completed(n: u64) -> RunRecord {
        RunRecord {
            number: n,
            run_id: format!("run-{n}-aaaaaa"),
            target_bytes: 1 << 30,
            started_at_unix_ms: 1_795_759_401_000,
            ended_at_unix_ms: Some(1_795_759_461_000),
            outcome: Outcome::Completed as i32,
            peak_rss_bytes: 1030 << 20,
            peak_working_set_bytes: None,
            time_to_target_ms: Some(812),
            ..RunRecord::default()
        }
    }

    #[test]
    fn outcome_words() {
        let o = |o: Outcome, e: Evidence| outcome(o as i32, e as i32);
        assert_eq!(o(Outcome::Completed, Evidence::Unspecified), "completed");
        assert_eq!(o(Outcome::Stopped, Evidence::Unspecified), "stopped");
        assert_eq!(o(Outcome::Failed, Evidence::Unspecified), "failed");
        assert_eq!(o(Outcome::Running, Evidence::Unspecified), "running");
        assert_eq!(o(Outcome::Killed, Evidence::OomCounterUnchanged), "killed");
        assert_eq!(o(Outcome::Killed, Evidence::OomCounter), "killed");
        assert_eq!(
            o(Outcome::OomKilled, Evidence::OomCounter),
            "OOM-killed (confirmed)"
        );
        assert_eq!(
            o(Outcome::OomKilled, Evidence::NearLimit),
            "OOM-killed (likely)"
        );
        assert_eq!(
            o(Outcome::OomKilled, Evidence::AllowOomGrowth),
            "OOM-killed (likely)"
        );
        assert_eq!(o(Outcome::OomKilled, Evidence::None), "OOM-killed");
        assert_eq!(o(Outcome::Unspecified, Evidence::Unspecified), "unknown");
        assert_eq!(outcome(42, 0), "unknown (42)");
        assert_eq!(outcome(Outcome::OomKilled as i32, 42), "OOM-killed");
        assert_eq!(evidence(42), "unknown (42)");
        assert_eq!(evidence(Evidence::Unspecified as i32), "-");
    }

    #[test]
    fn list_table() {
        let mut running = completed(13);
        running.run_id = "run-13-bbbbbb".into();
        running.outcome = Outcome::Running as i32;
        running.ended_at_unix_ms = None;
        running.time_to_target_ms = Some(3_250);
        running.started_at_unix_ms = 0;
        let t = run_list(&[running, oom_record(), completed(11)], "");
        assert_eq!(
            t,
            "\
ID             STARTED                       TARGET    PEAK RSS     PEAK WS  TO TARGET  OUTCOME
run-13-bbbbbb  -                         1024.0 MiB  1030.0 MiB           -       3.2s  running
run-12-3fa2b1  2026-11-27T06:05:01.123Z  2458.0 MiB  2040.0 MiB  2041.0 MiB          -  OOM-killed (confirmed)
run-11-aaaaaa  2026-11-27T06:03:21.000Z  1024.0 MiB  1030.0 MiB           -     812 ms  completed
"
        );
        let t = run_list(&[completed(11)], "11");
        assert!(
            t.ends_with("completed\n(older runs are kept: --limit N or --all lists more)\n"),
            "{t}"
        );
        assert_eq!(run_list(&[], ""), "No runs recorded.\n");
    }

    #[test]
    fn full_record() {
        let t = run_record(&oom_record());
        assert_eq!(
            t,
            "\
run              run-12-3fa2b1 (number 12)
outcome          OOM-killed (confirmed)
outcome message  OOM-killed at 2041.6 MiB working set
evidence         the cgroup's oom_kill counter rose (confirmed)
recovered        yes (the process running it died; closed when stressd next started)
last error       -
started          2026-11-27T06:05:01.123Z
ended            2026-11-27T06:05:38.323Z (37.2s after the start)
target           2458.0 MiB (120% requested)
basis            2048.0 MiB from cgroup v2 (/sys/fs/cgroup/memory.max)
peak rss         2040.0 MiB
peak working set 2041.0 MiB
time to target   -
fill rate        55.5 MiB/s
searches         0
oom kills        0 at start, 1 at end
parameters
  workload       tree
  duration       1m 00s
  log interval   5s
  payload        100 KiB per node
  ramp           full speed
  search rate    1,000 searches/s
  keep hot       no
  huge pages     no
  scope          container
  allow OOM      yes
last checkpoint
  taken          2026-11-27T06:05:38.323Z
  state          BUILDING
  rss            2039.0 MiB
  working set    -
  nodes          20,000
  cgroup         v2 /kubepods/pod1/c1
  oom kills      0
"
        );
    }

    #[test]
    fn sparse_record() {
        let r = RunRecord {
            run_id: "run-1-x".into(),
            number: 1,
            outcome: Outcome::Running as i32,
            last_error: String::new(),
            ..RunRecord::default()
        };
        let t = run_record(&r);
        for want in [
            "outcome          running\n",
            "outcome message  -\n",
            "evidence         -\n",
            "recovered        no\n",
            "started          -\n",
            "ended            - (still running)\n",
            "basis            -\n",
            "peak working set -\n",
            "oom kills        - at start, - at end\n",
            "parameters       -\n",
            "last checkpoint  -\n",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
        let failed = RunRecord {
            outcome: Outcome::Failed as i32,
            last_error: "allocation failed".into(),
            target_bytes: 100 << 20,
            parameters: Some(RunParameters {
                memory_mb: Some(100),
                ..RunParameters::default()
            }),
            ..RunRecord::default()
        };
        let t = run_record(&failed);
        assert!(t.contains("last error       allocation failed\n"), "{t}");
        assert!(t.contains("ended            -\n"), "{t}");
        assert!(
            t.contains("target           100.0 MiB (100 MiB requested)\n"),
            "{t}"
        );
    }

    #[test]
    fn status_lines() {
        let mut s = StatusResponse {
            previous_run: Some(oom_record()),
            history: Some(HistoryStatus {
                mode: HistoryMode::Durable as i32,
                path: "/var/lib/stressd/runs.db".into(),
                reason: String::new(),
                runs_kept: 12,
                limit: 1000,
            }),
            ..StatusResponse::default()
        };
        let mut out = String::new();
        status_section(&mut out, &s);
        assert_eq!(
            out,
            "\
previous run     run-12-3fa2b1 OOM-killed (confirmed), ended 2026-11-27T06:05:38.323Z
  outcome        OOM-killed at 2041.6 MiB working set
  peak           2040.0 MiB RSS, 2041.0 MiB working set
history          durable (/var/lib/stressd/runs.db), 12 of 1,000 runs kept
"
        );

        let mut likely = completed(11);
        likely.outcome = Outcome::OomKilled as i32;
        likely.evidence = Evidence::NearLimit as i32;
        likely.ended_at_unix_ms = None;
        s.previous_run = Some(likely);
        s.history = Some(HistoryStatus {
            mode: HistoryMode::Memory as i32,
            path: String::new(),
            reason: "no --state-dir".into(),
            runs_kept: 3,
            limit: 100,
        });
        let mut out = String::new();
        status_section(&mut out, &s);
        assert_eq!(
            out,
            "\
previous run     run-11-aaaaaa OOM-killed (likely)
  peak           1030.0 MiB RSS, - working set
history          memory only (no --state-dir), 3 of 100 runs kept
"
        );
    }
}
