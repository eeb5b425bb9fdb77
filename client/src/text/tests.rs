//! Tests of the text layout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use memstress_proto::v1::{ContainerMemory, StatusResponse};
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
  workload       tree
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
        "06:05:01 HOLDING  RSS 1024.3 MiB             1,000 searches/s\n"
    );
    e.working_set_mb = Some(1100.0);
    e.operation = Operation::BuildTreeTarget as i32;
    assert_eq!(
        log_entry(&e),
        "06:05:01 BUILDING RSS 1024.3  WS 1100.0 MiB  1,000 searches/s\n"
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
        "00:00:00 MISSED   RSS    0.0 MiB             watcher fell behind (1,500 entries missed)\n"
    );
}

/// Every operation's line lines up at the message column, and a message of any length wraps
/// at word boundaries so that no line passes 100 columns and no word is lost.
#[test]
fn log_lines_fit_100_columns() {
    let short = "reached 1024.0 MiB in 2.5 s (409.6 MiB/s); 10486 nodes";
    let long = "target 256 MiB of process RSS, hold 5 s; limit 4096.0 MiB (--memory-limit); \
                tree, payload 100 KiB, full speed, 1000 searches/s (by 127.0.0.1:55690, \
                credential none) and_a_very_long_word_that_is_wider_than_any_line_could_ever_be_so_it_is_cut";
    // 0 (OPERATION_UNSPECIFIED) is never sent.
    for op in 1..=14 {
        for ws in [None, Some(9_876.5)] {
            for message in [short, long] {
                let e = LogEntry {
                    timestamp_unix_ms: 1_795_759_501_123,
                    operation: op,
                    memory_mb: 9_999.9,
                    working_set_mb: ws,
                    message: message.into(),
                    missed: 3,
                    ..LogEntry::default()
                };
                let text = log_entry(&e);
                let lines: Vec<&str> = text.lines().collect();
                assert_eq!(
                    lines[0].find(message.split(' ').next().unwrap()),
                    Some(LOG_PREFIX_WIDTH),
                    "{text}"
                );
                for l in &lines {
                    let columns = l.chars().count();
                    assert!(columns <= 100, "{columns} columns: {l}");
                    assert!(!l.contains("MB "), "MiB everywhere: {l}");
                }
                for l in &lines[1..] {
                    assert!(l.starts_with(&" ".repeat(LOG_PREFIX_WIDTH)), "{text}");
                    assert!(!l[LOG_PREFIX_WIDTH..].starts_with(' '), "{text}");
                }
                let words: String = lines
                    .iter()
                    .map(|l| l.get(LOG_PREFIX_WIDTH..).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join(" ");
                let squash = |s: &str| s.split_whitespace().collect::<String>();
                let mut want = message.to_owned();
                if op == Operation::LogEntriesMissed as i32 {
                    want.push_str(" (3 entries missed)");
                }
                assert_eq!(squash(&words), squash(&want), "{text}");
                // The short message fits on its line (MISSED appends its count and may wrap).
                if op != Operation::LogEntriesMissed as i32 {
                    assert_eq!(lines.len() > 1, message == long, "{text}");
                }
            }
        }
    }
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

#[test]
fn profiles_and_phase_progress() {
    use memstress_proto::v1::{Instance, Phase, PhaseProgress, phase::Target as T};
    let phases = vec![
        Phase {
            target: Some(T::MemoryPercent(50.0)),
            hold_seconds: 30,
            ramp_mb_per_second: None,
        },
        Phase {
            target: Some(T::MemoryMb(1024)),
            hold_seconds: 60,
            ramp_mb_per_second: Some(200.0),
        },
    ];
    assert_eq!(
        profile(&phases, 3),
        "50% for 30s, 1024 MiB for 1m 00s at 200.0 MiB/s; 3 times"
    );
    assert_eq!(profile(&phases[..1], 0), "50% for 30s; until stopped");
    assert_eq!(profile(&phases[..1], 1), "50% for 30s; once");

    let mut p = PhaseProgress {
        index: 2,
        count: 3,
        repetition: 1,
        repeat: 3,
        target_bytes: 0,
    };
    assert_eq!(phase_progress(Some(&p)), "phase 2/3, repetition 1/3");
    p.repeat = 0;
    p.repetition = 4;
    assert_eq!(
        phase_progress(Some(&p)),
        "phase 2/3, repetition 4 (until stopped)"
    );
    p.index = 0;
    assert_eq!(phase_progress(Some(&p)), "-");
    assert_eq!(phase_progress(None), "-");

    // Status of a profile run of the matrix workload.
    let s = StatusResponse {
        state: State::Searching as i32,
        run_id: "run-2-aa".into(),
        workload: Workload::Matrix as i32,
        activity_unit: "multiply-adds".into(),
        searches: 1_000_000,
        searches_per_second: 2500.4,
        phase: Some(PhaseProgress {
            index: 2,
            count: 2,
            repetition: 1,
            repeat: 3,
            target_bytes: 1 << 30,
        }),
        parameters: Some(RunParameters {
            phases: phases.clone(),
            repeat: 3,
            workload: Workload::Matrix as i32,
            ..params()
        }),
        instance: Some(Instance {
            pod_name: "web-1".into(),
            pod_namespace: "memstress".into(),
            node_name: "n1".into(),
            hostname: "web-1".into(),
            instance_id: "00ff".into(),
            ..Instance::default()
        }),
        ..StatusResponse::default()
    };
    let t = status(&s);
    assert!(
        t.contains("\nworkload         matrix (holds by multiply-adds)\n"),
        "{t}"
    );
    assert!(
        t.contains("\nphase            phase 2/2, repetition 1/3, target 1.00 GiB\n"),
        "{t}"
    );
    assert!(
        t.contains("\nmultiply-adds    1,000,000 (2,500 multiply-adds/s)\n"),
        "{t}"
    );
    assert!(
        t.contains("\n  profile        50% for 30s, 1024 MiB for 1m 00s at 200.0 MiB/s; 3 times\n"),
        "{t}"
    );
    assert!(
        !t.contains("  duration"),
        "a profile has no single duration: {t}"
    );
    assert!(
        t.contains("\ninstance         pod web-1 in memstress on node n1, host web-1, id 00ff\n"),
        "{t}"
    );
}

#[test]
fn activity_units() {
    assert_eq!(activity_of(Workload::Tree as i32), "searches");
    assert_eq!(activity_of(0), "searches");
    assert_eq!(activity_of(Workload::List as i32), "walk steps");
    assert_eq!(activity_of(Workload::Hash as i32), "lookups");
    assert_eq!(activity_of(Workload::Matrix as i32), "multiply-adds");
    assert_eq!(workload(Workload::Matrix as i32), "matrix");
    assert_eq!(workload(99), "unknown (99)");
}
