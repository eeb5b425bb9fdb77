//! Tests of the JSON mapping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn sample_status() -> StatusResponse {
    StatusResponse {
        state: State::Searching as i32,
        run_id: "r-1".into(),
        parameters: Some(RunParameters {
            memory_mb: Some(1024),
            memory_percent: None,
            duration_seconds: 120,
            log_interval_seconds: 5,
            payload_size_kb: 100,
            ramp_mb_per_second: 0.0,
            search_rate: 1000,
            keep_hot: true,
            huge_pages: false,
            scope: Scope::Container as i32,
            allow_oom: false,
            ..Default::default()
        }),
        target_bytes: 1 << 30,
        nodes: 10_486,
        payload_bytes: 1 << 30,
        rss_bytes: 1_100_000_000,
        peak_rss_bytes: 1_200_000_000,
        basis: Some(MemoryBasis {
            limit_bytes: 4 << 30,
            source: BasisSource::CgroupV2 as i32,
            detail: "/sys/fs/cgroup/memory.max".into(),
        }),
        searches: 123_456,
        searches_per_second: 999.5,
        started_at_unix_ms: 1_795_759_501_123,
        elapsed_ms: 65_000,
        remaining_ms: None,
        last_error: String::new(),
        fill_rate_mb_per_second: 1843.25,
        current_fill_rate_mb_per_second: 0.0,
        time_to_target_ms: Some(560),
        container: Some(ContainerMemory {
            cgroup_version: "v2".into(),
            cgroup_path: "/kubepods/pod1/c1".into(),
            limit_bytes: Some(4 << 30),
            usage_bytes: Some(1_200_000_000),
            working_set_bytes: None,
            oom_kills: Some(0),
            pressure_some_avg10: Some(0.5),
            pressure_full_avg10: None,
            pressure_some_total_us: Some(1234),
            pressure_full_total_us: None,
            oom_kills_during_run: 0,
        }),
        process_cpu_seconds: 12.5,
        huge_page_bytes: 0,
        previous_run: None,
        history: None,
        ..Default::default()
    }
}

#[test]
fn status_mapping() {
    let v = status(&sample_status());
    assert_eq!(v["state"], "STATE_SEARCHING");
    assert_eq!(v["run_id"], "r-1");
    assert_eq!(v["target_bytes"], 1u64 << 30);
    assert_eq!(v["remaining_ms"], Value::Null);
    assert_eq!(v["time_to_target_ms"], 560);
    assert_eq!(v["searches_per_second"], 999.5);
    assert_eq!(v["started_at_unix_ms"], 1_795_759_501_123i64);
    assert_eq!(v["last_error"], "");
    assert_eq!(v["parameters"]["memory_mb"], 1024);
    assert_eq!(v["parameters"]["memory_percent"], Value::Null);
    assert_eq!(v["parameters"]["scope"], "SCOPE_CONTAINER");
    assert_eq!(v["parameters"]["keep_hot"], true);
    assert_eq!(v["basis"]["source"], "BASIS_SOURCE_CGROUP_V2");
    assert_eq!(v["basis"]["limit_bytes"], 4u64 << 30);
    assert_eq!(v["container"]["working_set_bytes"], Value::Null);
    assert_eq!(v["container"]["pressure_some_avg10"], 0.5);
    assert_eq!(v["container"]["pressure_full_avg10"], Value::Null);
    assert_eq!(v["container"]["oom_kills"], 0);
    assert_eq!(v["previous_run"], Value::Null);
    assert_eq!(v["history"], Value::Null);
    assert_eq!(v.as_object().unwrap().len(), 27);
    assert_eq!(v["parameters"].as_object().unwrap().len(), 14);
    assert_eq!(v["workload"], "WORKLOAD_UNSPECIFIED");
    assert_eq!(v["parameters"]["workload"], "WORKLOAD_UNSPECIFIED");
    assert_eq!(v["parameters"]["phases"], json!([]));
    assert_eq!(v["phase"], Value::Null);
    assert_eq!(v["instance"], Value::Null);
    assert_eq!(v["container"]["pressure_full_total_us"], Value::Null);
    assert_eq!(v["container"].as_object().unwrap().len(), 11);
    // One document on one line.
    let line = serde_json::to_string(&v).unwrap();
    assert!(!line.contains('\n'));
}

#[test]
fn workload_phases_and_instance() {
    use memstress_proto::v1::{Instance, Phase, PhaseProgress};
    let s = StatusResponse {
        workload: Workload::Matrix as i32,
        activity_unit: "multiply-adds".into(),
        phase: Some(PhaseProgress {
            index: 2,
            count: 3,
            repetition: 1,
            repeat: 0,
            target_bytes: 5 << 20,
        }),
        instance: Some(Instance {
            instance_id: "00ff".into(),
            pod_name: "web-1".into(),
            ..Instance::default()
        }),
        parameters: Some(RunParameters {
            phases: vec![
                Phase {
                    target: Some(PhaseTarget::MemoryPercent(50.0)),
                    hold_seconds: 30,
                    ramp_mb_per_second: None,
                },
                Phase {
                    target: Some(PhaseTarget::MemoryMb(64)),
                    hold_seconds: 0,
                    ramp_mb_per_second: Some(10.0),
                },
            ],
            repeat: 0,
            ..RunParameters::default()
        }),
        ..StatusResponse::default()
    };
    let v = status(&s);
    assert_eq!(v["workload"], "WORKLOAD_MATRIX");
    assert_eq!(v["activity_unit"], "multiply-adds");
    assert_eq!(v["phase"]["index"], 2);
    assert_eq!(v["phase"]["repeat"], 0);
    assert_eq!(v["phase"]["target_bytes"], 5u64 << 20);
    assert_eq!(v["instance"]["pod_name"], "web-1");
    assert_eq!(v["instance"]["instance_id"], "00ff");
    let p = &v["parameters"]["phases"];
    assert_eq!(p[0]["memory_percent"], 50.0);
    assert_eq!(p[0]["memory_mb"], Value::Null);
    assert_eq!(p[0]["ramp_mb_per_second"], Value::Null);
    assert_eq!(p[1]["memory_mb"], 64);
    assert_eq!(p[1]["ramp_mb_per_second"], 10.0);
    assert_eq!(v["parameters"]["repeat"], 0);
}

#[test]
fn unset_messages_are_null() {
    let v = status(&StatusResponse::default());
    assert_eq!(v["state"], "STATE_UNSPECIFIED");
    assert_eq!(v["parameters"], Value::Null);
    assert_eq!(v["basis"], Value::Null);
    assert_eq!(v["container"], Value::Null);
    let s = StatusResponse {
        state: 42,
        ..StatusResponse::default()
    };
    assert_eq!(status(&s)["state"], "UNKNOWN(42)");
}

#[test]
fn log_entry_mapping() {
    let e = LogEntry {
        sequence: 12,
        timestamp_unix_ms: 1_795_759_501_123,
        operation: Operation::SearchTreeProgress as i32,
        memory_mb: 1024.25,
        message: "held".into(),
        run_id: "r-1".into(),
        missed: 0,
        working_set_mb: Some(1100.5),
    };
    let v = log_entry(&e);
    assert_eq!(
        v,
        json!({
            "sequence": 12,
            "timestamp_unix_ms": 1_795_759_501_123i64,
            "operation": "SEARCH_TREE_PROGRESS",
            "memory_mb": 1024.25,
            "message": "held",
            "run_id": "r-1",
            "missed": 0,
            "working_set_mb": 1100.5,
        })
    );
    let missed = LogEntry {
        operation: Operation::LogEntriesMissed as i32,
        missed: 7,
        ..LogEntry::default()
    };
    let v = log_entry(&missed);
    assert_eq!(v["operation"], "LOG_ENTRIES_MISSED");
    assert_eq!(v["missed"], 7);
    assert_eq!(v["working_set_mb"], Value::Null);
}

#[test]
fn other_results() {
    let v = start(&StartResponse {
        run_id: "r-2".into(),
        target_bytes: 512 << 20,
        basis: None,
        parameters: None,
        previous_run_released_bytes: 3,
        ..Default::default()
    });
    assert_eq!(v["run_id"], "r-2");
    assert_eq!(v["basis"], Value::Null);
    assert_eq!(v["previous_run_released_bytes"], 3);

    let v = stop(&StopResponse {
        state: State::Stopped as i32,
        stopped: true,
        run_id: "r-2".into(),
        message: "stopped".into(),
    });
    assert_eq!(v["state"], "STATE_STOPPED");
    assert_eq!(v["stopped"], true);

    let v = clear(&ClearResponse {
        released_bytes: 1 << 30,
        rss_before_bytes: 2,
        rss_after_bytes: 1,
        nodes_released: 10,
        stopped_running: false,
        duration_ms: 15,
    });
    assert_eq!(v["released_bytes"], 1u64 << 30);
    assert_eq!(v["duration_ms"], 15);

    let v = health(&[
        (String::new(), ServingStatus::Serving as i32),
        ("x".into(), ServingStatus::NotServing as i32),
    ]);
    assert_eq!(v["serving"], false);
    assert_eq!(v["checks"][0]["service"], "");
    assert_eq!(v["checks"][0]["status"], "SERVING");
    assert_eq!(v["checks"][1]["status"], "NOT_SERVING");
}

fn oom_record() -> RunRecord {
    RunRecord {
        number: 12,
        run_id: "run-12-3fa2b1".into(),
        parameters: Some(RunParameters {
            memory_mb: Some(4096),
            allow_oom: true,
            ..RunParameters::default()
        }),
        target_bytes: 4 << 30,
        basis: None,
        started_at_unix_ms: 1_795_759_501_123,
        ended_at_unix_ms: Some(1_795_759_538_323),
        outcome: Outcome::OomKilled as i32,
        evidence: Evidence::OomCounter as i32,
        outcome_message: "OOM-killed at 2041.6 MiB working set".into(),
        peak_rss_bytes: 2_140_000_000,
        peak_working_set_bytes: Some(2_141_000_000),
        time_to_target_ms: None,
        fill_rate_mb_per_second: 55.5,
        searches: 0,
        oom_kills_at_start: Some(0),
        oom_kills_at_end: Some(1),
        last_error: String::new(),
        last_checkpoint: Some(Checkpoint {
            taken_at_unix_ms: 1_795_759_538_323,
            state: State::Building as i32,
            rss_bytes: 2_139_000_000,
            working_set_bytes: None,
            nodes: 20_000,
            cgroup_path: "/kubepods/pod1/c1".into(),
            cgroup_version: "v2".into(),
            oom_kills: Some(0),
        }),
        recovered: true,
    }
}

#[test]
fn run_record_mapping() {
    let v = run_record(Some(&oom_record()));
    assert_eq!(v.as_object().unwrap().len(), 20);
    assert_eq!(v["number"], 12);
    assert_eq!(v["run_id"], "run-12-3fa2b1");
    assert_eq!(v["outcome"], "OUTCOME_OOM_KILLED");
    assert_eq!(v["evidence"], "EVIDENCE_OOM_COUNTER");
    assert_eq!(v["outcome_message"], "OOM-killed at 2041.6 MiB working set");
    assert_eq!(v["target_bytes"], 4u64 << 30);
    assert_eq!(v["basis"], Value::Null);
    assert_eq!(v["parameters"]["allow_oom"], true);
    assert_eq!(v["started_at_unix_ms"], 1_795_759_501_123i64);
    assert_eq!(v["ended_at_unix_ms"], 1_795_759_538_323i64);
    assert_eq!(v["peak_rss_bytes"], 2_140_000_000u64);
    assert_eq!(v["peak_working_set_bytes"], 2_141_000_000u64);
    assert_eq!(v["time_to_target_ms"], Value::Null);
    assert_eq!(v["fill_rate_mb_per_second"], 55.5);
    assert_eq!(v["oom_kills_at_start"], 0);
    assert_eq!(v["oom_kills_at_end"], 1);
    assert_eq!(v["last_error"], "");
    assert_eq!(v["recovered"], true);
    let c = &v["last_checkpoint"];
    assert_eq!(c.as_object().unwrap().len(), 8);
    assert_eq!(c["state"], "STATE_BUILDING");
    assert_eq!(c["working_set_bytes"], Value::Null);
    assert_eq!(c["oom_kills"], 0);
    assert_eq!(c["cgroup_version"], "v2");

    let v = run_record(Some(&RunRecord {
        outcome: 99,
        evidence: 42,
        ..RunRecord::default()
    }));
    assert_eq!(v["outcome"], "UNKNOWN(99)");
    assert_eq!(v["evidence"], "UNKNOWN(42)");
    assert_eq!(v["ended_at_unix_ms"], Value::Null);
    assert_eq!(v["last_checkpoint"], Value::Null);
    assert_eq!(v["parameters"], Value::Null);
    assert_eq!(run_record(None), Value::Null);
}

#[test]
fn run_list_mapping() {
    let v = run_list(&[oom_record(), RunRecord::default()], "11");
    assert_eq!(v.as_object().unwrap().len(), 2);
    assert_eq!(v["next_cursor"], "11");
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    assert_eq!(v["runs"][0]["outcome"], "OUTCOME_OOM_KILLED");
    assert_eq!(v["runs"][1]["outcome"], "OUTCOME_UNSPECIFIED");
    let empty = run_list(&[], "");
    assert_eq!(empty, json!({ "runs": [], "next_cursor": "" }));
    assert!(!serde_json::to_string(&v).unwrap().contains('\n'));
}

#[test]
fn status_with_history() {
    let mut s = sample_status();
    s.previous_run = Some(oom_record());
    s.history = Some(HistoryStatus {
        mode: HistoryMode::Memory as i32,
        path: String::new(),
        reason: "no --state-dir".into(),
        runs_kept: 3,
        limit: 1000,
    });
    let v = status(&s);
    assert_eq!(v["previous_run"], run_record(Some(&oom_record())));
    assert_eq!(
        v["history"],
        json!({
            "mode": "HISTORY_MODE_MEMORY",
            "path": "",
            "reason": "no --state-dir",
            "runs_kept": 3,
            "limit": 1000,
        })
    );
}
