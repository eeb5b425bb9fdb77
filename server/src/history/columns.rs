//! How a [`RunRecord`] maps to the columns of the `runs` table and back. Reading never fails:
//! a row written by a newer stressd or edited by hand reads with defaults where it makes no
//! sense, because a history that cannot be listed is worse than one odd record.

use super::model::{CgroupIdentity, Checkpoint, Evidence, Outcome, RunRecord};
use crate::cgroup::{BasisSource, CgroupVersion, MemoryBasis};
use crate::engine::State;
use crate::params::{MIB, Phase, RunParams, Scope, Target, WorkloadKind};
use rusqlite::Row;
use rusqlite::types::Value;

/// The columns of `runs` in table order (`super::store` creates them); [`record_values`] yields values in this order.
pub(crate) const COLUMNS: [&str; 44] = [
    "number",
    "run_id",
    "target_kind",
    "target_mb",
    "target_percent",
    "duration_seconds",
    "log_interval_seconds",
    "payload_size_kb",
    "ramp_mb_per_second",
    "search_rate",
    "keep_hot",
    "huge_pages",
    "scope",
    "allow_oom",
    "target_bytes",
    "basis_limit_bytes",
    "basis_source",
    "basis_detail",
    "started_at_ms",
    "ended_at_ms",
    "outcome",
    "evidence",
    "outcome_message",
    "peak_rss_bytes",
    "peak_working_set_bytes",
    "time_to_target_ms",
    "fill_rate_mb_per_second",
    "searches",
    "oom_kills_at_start",
    "oom_kills_at_end",
    "last_error",
    "recovered",
    "cp_taken_at_ms",
    "cp_state",
    "cp_rss_bytes",
    "cp_working_set_bytes",
    "cp_nodes",
    "cp_cgroup_version",
    "cp_cgroup_path",
    "cp_cgroup_inode",
    "cp_oom_kills",
    "workload",
    "phases",
    "profile_repeat",
];

/// Every column of `rec`, in [`COLUMNS`] order.
pub(crate) fn record_values(rec: &RunRecord) -> Vec<Value> {
    let p = &rec.params;
    let (kind, mb, percent) = match p.target {
        Target::MemoryMb(mb) => ("memory_mb", int(mb), Value::Null),
        Target::Percent(pct) => ("percent", Value::Null, Value::Real(pct)),
    };
    let mut v = vec![
        int(rec.number),
        text(&rec.run_id),
        text(kind),
        mb,
        percent,
        Value::Integer(p.duration_seconds.into()),
        Value::Integer(p.log_interval_seconds.into()),
        Value::Integer(p.payload_size_kb.into()),
        Value::Real(p.ramp_mb_per_second),
        int(p.search_rate),
        flag(p.keep_hot),
        flag(p.huge_pages),
        text(scope_name(p.scope)),
        flag(p.allow_oom),
        int(rec.target_bytes),
        int(rec.basis.limit_bytes),
        text(source_name(rec.basis.source)),
        text(&rec.basis.detail),
        Value::Integer(rec.started_at_ms),
        rec.ended_at_ms.map_or(Value::Null, Value::Integer),
        text(rec.outcome.name()),
        rec.evidence.map_or(Value::Null, |e| text(e.name())),
        text(&rec.outcome_message),
        int(rec.peak_rss_bytes),
        opt_int(rec.peak_working_set_bytes),
        opt_int(rec.time_to_target_ms),
        Value::Real(rec.fill_rate_mb_per_second),
        int(rec.searches),
        opt_int(rec.oom_kills_at_start),
        opt_int(rec.oom_kills_at_end),
        text(&rec.last_error),
        flag(rec.recovered),
    ];
    v.extend(checkpoint_values(rec.last_checkpoint.as_ref()));
    v.extend([
        text(p.workload.name()),
        text(&phases_text(&p.phases)),
        Value::Integer(p.repeat.into()),
    ]);
    v
}

/// A profile as one readable text column, e.g. `memory_mb=512 hold_seconds=30;
/// memory_percent=50 hold_seconds=10 ramp_mb_per_second=100` ("" for a single target).
pub(crate) fn phases_text(phases: &[Phase]) -> String {
    let one = |p: &Phase| {
        let target = match p.target {
            Target::MemoryMb(mb) => format!("memory_mb={mb}"),
            Target::Percent(pc) => format!("memory_percent={pc}"),
        };
        let ramp = p
            .ramp_mb_per_second
            .map_or(String::new(), |r| format!(" ramp_mb_per_second={r}"));
        format!("{target} hold_seconds={}{ramp}", p.hold_seconds)
    };
    phases.iter().map(one).collect::<Vec<_>>().join("; ")
}

/// Inverse of [`phases_text`]; a phase it cannot read is left out (reading never fails).
pub(crate) fn phases_from_text(s: &str) -> Vec<Phase> {
    s.split(';').filter_map(phase_from_text).collect()
}

fn phase_from_text(s: &str) -> Option<Phase> {
    let (mut target, mut hold, mut ramp) = (None, 0u32, None);
    for field in s.split_whitespace() {
        let (k, v) = field.split_once('=')?;
        match k {
            "memory_mb" => target = Some(Target::MemoryMb(v.parse().ok()?)),
            "memory_percent" => target = Some(Target::Percent(v.parse().ok()?)),
            "hold_seconds" => hold = v.parse().ok()?,
            "ramp_mb_per_second" => ramp = Some(v.parse().ok()?),
            _ => return None,
        }
    }
    Some(Phase {
        target: target?,
        hold_seconds: hold,
        ramp_mb_per_second: ramp,
    })
}

/// The `cp_*` columns, in [`COLUMNS`] order.
pub(crate) fn checkpoint_values(cp: Option<&Checkpoint>) -> [Value; 9] {
    let Some(cp) = cp else {
        return std::array::from_fn(|_| Value::Null);
    };
    let cg = cp.cgroup.as_ref();
    [
        Value::Integer(cp.taken_at_ms),
        text(cp.state.name()),
        int(cp.rss_bytes),
        opt_int(cp.working_set_bytes),
        int(cp.nodes),
        cg.map_or(Value::Null, |c| text(c.version.as_str())),
        cg.map_or(Value::Null, |c| text(&c.path)),
        cg.map_or(Value::Null, |c| int(c.inode)),
        opt_int(cp.oom_kills),
    ]
}

/// Reads a row of `SELECT * FROM runs`. Never fails: a NULL, a value of the wrong type or an
/// unknown name (a row written by a newer stressd, or edited by hand) reads as a default.
pub(crate) fn record_from_row(row: &Row<'_>) -> RunRecord {
    let target_bytes = get_u64(row, "target_bytes").unwrap_or(0);
    RunRecord {
        number: get_u64(row, "number").unwrap_or(0),
        run_id: get_text(row, "run_id").unwrap_or_default(),
        params: params_from_row(row, target_bytes),
        target_bytes,
        basis: MemoryBasis {
            limit_bytes: get_u64(row, "basis_limit_bytes").unwrap_or(0),
            source: get_text(row, "basis_source")
                .and_then(|s| source_from_name(&s))
                .unwrap_or(BasisSource::HostTotal),
            detail: get_text(row, "basis_detail").unwrap_or_default(),
        },
        started_at_ms: get_i64(row, "started_at_ms").unwrap_or(0),
        ended_at_ms: get_i64(row, "ended_at_ms"),
        // An unreadable outcome is treated as closed, so recovery never rewrites such a row.
        outcome: get_text(row, "outcome")
            .and_then(|s| Outcome::from_name(&s))
            .unwrap_or(Outcome::Failed),
        evidence: get_text(row, "evidence").and_then(|s| Evidence::from_name(&s)),
        outcome_message: get_text(row, "outcome_message").unwrap_or_default(),
        peak_rss_bytes: get_u64(row, "peak_rss_bytes").unwrap_or(0),
        peak_working_set_bytes: get_u64(row, "peak_working_set_bytes"),
        time_to_target_ms: get_u64(row, "time_to_target_ms"),
        fill_rate_mb_per_second: get_f64(row, "fill_rate_mb_per_second").unwrap_or(0.0),
        searches: get_u64(row, "searches").unwrap_or(0),
        oom_kills_at_start: get_u64(row, "oom_kills_at_start"),
        oom_kills_at_end: get_u64(row, "oom_kills_at_end"),
        last_error: get_text(row, "last_error").unwrap_or_default(),
        last_checkpoint: checkpoint_from_row(row),
        recovered: get_i64(row, "recovered").is_some_and(|v| v != 0),
    }
}

fn params_from_row(row: &Row<'_>, target_bytes: u64) -> RunParams {
    let percent = get_f64(row, "target_percent");
    let target = match (get_text(row, "target_kind").as_deref(), percent) {
        (Some("percent"), Some(pct)) => Target::Percent(pct),
        _ => Target::MemoryMb(get_u64(row, "target_mb").unwrap_or(target_bytes / MIB)),
    };
    RunParams {
        target,
        duration_seconds: get_u32(row, "duration_seconds"),
        log_interval_seconds: get_u32(row, "log_interval_seconds"),
        payload_size_kb: get_u32(row, "payload_size_kb"),
        ramp_mb_per_second: get_f64(row, "ramp_mb_per_second").unwrap_or(0.0),
        search_rate: get_u64(row, "search_rate").unwrap_or(0),
        keep_hot: get_i64(row, "keep_hot").is_some_and(|v| v != 0),
        huge_pages: get_i64(row, "huge_pages").is_some_and(|v| v != 0),
        scope: get_text(row, "scope")
            .and_then(|s| scope_from_name(&s))
            .unwrap_or_default(),
        allow_oom: get_i64(row, "allow_oom").is_some_and(|v| v != 0),
        workload: get_text(row, "workload")
            .and_then(|s| WorkloadKind::ALL.into_iter().find(|k| k.name() == s))
            .unwrap_or_default(),
        phases: get_text(row, "phases")
            .map(|s| phases_from_text(&s))
            .unwrap_or_default(),
        repeat: get_i64(row, "profile_repeat").map_or(1, |v| u32::try_from(v).unwrap_or(1)),
    }
}

fn checkpoint_from_row(row: &Row<'_>) -> Option<Checkpoint> {
    let taken_at_ms = get_i64(row, "cp_taken_at_ms")?;
    let cgroup = match (
        get_text(row, "cp_cgroup_version").and_then(|s| version_from_name(&s)),
        get_text(row, "cp_cgroup_path"),
        get_u64(row, "cp_cgroup_inode"),
    ) {
        (Some(version), Some(path), Some(inode)) => Some(CgroupIdentity {
            version,
            path,
            inode,
        }),
        _ => None,
    };
    Some(Checkpoint {
        taken_at_ms,
        state: get_text(row, "cp_state")
            .and_then(|s| state_from_name(&s))
            .unwrap_or(State::Idle),
        rss_bytes: get_u64(row, "cp_rss_bytes").unwrap_or(0),
        working_set_bytes: get_u64(row, "cp_working_set_bytes"),
        nodes: get_u64(row, "cp_nodes").unwrap_or(0),
        cgroup,
        oom_kills: get_u64(row, "cp_oom_kills"),
    })
}

fn get_i64(row: &Row<'_>, col: &str) -> Option<i64> {
    row.get::<_, Option<i64>>(col).ok().flatten()
}

fn get_u64(row: &Row<'_>, col: &str) -> Option<u64> {
    get_i64(row, col).map(to_u64)
}

fn get_u32(row: &Row<'_>, col: &str) -> u32 {
    let v = get_i64(row, col).unwrap_or(0);
    u32::try_from(v).unwrap_or(if v < 0 { 0 } else { u32::MAX })
}

fn get_f64(row: &Row<'_>, col: &str) -> Option<f64> {
    row.get::<_, Option<f64>>(col).ok().flatten()
}

fn get_text(row: &Row<'_>, col: &str) -> Option<String> {
    row.get::<_, Option<String>>(col).ok().flatten()
}

/// u64 → SQLite integer; values past i64::MAX (over 8 EiB, none real) saturate.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// SQLite integer → u64; a negative value (only a hand-edited row has one) reads as 0.
pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// An integer column value.
pub(crate) fn int(v: u64) -> Value {
    Value::Integer(to_i64(v))
}

fn opt_int(v: Option<u64>) -> Value {
    v.map_or(Value::Null, int)
}

fn flag(v: bool) -> Value {
    Value::Integer(i64::from(v))
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// Stored name of a scope.
pub(crate) fn scope_name(s: Scope) -> &'static str {
    match s {
        Scope::Process => "process",
        Scope::Container => "container",
    }
}

/// Inverse of [`scope_name`].
pub(crate) fn scope_from_name(s: &str) -> Option<Scope> {
    [Scope::Process, Scope::Container]
        .into_iter()
        .find(|v| scope_name(*v) == s)
}

/// Stored name of a basis source.
pub(crate) fn source_name(s: BasisSource) -> &'static str {
    match s {
        BasisSource::CgroupV2 => "cgroup_v2",
        BasisSource::CgroupV1 => "cgroup_v1",
        BasisSource::DownwardApi => "downward_api",
        BasisSource::HostTotal => "host_total",
    }
}

/// Inverse of [`source_name`].
pub(crate) fn source_from_name(s: &str) -> Option<BasisSource> {
    [
        BasisSource::CgroupV2,
        BasisSource::CgroupV1,
        BasisSource::DownwardApi,
        BasisSource::HostTotal,
    ]
    .into_iter()
    .find(|v| source_name(*v) == s)
}

/// Inverse of `State::name` (the engine keeps its own mapping private).
pub(crate) fn state_from_name(s: &str) -> Option<State> {
    State::ALL.into_iter().find(|v| v.name() == s)
}

/// Inverse of `CgroupVersion::as_str`.
pub(crate) fn version_from_name(s: &str) -> Option<CgroupVersion> {
    [CgroupVersion::V1, CgroupVersion::V2]
        .into_iter()
        .find(|v| v.as_str() == s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::store::{open_memory, page};
    use super::*;

    #[test]
    fn values_match_columns() {
        let rec = super::super::tests::record(7);
        assert_eq!(record_values(&rec).len(), COLUMNS.len());
    }

    #[test]
    fn names_roundtrip() {
        for s in [Scope::Process, Scope::Container] {
            assert_eq!(scope_from_name(scope_name(s)), Some(s));
        }
        for s in [
            BasisSource::CgroupV2,
            BasisSource::CgroupV1,
            BasisSource::DownwardApi,
            BasisSource::HostTotal,
        ] {
            assert_eq!(source_from_name(source_name(s)), Some(s));
        }
        for s in [
            State::Idle,
            State::Building,
            State::Searching,
            State::Completed,
            State::Stopped,
            State::Failed,
        ] {
            assert_eq!(state_from_name(s.name()), Some(s));
        }
        for v in [CgroupVersion::V1, CgroupVersion::V2] {
            assert_eq!(version_from_name(v.as_str()), Some(v));
        }
        assert_eq!(state_from_name("exploded"), None);
    }

    #[test]
    fn phases_roundtrip_through_their_text() {
        let phases = vec![
            Phase {
                target: Target::MemoryMb(512),
                hold_seconds: 30,
                ramp_mb_per_second: None,
            },
            Phase {
                target: Target::Percent(12.5),
                hold_seconds: 0,
                ramp_mb_per_second: Some(100.5),
            },
        ];
        let text = phases_text(&phases);
        assert_eq!(
            text,
            "memory_mb=512 hold_seconds=30; memory_percent=12.5 hold_seconds=0 ramp_mb_per_second=100.5"
        );
        assert_eq!(phases_from_text(&text), phases);
        assert!(phases_from_text("").is_empty());
        assert_eq!(
            phases_from_text("memory_mb=x hold_seconds=1; memory_mb=10").len(),
            1
        );
    }

    #[test]
    fn integers_saturate() {
        assert_eq!(to_i64(u64::MAX), i64::MAX);
        assert_eq!(to_u64(-5), 0);
        assert_eq!(to_u64(to_i64(123)), 123);
    }

    #[test]
    fn odd_rows_read_as_defaults() {
        let conn = open_memory().unwrap();
        conn.execute_batch(
            "INSERT INTO runs (run_id, target_kind, target_mb, duration_seconds,
                log_interval_seconds, payload_size_kb, ramp_mb_per_second, search_rate,
                keep_hot, huge_pages, scope, allow_oom, target_bytes, basis_limit_bytes,
                basis_source, basis_detail, started_at_ms, outcome, outcome_message,
                peak_rss_bytes, searches, last_error, recovered, cp_taken_at_ms, cp_state,
                cp_cgroup_version, cp_cgroup_path, cp_cgroup_inode)
             VALUES ('run-1-x', 'gigawatts', NULL, -3, 99999999999, 'abc', 1.5, -1, 1, 0,
                'galaxy', 7, 10485760, -1, 'moon', 'd', 5, 'vanished', '', -9, 0, '', 0,
                10, 'dancing', 'v9', '/', 3)",
        )
        .unwrap();
        let rec = page(&conn, None, 10).unwrap().pop().unwrap();
        assert_eq!(rec.params.target, Target::MemoryMb(10));
        assert_eq!(rec.params.duration_seconds, 0);
        assert_eq!(rec.params.log_interval_seconds, u32::MAX);
        assert_eq!(rec.params.payload_size_kb, 0);
        assert_eq!(rec.params.search_rate, 0);
        assert_eq!(rec.params.scope, Scope::Process);
        assert!(rec.params.allow_oom);
        assert_eq!(rec.basis.limit_bytes, 0);
        assert_eq!(rec.basis.source, BasisSource::HostTotal);
        assert_eq!(rec.outcome, Outcome::Failed);
        assert_eq!(rec.peak_rss_bytes, 0);
        let cp = rec.last_checkpoint.unwrap();
        assert_eq!(cp.state, State::Idle);
        assert_eq!(cp.cgroup, None);
        assert_eq!(cp.oom_kills, None);
    }
}
