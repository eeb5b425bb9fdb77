//! `--output text`: results laid out for a person to read at a glance.
//!
//! Every function returns the full text (ending in a newline) instead of printing, so the layout
//! is unit-tested and reusable by integration tests.

use std::fmt::Write as _;

mod history;

pub(crate) use history::{Align, COLUMNS as HISTORY_COLUMNS, row as history_row};
pub use history::{outcome, run_list, run_record};

use memstress_proto::v1::{
    BasisSource, ClearResponse, ContainerMemory, LogEntry, MemoryBasis, Operation, RunParameters,
    Scope, StartResponse, State, StatusResponse, StopResponse, Workload,
};

use crate::human;
use crate::json::{operation_name, serving_status_name};

/// Width of the label column.
const LABEL: usize = 16;

/// Appends one `label  value` line, indented by `indent` spaces.
fn line(out: &mut String, indent: usize, label: &str, value: impl std::fmt::Display) {
    let width = LABEL.saturating_sub(indent);
    let value = value.to_string();
    // Writing to a String cannot fail.
    let _ = if value.is_empty() {
        writeln!(out, "{:indent$}{label}", "")
    } else {
        writeln!(out, "{:indent$}{label:<width$} {value}", "")
    };
}

/// A state without its `STATE_` prefix ("SEARCHING").
pub fn state(v: i32) -> String {
    match State::try_from(v) {
        Ok(s) => s.as_str_name().trim_start_matches("STATE_").to_owned(),
        Err(_) => format!("UNKNOWN({v})"),
    }
}

/// A scope in words; unspecified is what the server treats it as.
pub fn scope(v: i32) -> String {
    match Scope::try_from(v) {
        Ok(Scope::Unspecified | Scope::Process) => "process".to_owned(),
        Ok(Scope::Container) => "container".to_owned(),
        Err(_) => format!("unknown ({v})"),
    }
}

/// A workload in words ("tree", "list", "hash", "matrix"); unspecified is what the server
/// treats it as.
pub fn workload(v: i32) -> String {
    match Workload::try_from(v) {
        Ok(Workload::Unspecified | Workload::Tree) => "tree".to_owned(),
        Ok(Workload::List) => "list".to_owned(),
        Ok(Workload::Hash) => "hash".to_owned(),
        Ok(Workload::Matrix) => "matrix".to_owned(),
        Err(_) => format!("unknown ({v})"),
    }
}

/// Where a memory basis came from, in words.
pub fn basis_source(v: i32) -> String {
    match BasisSource::try_from(v) {
        Ok(BasisSource::CgroupV2) => "cgroup v2".to_owned(),
        Ok(BasisSource::CgroupV1) => "cgroup v1".to_owned(),
        Ok(BasisSource::DownwardApi) => "downward API".to_owned(),
        Ok(BasisSource::HostTotal) => "host total (no limit)".to_owned(),
        Ok(BasisSource::Unspecified) => "unknown source".to_owned(),
        Err(_) => format!("unknown source ({v})"),
    }
}

/// "4.00 GiB from cgroup v2 (/sys/fs/cgroup/memory.max)", or "-" when unset.
pub fn basis(b: Option<&MemoryBasis>) -> String {
    basis_in(b, human::bytes)
}

/// [`basis`] with the limit written by `size` (e.g. in MiB for the history record).
pub(crate) fn basis_in(b: Option<&MemoryBasis>, size: fn(u64) -> String) -> String {
    match b {
        None => "-".to_owned(),
        Some(b) => {
            let mut s = format!("{} from {}", size(b.limit_bytes), basis_source(b.source));
            if !b.detail.is_empty() {
                let _ = write!(s, " ({})", b.detail);
            }
            s
        }
    }
}

/// The resolved target with what was asked for: "1.00 GiB (1024 MiB requested)".
pub fn target(target_bytes: u64, p: Option<&RunParameters>) -> String {
    with_request(human::bytes(target_bytes), p)
}

/// `size` followed by what the run asked for: "(1024 MiB requested)" or "(50% requested)".
pub(crate) fn with_request(size: String, p: Option<&RunParameters>) -> String {
    match p {
        Some(RunParameters {
            memory_mb: Some(mb),
            ..
        }) => format!("{size} ({mb} MiB requested)"),
        Some(RunParameters {
            memory_percent: Some(pct),
            ..
        }) => format!("{size} ({} requested)", human::percent(*pct)),
        _ => size,
    }
}

/// The parameter lines shared by `start` and `status`.
fn parameters(out: &mut String, indent: usize, p: &RunParameters) {
    line(
        out,
        indent,
        "duration",
        human::seconds_or(p.duration_seconds, "until stopped"),
    );
    line(
        out,
        indent,
        "log interval",
        human::seconds_or(p.log_interval_seconds, "-"),
    );
    line(
        out,
        indent,
        "payload",
        format!("{} KiB per node", p.payload_size_kb),
    );
    let ramp = if p.ramp_mb_per_second > 0.0 {
        human::mib_rate(p.ramp_mb_per_second)
    } else {
        "full speed".to_owned()
    };
    line(out, indent, "ramp", ramp);
    let rate = if p.search_rate > 0 {
        human::search_rate(p.search_rate as f64)
    } else {
        "unthrottled".to_owned()
    };
    line(out, indent, "search rate", rate);
    line(out, indent, "keep hot", human::yes_no(p.keep_hot));
    line(out, indent, "huge pages", human::yes_no(p.huge_pages));
    line(out, indent, "scope", scope(p.scope));
    line(out, indent, "allow OOM", human::yes_no(p.allow_oom));
}

/// The result of `start`.
pub fn start(r: &StartResponse) -> String {
    let mut out = format!("Started run {}\n", r.run_id);
    line(
        &mut out,
        2,
        "target",
        target(r.target_bytes, r.parameters.as_ref()),
    );
    line(&mut out, 2, "basis", basis(r.basis.as_ref()));
    if let Some(p) = &r.parameters {
        parameters(&mut out, 2, p);
    }
    if r.previous_run_released_bytes > 0 {
        line(
            &mut out,
            2,
            "freed first",
            format!(
                "{} held by the previous run",
                human::bytes(r.previous_run_released_bytes)
            ),
        );
    }
    out
}

/// The result of `stop`.
pub fn stop(r: &StopResponse) -> String {
    let mut out = if r.stopped {
        format!("Stopped run {} (now {})", r.run_id, state(r.state))
    } else {
        format!("Nothing to stop (state {})", state(r.state))
    };
    if !r.message.is_empty() {
        let _ = write!(out, ": {}", r.message);
    }
    out.push('\n');
    out
}

/// The result of `clear`.
pub fn clear(r: &ClearResponse) -> String {
    let mut out = String::new();
    if r.stopped_running {
        out.push_str("Stopped the running run first.\n");
    }
    if r.released_bytes == 0 && r.nodes_released == 0 {
        out.push_str("Nothing was held.\n");
    } else {
        let _ = writeln!(
            out,
            "Released {} ({} nodes) in {}",
            human::bytes(r.released_bytes),
            human::thousands(r.nodes_released),
            human::duration_ms(r.duration_ms)
        );
    }
    let _ = writeln!(
        out,
        "RSS {} -> {}",
        human::bytes(r.rss_before_bytes),
        human::bytes(r.rss_after_bytes)
    );
    out
}

/// A PSI percentage or "-".
fn psi(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}%"))
}

/// An optional count with thousands separators, or "-".
fn opt_count(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), human::thousands)
}

/// The container section of `status`.
fn container(out: &mut String, c: Option<&ContainerMemory>) {
    let Some(c) = c else {
        line(out, 0, "container", "-");
        return;
    };
    if c.cgroup_version.is_empty() {
        line(out, 0, "container", "no cgroup memory controller readable");
    } else {
        line(
            out,
            0,
            "container",
            format!("cgroup {} {}", c.cgroup_version, c.cgroup_path),
        );
    }
    let limit = match c.limit_bytes {
        Some(b) => human::bytes(b),
        None => "- (unlimited or unknown)".to_owned(),
    };
    line(out, 2, "limit", limit);
    line(out, 2, "usage", human::opt_bytes(c.usage_bytes));
    line(out, 2, "working set", human::opt_bytes(c.working_set_bytes));
    line(
        out,
        2,
        "oom kills",
        format!(
            "{} ({} during run)",
            opt_count(c.oom_kills),
            human::thousands(c.oom_kills_during_run)
        ),
    );
    if c.pressure_some_avg10.is_none()
        && c.pressure_full_avg10.is_none()
        && c.pressure_some_total_us.is_none()
    {
        line(out, 2, "pressure", "-");
    } else {
        let total = c
            .pressure_some_total_us
            .map_or_else(|| "-".to_owned(), |us| human::duration_ms(us / 1000));
        line(
            out,
            2,
            "pressure",
            format!(
                "some {} full {} (avg10), some total {}",
                psi(c.pressure_some_avg10),
                psi(c.pressure_full_avg10),
                total
            ),
        );
    }
}

/// The result of `status`.
pub fn status(s: &StatusResponse) -> String {
    let mut out = String::new();
    let has_run = !s.run_id.is_empty();
    line(&mut out, 0, "state", state(s.state));
    line(
        &mut out,
        0,
        "run",
        if has_run { s.run_id.as_str() } else { "-" },
    );
    if has_run {
        let started = if s.started_at_unix_ms > 0 {
            memstress_proto::time::format_unix_ms(s.started_at_unix_ms)
        } else {
            "-".to_owned()
        };
        line(&mut out, 0, "started", started);
        let active = matches!(
            State::try_from(s.state),
            Ok(State::Building | State::Searching)
        );
        let holds_until_stopped = s
            .parameters
            .as_ref()
            .is_some_and(|p| p.duration_seconds == 0);
        let remaining = match s.remaining_ms {
            Some(ms) => human::duration_ms(ms),
            None if active && holds_until_stopped => "until stopped".to_owned(),
            None => "-".to_owned(),
        };
        line(
            &mut out,
            0,
            "elapsed",
            format!(
                "{}, remaining {}",
                human::duration_ms(s.elapsed_ms),
                remaining
            ),
        );
        line(
            &mut out,
            0,
            "target",
            target(s.target_bytes, s.parameters.as_ref()),
        );
    }
    line(&mut out, 0, "nodes", human::thousands(s.nodes));
    line(&mut out, 0, "payload held", human::bytes(s.payload_bytes));
    line(
        &mut out,
        0,
        "rss",
        format!(
            "{} now, {} peak",
            human::bytes(s.rss_bytes),
            human::bytes(s.peak_rss_bytes)
        ),
    );
    line(&mut out, 0, "basis", basis(s.basis.as_ref()));
    if has_run {
        let ttt = s
            .time_to_target_ms
            .map_or_else(|| "-".to_owned(), human::duration_ms);
        line(
            &mut out,
            0,
            "fill rate",
            format!(
                "{} average, {} current; time to target {}",
                human::mib_rate(s.fill_rate_mb_per_second),
                human::mib_rate(s.current_fill_rate_mb_per_second),
                ttt
            ),
        );
        line(
            &mut out,
            0,
            "searches",
            format!(
                "{} ({})",
                human::thousands(s.searches),
                human::search_rate(s.searches_per_second)
            ),
        );
    }
    line(
        &mut out,
        0,
        "last error",
        if s.last_error.is_empty() {
            "-"
        } else {
            s.last_error.as_str()
        },
    );
    line(&mut out, 0, "huge pages", human::bytes(s.huge_page_bytes));
    line(
        &mut out,
        0,
        "process cpu",
        format!("{:.2} s", s.process_cpu_seconds),
    );
    if has_run && let Some(p) = &s.parameters {
        line(&mut out, 0, "parameters", "");
        parameters(&mut out, 2, p);
    }
    container(&mut out, s.container.as_ref());
    history::status_section(&mut out, s);
    out
}

/// One log entry on one line:
/// `2026-11-27T06:05:01.123Z  #12  SEARCH_TREE_PROGRESS  1024.3 MiB  message`, with the working
/// set (and, for LOG_ENTRIES_MISSED, the missed count) appended when present.
pub fn log_entry(e: &LogEntry) -> String {
    let mut out = format!(
        "{}  #{}  {}  {}  {}",
        memstress_proto::time::format_unix_ms(e.timestamp_unix_ms),
        e.sequence,
        operation_name(e.operation),
        human::mib(e.memory_mb),
        e.message
    );
    if let Some(ws) = e.working_set_mb {
        let _ = write!(out, "  (working set {})", human::mib(ws));
    }
    if e.operation == Operation::LogEntriesMissed as i32 {
        let _ = write!(out, "  ({} entries missed)", human::thousands(e.missed));
    }
    out.push('\n');
    out
}

/// The result of `health`: one `STATUS  service` line per checked service.
pub fn health(checks: &[(String, i32)]) -> String {
    let mut out = String::new();
    for (service, status) in checks {
        let name = if service.is_empty() {
            "(server)"
        } else {
            service.as_str()
        };
        let _ = writeln!(out, "{:<16} {name}", serving_status_name(*status));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tonic_health::pb::health_check_response::ServingStatus;

    fn params() -> RunParameters {
        RunParameters {
            memory_mb: Some(1024),
            memory_percent: None,
            duration_seconds: 120,
            log_interval_seconds: 5,
            payload_size_kb: 100,
            ramp_mb_per_second: 0.0,
            search_rate: 1000,
            keep_hot: false,
            huge_pages: false,
            scope: Scope::Unspecified as i32,
            allow_oom: false,
            ..Default::default()
        }
    }

    #[test]
    fn start_text() {
        let t = start(&StartResponse {
            run_id: "r-1".into(),
            target_bytes: 1 << 30,
            basis: Some(MemoryBasis {
                limit_bytes: 4 << 30,
                source: BasisSource::CgroupV2 as i32,
                detail: "/sys/fs/cgroup/memory.max".into(),
            }),
            parameters: Some(params()),
            previous_run_released_bytes: 512 << 20,
            ..Default::default()
        });
        assert_eq!(
            t,
            "Started run r-1
  target         1.00 GiB (1024 MiB requested)
  basis          4.00 GiB from cgroup v2 (/sys/fs/cgroup/memory.max)
  duration       2m 00s
  log interval   5s
  payload        100 KiB per node
  ramp           full speed
  search rate    1,000 searches/s
  keep hot       no
  huge pages     no
  scope          process
  allow OOM      no
  freed first    512.0 MiB held by the previous run
"
        );
    }

    #[test]
    fn start_text_percent_and_zero_values() {
        let mut p = params();
        p.memory_mb = None;
        p.memory_percent = Some(12.5);
        p.duration_seconds = 0;
        p.search_rate = 0;
        p.ramp_mb_per_second = 50.0;
        p.scope = Scope::Container as i32;
        let t = start(&StartResponse {
            run_id: "r-2".into(),
            target_bytes: 512 << 20,
            basis: None,
            parameters: Some(p),
            previous_run_released_bytes: 0,
            ..Default::default()
        });
        assert!(
            t.contains("  target         512.0 MiB (12.5% requested)\n"),
            "{t}"
        );
        assert!(t.contains("  basis          -\n"), "{t}");
        assert!(t.contains("  duration       until stopped\n"), "{t}");
        assert!(t.contains("  search rate    unthrottled\n"), "{t}");
        assert!(t.contains("  ramp           50.0 MiB/s\n"), "{t}");
        assert!(t.contains("  scope          container\n"), "{t}");
        assert!(!t.contains("freed first"), "{t}");
    }

    #[test]
    fn status_text() {
        let s = StatusResponse {
            state: State::Searching as i32,
            run_id: "r-1".into(),
            parameters: Some(params()),
            target_bytes: 1 << 30,
            nodes: 10_486,
            payload_bytes: 1 << 30,
            rss_bytes: 1100 << 20,
            peak_rss_bytes: 1200 << 20,
            basis: Some(MemoryBasis {
                limit_bytes: 4 << 30,
                source: BasisSource::DownwardApi as i32,
                detail: "MEMORY_LIMIT".into(),
            }),
            searches: 123_456,
            searches_per_second: 1000.2,
            started_at_unix_ms: 1_795_759_501_123,
            elapsed_ms: 65_000,
            remaining_ms: Some(55_000),
            last_error: String::new(),
            fill_rate_mb_per_second: 1843.2,
            current_fill_rate_mb_per_second: 0.0,
            time_to_target_ms: Some(850),
            container: Some(ContainerMemory {
                cgroup_version: "v2".into(),
                cgroup_path: "/kubepods/pod1/c1".into(),
                limit_bytes: Some(4 << 30),
                usage_bytes: Some(1200 << 20),
                working_set_bytes: None,
                oom_kills: Some(1),
                pressure_some_avg10: Some(0.5),
                pressure_full_avg10: None,
                pressure_some_total_us: Some(2_500_000),
                pressure_full_total_us: None,
                oom_kills_during_run: 0,
            }),
            process_cpu_seconds: 12.5,
            huge_page_bytes: 0,
            previous_run: None,
            history: None,
            ..Default::default()
        };
        let t = status(&s);
        for want in [
            "state            SEARCHING\n",
            "run              r-1\n",
            "started          2026-11-27T06:05:01.123Z\n",
            "elapsed          1m 05s, remaining 55s\n",
            "target           1.00 GiB (1024 MiB requested)\n",
            "nodes            10,486\n",
            "payload held     1.00 GiB\n",
            "rss              1.07 GiB now, 1.17 GiB peak\n",
            "basis            4.00 GiB from downward API (MEMORY_LIMIT)\n",
            "fill rate        1843.2 MiB/s average, 0.0 MiB/s current; time to target 850 ms\n",
            "searches         123,456 (1,000 searches/s)\n",
            "last error       -\n",
            "huge pages       0 B\n",
            "process cpu      12.50 s\n",
            "\nparameters\n",
            "  duration       2m 00s\n",
            "container        cgroup v2 /kubepods/pod1/c1\n",
            "  limit          4.00 GiB\n",
            "  usage          1.17 GiB\n",
            "  working set    -\n",
            "  oom kills      1 (0 during run)\n",
            "  pressure       some 0.50% full - (avg10), some total 2.5s\n",
            "previous run     -\n",
            "history          -\n",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
    }

    #[test]
    fn status_text_before_first_run() {
        let t = status(&StatusResponse {
            state: State::Idle as i32,
            ..StatusResponse::default()
        });
        assert!(t.contains("state            IDLE\n"), "{t}");
        assert!(t.contains("run              -\n"), "{t}");
        assert!(t.contains("container        -\n"), "{t}");
        assert!(!t.contains("started"), "{t}");
        assert!(!t.contains("parameters"), "{t}");
    }

    #[test]
    fn log_lines() {
        let mut e = LogEntry {
            sequence: 12,
            timestamp_unix_ms: 1_795_759_501_123,
            operation: Operation::SearchTreeProgress as i32,
            memory_mb: 1024.3,
            message: "1,000 searches/s".into(),
            run_id: "r-1".into(),
            missed: 0,
            working_set_mb: None,
        };
        assert_eq!(
            log_entry(&e),
            "2026-11-27T06:05:01.123Z  #12  SEARCH_TREE_PROGRESS  1024.3 MiB  1,000 searches/s\n"
        );
        e.working_set_mb = Some(1100.0);
        assert_eq!(
            log_entry(&e),
            "2026-11-27T06:05:01.123Z  #12  SEARCH_TREE_PROGRESS  1024.3 MiB  1,000 searches/s  (working set 1100.0 MiB)\n"
        );
        let missed = LogEntry {
            timestamp_unix_ms: 0,
            operation: Operation::LogEntriesMissed as i32,
            missed: 1500,
            message: "watcher fell behind".into(),
            ..LogEntry::default()
        };
        assert_eq!(
            log_entry(&missed),
            "1970-01-01T00:00:00.000Z  #0  LOG_ENTRIES_MISSED  0.0 MiB  watcher fell behind  (1,500 entries missed)\n"
        );
    }

    #[test]
    fn stop_clear_health_text() {
        assert_eq!(
            stop(&StopResponse {
                state: State::Stopped as i32,
                stopped: true,
                run_id: "r-1".into(),
                message: "stopped after 12 s".into(),
            }),
            "Stopped run r-1 (now STOPPED): stopped after 12 s\n"
        );
        assert_eq!(
            stop(&StopResponse {
                state: State::Idle as i32,
                stopped: false,
                run_id: String::new(),
                message: "no run in progress".into(),
            }),
            "Nothing to stop (state IDLE): no run in progress\n"
        );
        assert_eq!(
            clear(&ClearResponse {
                released_bytes: 1 << 30,
                rss_before_bytes: 1100 << 20,
                rss_after_bytes: 45 << 20,
                nodes_released: 10_486,
                stopped_running: true,
                duration_ms: 15,
            }),
            "Stopped the running run first.\nReleased 1.00 GiB (10,486 nodes) in 15 ms\nRSS 1.07 GiB -> 45.0 MiB\n"
        );
        assert_eq!(
            clear(&ClearResponse::default()),
            "Nothing was held.\nRSS 0 B -> 0 B\n"
        );
        assert_eq!(
            health(&[
                (String::new(), ServingStatus::Serving as i32),
                (
                    "memstress.v1.StressService".into(),
                    ServingStatus::NotServing as i32
                ),
            ]),
            "SERVING          (server)\nNOT_SERVING      memstress.v1.StressService\n"
        );
    }
}
