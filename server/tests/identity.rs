//! Who answered and what it printed: Status names the process (downward API, host name, a
//! fresh instance id per start), and `--log-format json` makes every stdout line a JSON object
//! a log pipeline can parse.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use memstress_proto::v1 as pb;
use std::process::Command;
use std::time::Duration;

/// A stressd with `args` and the downward-API variables `env` (none of the caller's own).
fn spawn(args: &[&str], env: &[(&str, &str)]) -> Stressd {
    Stressd::spawn_with(|cmd| {
        cmd.args(args)
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .env_remove("NODE_NAME");
        for (k, v) in env {
            cmd.env(k, v);
        }
    })
}

async fn instance_of(d: &Stressd) -> pb::Instance {
    let mut c = d.client().await;
    status(&mut c)
        .await
        .instance
        .expect("Status has an instance section")
}

#[tokio::test]
async fn status_names_the_pod_and_a_restart_gets_a_new_instance_id() {
    let env = [
        ("POD_NAME", "memory-stress-7d9f-abcde"),
        ("POD_NAMESPACE", "memstress"),
        ("NODE_NAME", "worker-3"),
    ];
    let first = spawn(&[], &env);
    let a = instance_of(&first).await;
    assert_eq!(a.pod_name, "memory-stress-7d9f-abcde");
    assert_eq!(a.pod_namespace, "memstress");
    assert_eq!(a.node_name, "worker-3");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(a.hostname, host.trim());
    assert_eq!(a.instance_id.len(), 16);
    assert!(a.started_at_unix_ms > 0);
    assert_eq!(a.version, env!("CARGO_PKG_VERSION"));
    // The same process keeps its id; a new process (a restart) gets another.
    assert_eq!(instance_of(&first).await.instance_id, a.instance_id);
    drop(first);
    let second = spawn(&[], &env);
    let b = instance_of(&second).await;
    assert_ne!(b.instance_id, a.instance_id);
    assert_eq!(b.pod_name, a.pod_name);

    // Outside Kubernetes the downward-API fields are empty, never made up.
    let bare = spawn(&[], &[]);
    let c = instance_of(&bare).await;
    assert_eq!((c.pod_name.as_str(), c.node_name.as_str()), ("", ""));
}

#[tokio::test]
async fn json_log_format_makes_every_stdout_line_a_json_object() {
    let p = spawn(&["--log-format", "json"], &[]);
    let mut c = p.client().await;
    let mut req = start_mb(16);
    req.duration_seconds = Some(5);
    c.start(req).await.unwrap();
    wait_for(&mut c, Duration::from_secs(20), "the hold", |s| {
        state(s) == pb::State::Searching
    })
    .await;
    c.stop(pb::StopRequest {}).await.unwrap();
    p.wait_line("STRESS_TEST_STOPPED");
    // SIGTERM: the shutdown lines are JSON too.
    p.signal(libc::SIGTERM);
    p.wait_line("stressd: stopped");
    let lines = p.lines.lock().unwrap().clone();
    let mut ops = Vec::new();
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        for key in ["ts", "ts_unix_ms", "level", "operation", "message"] {
            assert!(v.get(key).is_some(), "{key} missing in {line}");
        }
        assert!(v["ts"].as_str().unwrap().ends_with('Z'), "{line}");
        ops.push(v["operation"].as_str().unwrap().to_string());
        if v["operation"] == "BUILD_TREE_COMPLETE" {
            // The build stops within a page of the 16 MiB target; rss_mib has one decimal.
            assert!(v["rss_mib"].as_f64().unwrap() >= 15.9, "{line}");
            assert!(!v["run_id"].as_str().unwrap().is_empty(), "{line}");
            assert!(v["sequence"].as_u64().unwrap() > 0, "{line}");
        }
    }
    for want in [
        "SERVER",
        "STRESS_TEST_START",
        "BUILD_TREE_COMPLETE",
        "STRESS_TEST_STOPPED",
    ] {
        assert!(ops.iter().any(|o| o == want), "no {want} line in {ops:?}");
    }
    assert_eq!(
        ops.first().map(String::as_str),
        Some("SERVER"),
        "listening line first"
    );
}

#[test]
fn a_bad_log_format_is_refused_at_startup() {
    let out = Command::new(bin("stressd"))
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args(["--log-format", "yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("yaml") && err.contains("text, json"), "{err}");
}
