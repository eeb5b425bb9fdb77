//! Run history: domain records to proto messages.

use super::{basis_to_pb, params_to_pb, state_to_pb};
use crate::history::model::{Checkpoint, Evidence, HistoryMode, HistoryStatus, Outcome, RunRecord};
use memstress_proto::v1 as pb;

fn outcome_to_pb(o: Outcome) -> pb::Outcome {
    match o {
        Outcome::Running => pb::Outcome::Running,
        Outcome::Completed => pb::Outcome::Completed,
        Outcome::Stopped => pb::Outcome::Stopped,
        Outcome::Failed => pb::Outcome::Failed,
        Outcome::Killed => pb::Outcome::Killed,
        Outcome::OomKilled => pb::Outcome::OomKilled,
    }
}

fn evidence_to_pb(e: Option<Evidence>) -> pb::Evidence {
    match e {
        None => pb::Evidence::Unspecified,
        Some(Evidence::OomCounter) => pb::Evidence::OomCounter,
        Some(Evidence::NearLimit) => pb::Evidence::NearLimit,
        Some(Evidence::AllowOomGrowth) => pb::Evidence::AllowOomGrowth,
        Some(Evidence::OomCounterUnchanged) => pb::Evidence::OomCounterUnchanged,
        Some(Evidence::None) => pb::Evidence::None,
    }
}

fn checkpoint_to_pb(c: &Checkpoint) -> pb::Checkpoint {
    pb::Checkpoint {
        taken_at_unix_ms: c.taken_at_ms,
        state: state_to_pb(c.state) as i32,
        rss_bytes: c.rss_bytes,
        working_set_bytes: c.working_set_bytes,
        nodes: c.nodes,
        cgroup_path: c
            .cgroup
            .as_ref()
            .map(|g| g.path.clone())
            .unwrap_or_default(),
        cgroup_version: c
            .cgroup
            .as_ref()
            .map(|g| g.version.as_str().to_string())
            .unwrap_or_default(),
        oom_kills: c.oom_kills,
    }
}

/// A history record as sent by ListRuns, GetRun and Status.
pub(super) fn record_to_pb(r: &RunRecord) -> pb::RunRecord {
    pb::RunRecord {
        number: r.number,
        run_id: r.run_id.clone(),
        parameters: Some(params_to_pb(&r.params)),
        target_bytes: r.target_bytes,
        basis: Some(basis_to_pb(&r.basis)),
        started_at_unix_ms: r.started_at_ms,
        ended_at_unix_ms: r.ended_at_ms,
        outcome: outcome_to_pb(r.outcome) as i32,
        evidence: evidence_to_pb(r.evidence) as i32,
        outcome_message: r.outcome_message.clone(),
        peak_rss_bytes: r.peak_rss_bytes,
        peak_working_set_bytes: r.peak_working_set_bytes,
        time_to_target_ms: r.time_to_target_ms,
        fill_rate_mb_per_second: r.fill_rate_mb_per_second,
        searches: r.searches,
        oom_kills_at_start: r.oom_kills_at_start,
        oom_kills_at_end: r.oom_kills_at_end,
        last_error: r.last_error.clone(),
        last_checkpoint: r.last_checkpoint.as_ref().map(checkpoint_to_pb),
        recovered: r.recovered,
    }
}

/// The history's health for Status.
pub(super) fn history_status_to_pb(h: &HistoryStatus) -> pb::HistoryStatus {
    let (mode, path, reason) = match &h.mode {
        HistoryMode::Durable { path } => (pb::HistoryMode::Durable, path.clone(), String::new()),
        HistoryMode::Memory { reason } => (pb::HistoryMode::Memory, String::new(), reason.clone()),
    };
    pb::HistoryStatus {
        mode: mode as i32,
        path,
        reason,
        runs_kept: h.runs_kept,
        limit: h.limit,
    }
}
