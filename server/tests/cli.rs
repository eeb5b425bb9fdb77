//! The real `stressctl` binary against the real `stressd`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;

#[test]
fn stressctl_drives_a_whole_run() {
    let d = Stressd::spawn();
    let addr = d.url();

    let (code, out, err) = stressctl(&addr, &["health"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("SERVING"), "{out}");

    let (code, out, err) = stressctl(
        &addr,
        &[
            "start",
            "--memory-mb",
            "64",
            "--duration",
            "5",
            "--log-interval",
            "1",
            "--follow",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    // Text lines carry the operations' short labels (START, REACHED, HOLDING, COMPLETE).
    for op in [" START ", " REACHED ", " HOLDING ", " COMPLETE "] {
        assert!(out.contains(op), "{op} in\n{out}");
    }
    assert!(out.contains("MiB"), "sizes humanised:\n{out}");

    let (code, out, _) = stressctl(&addr, &["status", "--output", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["state"], "STATE_COMPLETED", "{v}");
    assert!(v["nodes"].as_u64().unwrap() > 100);
    assert_eq!(v["target_bytes"].as_u64().unwrap(), 64 * MIB);

    let (code, out, _) = stressctl(&addr, &["status"]);
    assert_eq!(code, 0);
    assert!(out.to_lowercase().contains("completed"), "{out}");

    let (code, out, _) = stressctl(&addr, &["logs", "--output", "json"]);
    assert_eq!(code, 0);
    let entries: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(entries.len() >= 8);
    // The startup NOTICE (history is memory-only without --state-dir), then the run.
    assert_eq!(entries[0]["operation"], "NOTICE");
    assert_eq!(entries[1]["operation"], "STRESS_TEST_START");

    let (code, out, _) = stressctl(&addr, &["clear", "--output", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["released_bytes"].as_u64().unwrap() > 32 * MIB, "{v}");

    let (code, out, _) = stressctl(&addr, &["stop"]);
    assert_eq!(code, 0);
    assert!(out.contains("no run in progress"), "{out}");
}

#[test]
fn stressctl_reports_refusals_and_unreachable_servers() {
    let d = Stressd::spawn();
    let addr = d.url();
    let (code, _, err) = stressctl(&addr, &["start", "--memory-mb", "5"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("memory_mb = 5") && err.contains("allowed: 10..="),
        "{err}"
    );

    let (code, _, err) = stressctl(&addr, &["start", "--memory-percent", "99"]);
    assert_eq!(code, 1);
    assert!(err.contains("memory_percent = 99"), "{err}");

    let (code, _, _) = stressctl(&addr, &["start", "--memory-mb", "32", "--duration", "0"]);
    assert_eq!(code, 0);
    let (code, _, err) = stressctl(&addr, &["start", "--memory-mb", "32"]);
    assert_eq!(code, 1);
    assert!(err.contains("stop it first"), "{err}");
    let (code, out, _) = stressctl(&addr, &["stop"]);
    assert_eq!(code, 0);
    assert!(out.contains("stopped"), "{out}");

    // a port nothing listens on: one clear line, non-zero
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let (code, out, err) = stressctl(&dead_addr, &["status"]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("cannot reach stressd"), "{err}");
}
