//! `--output json`: the proto messages as `serde_json` values, mapped by hand because prost
//! types do not derive `Serialize`.
//!
//! Conventions: field names are the proto field names; enums are their proto names
//! ("STATE_SEARCHING", "SCOPE_PROCESS", "BASIS_SOURCE_CGROUP_V2", "SEARCH_TREE_PROGRESS",
//! "OUTCOME_OOM_KILLED", "EVIDENCE_OOM_COUNTER", "HISTORY_MODE_DURABLE") and
//! "UNKNOWN(<n>)" for a value this client does not know; numbers are raw (bytes as integers,
//! times as Unix milliseconds or millisecond counts); proto `optional` fields and unset message
//! fields are `null` when absent.

use memstress_proto::v1::{
    BasisSource, Checkpoint, ClearResponse, ContainerMemory, Evidence, HistoryMode, HistoryStatus,
    LogEntry, MemoryBasis, Operation, Outcome, RunParameters, RunRecord, Scope, StartResponse,
    State, StatusResponse, StopResponse, Workload, phase::Target as PhaseTarget,
};
use serde_json::{Value, json};
use tonic_health::pb::health_check_response::ServingStatus;

/// Proto name of an enum value, or "UNKNOWN(n)" for one newer than this client.
fn enum_name<E>(value: i32, name: impl Fn(E) -> &'static str) -> String
where
    E: TryFrom<i32>,
{
    E::try_from(value).map_or_else(|_| format!("UNKNOWN({value})"), |e| name(e).to_owned())
}

/// `State` as its proto name, e.g. "STATE_SEARCHING".
pub(crate) fn state_name(v: i32) -> String {
    enum_name(v, |e: State| e.as_str_name())
}

/// `Scope` as its proto name, e.g. "SCOPE_PROCESS".
pub(crate) fn scope_name(v: i32) -> String {
    enum_name(v, |e: Scope| e.as_str_name())
}

/// `BasisSource` as its proto name, e.g. "BASIS_SOURCE_CGROUP_V2".
pub(crate) fn basis_source_name(v: i32) -> String {
    enum_name(v, |e: BasisSource| e.as_str_name())
}

/// `Operation` as its proto name, e.g. "SEARCH_TREE_PROGRESS".
pub(crate) fn operation_name(v: i32) -> String {
    enum_name(v, |e: Operation| e.as_str_name())
}

/// `Outcome` as its proto name, e.g. "OUTCOME_OOM_KILLED".
pub(crate) fn outcome_name(v: i32) -> String {
    enum_name(v, |e: Outcome| e.as_str_name())
}

/// `Evidence` as its proto name, e.g. "EVIDENCE_OOM_COUNTER".
pub(crate) fn evidence_name(v: i32) -> String {
    enum_name(v, |e: Evidence| e.as_str_name())
}

/// `HistoryMode` as its proto name, e.g. "HISTORY_MODE_DURABLE".
pub(crate) fn history_mode_name(v: i32) -> String {
    enum_name(v, |e: HistoryMode| e.as_str_name())
}

/// Health `ServingStatus` as its proto name, e.g. "SERVING".
pub(crate) fn serving_status_name(v: i32) -> String {
    enum_name(v, |e: ServingStatus| e.as_str_name())
}

/// A `MemoryBasis` (null when the server left it unset).
pub(crate) fn basis(b: Option<&MemoryBasis>) -> Value {
    match b {
        None => Value::Null,
        Some(b) => json!({
            "limit_bytes": b.limit_bytes,
            "source": basis_source_name(b.source),
            "detail": b.detail,
        }),
    }
}

/// `RunParameters` (null when the server left it unset).
pub(crate) fn parameters(p: Option<&RunParameters>) -> Value {
    match p {
        None => Value::Null,
        Some(p) => json!({
            "memory_mb": p.memory_mb,
            "memory_percent": p.memory_percent,
            "duration_seconds": p.duration_seconds,
            "log_interval_seconds": p.log_interval_seconds,
            "payload_size_kb": p.payload_size_kb,
            "ramp_mb_per_second": p.ramp_mb_per_second,
            "search_rate": p.search_rate,
            "keep_hot": p.keep_hot,
            "huge_pages": p.huge_pages,
            "scope": scope_name(p.scope),
            "allow_oom": p.allow_oom,
            "workload": workload_name(p.workload),
            "phases": phases(&p.phases),
            "repeat": p.repeat,
        }),
    }
}

/// `ContainerMemory` (null when the server left it unset).
pub(crate) fn container(c: Option<&ContainerMemory>) -> Value {
    match c {
        None => Value::Null,
        Some(c) => json!({
            "cgroup_version": c.cgroup_version,
            "cgroup_path": c.cgroup_path,
            "limit_bytes": c.limit_bytes,
            "usage_bytes": c.usage_bytes,
            "working_set_bytes": c.working_set_bytes,
            "oom_kills": c.oom_kills,
            "pressure_some_avg10": c.pressure_some_avg10,
            "pressure_full_avg10": c.pressure_full_avg10,
            "pressure_some_total_us": c.pressure_some_total_us,
            "pressure_full_total_us": c.pressure_full_total_us,
            "oom_kills_during_run": c.oom_kills_during_run,
        }),
    }
}

/// A run's `Checkpoint` (null when the server left it unset).
pub(crate) fn checkpoint(c: Option<&Checkpoint>) -> Value {
    match c {
        None => Value::Null,
        Some(c) => json!({
            "taken_at_unix_ms": c.taken_at_unix_ms,
            "state": state_name(c.state),
            "rss_bytes": c.rss_bytes,
            "working_set_bytes": c.working_set_bytes,
            "nodes": c.nodes,
            "cgroup_path": c.cgroup_path,
            "cgroup_version": c.cgroup_version,
            "oom_kills": c.oom_kills,
        }),
    }
}

/// One `RunRecord` with every field (null when the server left it unset): the result of
/// `history RUN_ID`, one element of `history`'s `runs`, and status's `previous_run`.
pub(crate) fn run_record(r: Option<&RunRecord>) -> Value {
    let Some(r) = r else {
        return Value::Null;
    };
    json!({
        "number": r.number,
        "run_id": r.run_id,
        "parameters": parameters(r.parameters.as_ref()),
        "target_bytes": r.target_bytes,
        "basis": basis(r.basis.as_ref()),
        "started_at_unix_ms": r.started_at_unix_ms,
        "ended_at_unix_ms": r.ended_at_unix_ms,
        "outcome": outcome_name(r.outcome),
        "evidence": evidence_name(r.evidence),
        "outcome_message": r.outcome_message,
        "peak_rss_bytes": r.peak_rss_bytes,
        "peak_working_set_bytes": r.peak_working_set_bytes,
        "time_to_target_ms": r.time_to_target_ms,
        "fill_rate_mb_per_second": r.fill_rate_mb_per_second,
        "searches": r.searches,
        "oom_kills_at_start": r.oom_kills_at_start,
        "oom_kills_at_end": r.oom_kills_at_end,
        "last_error": r.last_error,
        "last_checkpoint": checkpoint(r.last_checkpoint.as_ref()),
        "recovered": r.recovered,
    })
}

/// The result of `history`: `{"runs": [...], "next_cursor": "..."}`, runs newest first,
/// `next_cursor` empty when no older runs are kept.
pub(crate) fn run_list(runs: &[RunRecord], next_cursor: &str) -> Value {
    let runs: Vec<Value> = runs.iter().map(|r| run_record(Some(r))).collect();
    json!({ "runs": runs, "next_cursor": next_cursor })
}

/// The run history's `HistoryStatus` (null when the server left it unset).
pub(crate) fn history_status(h: Option<&HistoryStatus>) -> Value {
    match h {
        None => Value::Null,
        Some(h) => json!({
            "mode": history_mode_name(h.mode),
            "path": h.path,
            "reason": h.reason,
            "runs_kept": h.runs_kept,
            "limit": h.limit,
        }),
    }
}

/// The result of `start`.
pub(crate) fn start(r: &StartResponse) -> Value {
    json!({
        "run_id": r.run_id,
        "target_bytes": r.target_bytes,
        "basis": basis(r.basis.as_ref()),
        "parameters": parameters(r.parameters.as_ref()),
        "previous_run_released_bytes": r.previous_run_released_bytes,
        "phase_target_bytes": r.phase_target_bytes,
    })
}

/// The result of `stop`.
pub(crate) fn stop(r: &StopResponse) -> Value {
    json!({
        "state": state_name(r.state),
        "stopped": r.stopped,
        "run_id": r.run_id,
        "message": r.message,
    })
}

/// A workload as its proto name ("WORKLOAD_MATRIX").
pub(crate) fn workload_name(v: i32) -> String {
    enum_name(v, |e: Workload| e.as_str_name())
}

/// A profile's phases as requested: `[{"memory_mb" | "memory_percent", "hold_seconds",
/// "ramp_mb_per_second"}]` (ramp null when the run's ramp applies).
pub(crate) fn phases(phases: &[memstress_proto::v1::Phase]) -> Value {
    Value::Array(
        phases
            .iter()
            .map(|p| {
                let (mb, pct) = match p.target {
                    Some(PhaseTarget::MemoryMb(mb)) => (Some(mb), None),
                    Some(PhaseTarget::MemoryPercent(pct)) => (None, Some(pct)),
                    None => (None, None),
                };
                json!({
                    "memory_mb": mb,
                    "memory_percent": pct,
                    "hold_seconds": p.hold_seconds,
                    "ramp_mb_per_second": p.ramp_mb_per_second,
                })
            })
            .collect(),
    )
}

/// The status's `phase` (PhaseProgress) and `instance` (Instance) documents, null when unset.
fn phase_and_instance(s: &StatusResponse) -> (Value, Value) {
    let phase = s.phase.as_ref().map_or(Value::Null, |p| {
        json!({
            "index": p.index,
            "count": p.count,
            "repetition": p.repetition,
            "repeat": p.repeat,
            "target_bytes": p.target_bytes,
        })
    });
    let instance = s.instance.as_ref().map_or(Value::Null, |i| {
        json!({
            "instance_id": i.instance_id,
            "hostname": i.hostname,
            "pod_name": i.pod_name,
            "pod_namespace": i.pod_namespace,
            "node_name": i.node_name,
            "started_at_unix_ms": i.started_at_unix_ms,
            "version": i.version,
        })
    });
    (phase, instance)
}

/// The result of `status`.
pub(crate) fn status(s: &StatusResponse) -> Value {
    let (phase, instance) = phase_and_instance(s);
    json!({
        "workload": workload_name(s.workload),
        "activity_unit": s.activity_unit,
        "phase": phase,
        "instance": instance,
        "state": state_name(s.state),
        "run_id": s.run_id,
        "parameters": parameters(s.parameters.as_ref()),
        "target_bytes": s.target_bytes,
        "nodes": s.nodes,
        "payload_bytes": s.payload_bytes,
        "rss_bytes": s.rss_bytes,
        "peak_rss_bytes": s.peak_rss_bytes,
        "basis": basis(s.basis.as_ref()),
        "searches": s.searches,
        "searches_per_second": s.searches_per_second,
        "started_at_unix_ms": s.started_at_unix_ms,
        "elapsed_ms": s.elapsed_ms,
        "remaining_ms": s.remaining_ms,
        "last_error": s.last_error,
        "fill_rate_mb_per_second": s.fill_rate_mb_per_second,
        "current_fill_rate_mb_per_second": s.current_fill_rate_mb_per_second,
        "time_to_target_ms": s.time_to_target_ms,
        "container": container(s.container.as_ref()),
        "process_cpu_seconds": s.process_cpu_seconds,
        "huge_page_bytes": s.huge_page_bytes,
        "previous_run": run_record(s.previous_run.as_ref()),
        "history": history_status(s.history.as_ref()),
    })
}

/// The result of `clear`.
pub(crate) fn clear(r: &ClearResponse) -> Value {
    json!({
        "released_bytes": r.released_bytes,
        "rss_before_bytes": r.rss_before_bytes,
        "rss_after_bytes": r.rss_after_bytes,
        "nodes_released": r.nodes_released,
        "stopped_running": r.stopped_running,
        "duration_ms": r.duration_ms,
    })
}

/// One log entry (one line of `logs` / `start --follow` output).
pub(crate) fn log_entry(e: &LogEntry) -> Value {
    json!({
        "sequence": e.sequence,
        "timestamp_unix_ms": e.timestamp_unix_ms,
        "operation": operation_name(e.operation),
        "memory_mb": e.memory_mb,
        "message": e.message,
        "run_id": e.run_id,
        "missed": e.missed,
        "working_set_mb": e.working_set_mb,
    })
}

/// The result of `health`: each checked service's status and whether all are SERVING.
pub(crate) fn health(checks: &[(String, i32)]) -> Value {
    let serving = checks
        .iter()
        .all(|(_, s)| *s == ServingStatus::Serving as i32);
    let list: Vec<Value> = checks
        .iter()
        .map(|(service, s)| json!({ "service": service, "status": serving_status_name(*s) }))
        .collect();
    json!({ "serving": serving, "checks": list })
}

#[cfg(test)]
mod tests;
