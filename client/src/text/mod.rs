//! `--output text`: results laid out for a person to read at a glance.
//!
//! Every function returns the full text (ending in a newline) instead of printing, so the layout
//! is unit-tested and reusable by integration tests.

use std::fmt::Write as _;

mod history;
mod status;

pub(crate) use history::{Align, COLUMNS as HISTORY_COLUMNS, row as history_row};
pub(crate) use history::{outcome, run_list, run_record};
pub(crate) use status::status;

use memstress_proto::v1::{
    BasisSource, ClearResponse, LogEntry, MemoryBasis, Operation, Phase, PhaseProgress,
    RunParameters, Scope, StartResponse, State, StopResponse, Workload,
    phase::Target as PhaseTarget,
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
pub(crate) fn state(v: i32) -> String {
    match State::try_from(v) {
        Ok(s) => s.as_str_name().trim_start_matches("STATE_").to_owned(),
        Err(_) => format!("UNKNOWN({v})"),
    }
}

/// A scope in words; unspecified is what the server treats it as.
pub(crate) fn scope(v: i32) -> String {
    match Scope::try_from(v) {
        Ok(Scope::Unspecified | Scope::Process) => "process".to_owned(),
        Ok(Scope::Container) => "container".to_owned(),
        Err(_) => format!("unknown ({v})"),
    }
}

/// A workload in words ("tree", "list", "hash", "matrix"); unspecified is what the server
/// treats it as.
pub(crate) fn workload(v: i32) -> String {
    match Workload::try_from(v) {
        Ok(Workload::Unspecified | Workload::Tree) => "tree".to_owned(),
        Ok(Workload::List) => "list".to_owned(),
        Ok(Workload::Hash) => "hash".to_owned(),
        Ok(Workload::Matrix) => "matrix".to_owned(),
        Err(_) => format!("unknown ({v})"),
    }
}

/// What a workload's activity counter counts, as stressd names it in Status.activity_unit:
/// "searches" (tree), "walk steps" (list), "lookups" (hash), "multiply-adds" (matrix).
pub(crate) fn activity_of(v: i32) -> &'static str {
    match Workload::try_from(v) {
        Ok(Workload::List) => "walk steps",
        Ok(Workload::Hash) => "lookups",
        Ok(Workload::Matrix) => "multiply-adds",
        _ => "searches",
    }
}

/// What a workload's items are called, singular and plural: tree and list "node(s)", hash
/// "entry"/"entries", matrix "block(s)".
pub(crate) fn items_of(v: i32) -> (&'static str, &'static str) {
    match Workload::try_from(v) {
        Ok(Workload::Hash) => ("entry", "entries"),
        Ok(Workload::Matrix) => ("block", "blocks"),
        _ => ("node", "nodes"),
    }
}

/// What `search_rate` paces for a workload: its hold operation per second. (MATRIX counts
/// multiply-adds but paces whole block products.)
pub(crate) fn rate_unit_of(v: i32) -> &'static str {
    match Workload::try_from(v) {
        Ok(Workload::Matrix) => "block products",
        _ => activity_of(v),
    }
}

/// Where a memory basis came from, in words.
pub(crate) fn basis_source(v: i32) -> String {
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
pub(crate) fn basis(b: Option<&MemoryBasis>) -> String {
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
pub(crate) fn target(target_bytes: u64, p: Option<&RunParameters>) -> String {
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
    line(out, indent, "workload", workload(p.workload));
    if p.phases.is_empty() {
        line(
            out,
            indent,
            "duration",
            human::seconds_or(p.duration_seconds, "until stopped"),
        );
    } else {
        // A profile's phases carry their own hold times.
        line(out, indent, "profile", profile(&p.phases, p.repeat));
    }
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
        format!("{} KiB per {}", p.payload_size_kb, items_of(p.workload).0),
    );
    let ramp = if p.ramp_mb_per_second > 0.0 {
        human::mib_rate(p.ramp_mb_per_second)
    } else {
        "full speed".to_owned()
    };
    line(out, indent, "ramp", ramp);
    let rate = if p.search_rate > 0 {
        format!(
            "{}/s",
            human::count_of(p.search_rate, rate_unit_of(p.workload))
        )
    } else {
        "unthrottled".to_owned()
    };
    line(out, indent, "search rate", rate);
    line(out, indent, "keep hot", human::yes_no(p.keep_hot));
    line(out, indent, "huge pages", human::yes_no(p.huge_pages));
    line(out, indent, "scope", scope(p.scope));
    line(out, indent, "allow OOM", human::yes_no(p.allow_oom));
}

/// A target profile in words: "50% for 30s, 1024 MiB for 1m 00s at 200.0 MiB/s; 3 times"
/// (repeat 0: "until stopped").
pub(crate) fn profile(phases: &[Phase], repeat: u32) -> String {
    let steps: Vec<String> = phases
        .iter()
        .map(|p| {
            let target = match p.target {
                Some(PhaseTarget::MemoryMb(mb)) => format!("{mb} MiB"),
                Some(PhaseTarget::MemoryPercent(pct)) => human::percent(pct),
                None => "-".to_owned(),
            };
            let mut s = format!(
                "{target} for {}",
                human::duration(std::time::Duration::from_secs(u64::from(p.hold_seconds)))
            );
            if let Some(r) = p.ramp_mb_per_second {
                let _ = write!(s, " at {}", human::mib_rate(r));
            }
            s
        })
        .collect();
    let times = match repeat {
        0 => "until stopped".to_owned(),
        1 => "once".to_owned(),
        n => format!("{n} times"),
    };
    format!("{}; {times}", steps.join(", "))
}

/// Where a run is in its profile: "phase 2/3, repetition 1/3"; a profile repeated until
/// stopped: "phase 2/3, repetition 4 (until stopped)"; "-" before the first phase.
pub(crate) fn phase_progress(p: Option<&PhaseProgress>) -> String {
    match p {
        Some(p) if p.index > 0 => {
            let rep = if p.repeat == 0 {
                format!("{} (until stopped)", p.repetition)
            } else {
                format!("{}/{}", p.repetition, p.repeat)
            };
            format!("phase {}/{}, repetition {rep}", p.index, p.count)
        }
        _ => "-".to_owned(),
    }
}

/// The result of `start`.
pub(crate) fn start(r: &StartResponse) -> String {
    let mut out = format!("Started run {}\n", r.run_id);
    line(
        &mut out,
        2,
        "target",
        target(r.target_bytes, r.parameters.as_ref()),
    );
    line(&mut out, 2, "basis", basis(r.basis.as_ref()));
    if r.phase_target_bytes.len() > 1 {
        let targets: Vec<String> = r
            .phase_target_bytes
            .iter()
            .map(|b| human::bytes(*b))
            .collect();
        line(&mut out, 2, "phase targets", targets.join(", "));
    }
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
pub(crate) fn stop(r: &StopResponse) -> String {
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
pub(crate) fn clear(r: &ClearResponse) -> String {
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

/// Columns of a log line before its message: time, operation, RSS and working set.
const LOG_PREFIX_WIDTH: usize = 45;
/// Text log lines wrap their message to stay within this many columns.
const LOG_WIDTH: usize = 100;

/// One log entry in lines of at most 100 columns: time of day, a short label for the
/// operation, the RSS and container working set in MiB, then the message, word-wrapped with
/// continuation lines indented to the message column:
/// `06:05:01 HOLDING  RSS 1024.3  WS 1100.0 MiB  5000 searches, 1000/s; 115 s left`.
/// (`--output json` keeps one document per entry and the proto's operation names.)
pub(crate) fn log_entry(e: &LogEntry) -> String {
    let mut out = String::new();
    for line in log_entry_lines(e) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// [`log_entry`] as its lines, without newlines (for callers that prefix every line).
pub(crate) fn log_entry_lines(e: &LogEntry) -> Vec<String> {
    let time = time_of_day(e.timestamp_unix_ms);
    let memory = match e.working_set_mb {
        Some(ws) => format!("RSS {:>6.1}  WS {ws:>6.1} MiB", e.memory_mb),
        None => format!("RSS {:>6.1} MiB", e.memory_mb),
    };
    let prefix = format!("{time} {:<8} {memory:<25}  ", operation_label(e.operation));
    let mut message = e.message.clone();
    if e.operation == Operation::LogEntriesMissed as i32 {
        let _ = write!(message, " ({} entries missed)", human::thousands(e.missed));
    }
    // A number past 9999.9 MiB widens the prefix; the message column moves with it.
    let indent = prefix.chars().count().max(LOG_PREFIX_WIDTH);
    let width = LOG_WIDTH.saturating_sub(indent).max(20);
    let mut lines = Vec::new();
    for (i, chunk) in wrap_words(&message, width).into_iter().enumerate() {
        let lead = if i == 0 {
            prefix.clone()
        } else {
            " ".repeat(indent)
        };
        lines.push(format!("{lead}{chunk}").trim_end().to_owned());
    }
    lines
}

/// The UTC time of day of a log entry, "HH:MM:SS".
pub(crate) fn time_of_day(unix_ms: i64) -> String {
    let stamp = memstress_proto::time::format_unix_ms(unix_ms);
    // "YYYY-MM-DDTHH:MM:SS.mmmZ": the time of day is characters 11..19.
    stamp.get(11..19).unwrap_or(&stamp).to_owned()
}

/// Splits `text` into lines of at most `width` characters at spaces; a word longer than
/// `width` is cut. Always at least one (possibly empty) line.
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while let Some(cur) = lines.last_mut() {
            let used = cur.chars().count();
            let gap = usize::from(used > 0);
            if used + gap + word.len() <= width {
                if gap == 1 {
                    cur.push(' ');
                }
                cur.extend(word.iter());
                break;
            }
            if used > 0 {
                lines.push(String::new());
                continue;
            }
            // A word wider than a whole line: cut it.
            let rest = word.split_off(width.min(word.len()));
            cur.extend(word.iter());
            word = rest;
            if word.is_empty() {
                break;
            }
            lines.push(String::new());
        }
    }
    lines
}

/// The short label of an operation in text log lines (at most 8 characters, so the fields
/// after it line up): START, BUILD, BUILDING, REACHED, HOLD, HOLDING, HELD, COMPLETE, STOPPED,
/// ERROR, CLEARED, MISSED, NOTICE, PHASE.
pub(crate) fn operation_label(v: i32) -> String {
    let label = match Operation::try_from(v) {
        Ok(Operation::StressTestStart) => "START",
        Ok(Operation::BuildTreeStart) => "BUILD",
        Ok(Operation::BuildTreeTarget) => "BUILDING",
        Ok(Operation::BuildTreeComplete) => "REACHED",
        Ok(Operation::SearchTreeStart) => "HOLD",
        Ok(Operation::SearchTreeProgress) => "HOLDING",
        Ok(Operation::SearchTreeComplete) => "HELD",
        Ok(Operation::StressTestComplete) => "COMPLETE",
        Ok(Operation::StressTestStopped) => "STOPPED",
        Ok(Operation::StressTestError) => "ERROR",
        Ok(Operation::MemoryCleared) => "CLEARED",
        Ok(Operation::LogEntriesMissed) => "MISSED",
        Ok(Operation::Notice) => "NOTICE",
        Ok(Operation::PhaseStart) => "PHASE",
        Ok(Operation::Unspecified) | Err(_) => return operation_name(v),
    };
    label.to_owned()
}

/// The result of `health`: one `STATUS  service` line per checked service.
pub(crate) fn health(checks: &[(String, i32)]) -> String {
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
mod tests;
