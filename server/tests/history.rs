//! Run history across process deaths and storage faults, with the real binaries: stressd is
//! SIGKILLed mid-build and started again on the same state dir; bad, shared and full state
//! dirs degrade the way the README promises.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use memstress_proto::v1 as pb;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn spawn_on(dir: &Path) -> Stressd {
    Stressd::spawn_with(|cmd| {
        cmd.arg("--state-dir").arg(dir);
    })
}

fn history_json(addr: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--output", "json", "history"];
    all.extend_from_slice(args);
    let (code, out, err) = stressctl(addr, &all);
    assert_eq!(code, 0, "stressctl history failed: {out} {err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("history JSON: {e}: {out}"))
}

fn notices(lines: &str) -> Vec<&str> {
    lines.lines().filter(|l| l.contains(" NOTICE ")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_build_is_recorded_as_killed_with_the_last_checkpoint() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("nested/state");
    let first = spawn_on(&dir);
    assert!(dir.join("history.db").exists(), "state dir created");
    let mut c = first.client().await;
    let s = status(&mut c).await;
    let h = s.history.unwrap();
    assert_eq!(h.mode, pb::HistoryMode::Durable as i32, "{h:?}");
    assert!(h.path.ends_with("history.db"), "{h:?}");

    // One finished run, then one killed while it builds at 200 MiB/s.
    c.start(pb::StartRequest {
        duration_seconds: Some(5),
        ..start_mb(32)
    })
    .await
    .unwrap();
    c.stop(pb::StopRequest {}).await.unwrap();
    let run = c
        .start(pb::StartRequest {
            ramp_mb_per_second: 200.0,
            ..start_mb(4096)
        })
        .await
        .unwrap()
        .into_inner();
    wait_for(&mut c, Duration::from_secs(20), "300 MiB built", |s| {
        s.rss_bytes > 300 * MIB
    })
    .await;
    // Past a once-a-second checkpoint, so the last one is recent whatever the 1 % step.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let rss_at_kill = first.rss();
    first.signal(libc::SIGKILL);
    drop(first);

    let second = spawn_on(&dir);
    let line = second.wait_line("previous run");
    let text = second.stdout_text();
    let after_listening: Vec<&str> = text.lines().skip(1).collect();
    assert!(
        after_listening
            .first()
            .is_some_and(|l| l.contains(&format!("previous run {} was killed", run.run_id))),
        "first line after startup names the killed run:\n{text}"
    );
    println!("{line}");

    let runs = history_json(&second.grpc, &[]);
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let killed = &runs[0];
    assert_eq!(killed["run_id"], run.run_id.as_str());
    assert_eq!(killed["outcome"], "OUTCOME_KILLED", "{killed}");
    assert_eq!(killed["recovered"], true);
    assert_eq!(runs[1]["outcome"], "OUTCOME_STOPPED");
    let cp = &killed["last_checkpoint"];
    assert_eq!(cp["state"], "STATE_BUILDING", "{killed}");
    let cp_rss = cp["rss_bytes"].as_u64().unwrap();
    assert!(
        cp_rss > 250 * MIB && cp_rss <= rss_at_kill + 64 * MIB,
        "checkpoint RSS {cp_rss} vs {rss_at_kill} at the kill"
    );
    assert!(killed["peak_rss_bytes"].as_u64().unwrap() >= cp_rss);

    // The same record through GetRun (by number), and Status' previous_run.
    let one = history_json(&second.grpc, &[&killed["number"].to_string()]);
    assert_eq!(one["run_id"], run.run_id.as_str());
    let mut c = second.client().await;
    let prev = status(&mut c).await.previous_run.unwrap();
    assert_eq!(prev.run_id, run.run_id);
    assert_eq!(prev.outcome, pb::Outcome::Killed as i32);

    // Numbers keep counting across the restart.
    let next = c.start(start_mb(16)).await.unwrap().into_inner();
    assert!(
        next.run_id.starts_with("run-3-"),
        "third run of the store: {}",
        next.run_id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_state_dir_history_is_memory_only_and_says_so() {
    let d = Stressd::spawn();
    let mut c = d.client().await;
    let h = status(&mut c).await.history.unwrap();
    assert_eq!(h.mode, pb::HistoryMode::Memory as i32);
    assert!(h.reason.contains("--state-dir"), "{h:?}");
    d.wait_line("will not survive a restart");
    c.start(start_mb(16)).await.unwrap();
    c.stop(pb::StopRequest {}).await.unwrap();
    let runs = c
        .list_runs(pb::ListRunsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(runs.runs.len(), 1);
    let err = c
        .get_run(pb::GetRunRequest {
            run_id: "run-99-abcdef".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(err.message().contains("run-99-abcdef"), "{}", err.message());
    let err = c
        .list_runs(pb::ListRunsRequest {
            limit: Some(5000),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("limit"), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_state_dir_degrades_to_memory_and_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let d = spawn_on(&file.join("state"));
    let mut c = d.client().await;
    let h = status(&mut c).await.history.unwrap();
    assert_eq!(h.mode, pb::HistoryMode::Memory as i32);
    assert!(h.reason.contains("a-file"), "reason names the dir: {h:?}");
    // The stdout printer is a thread of its own: the NOTICE may land just after Status answers.
    let t0 = Instant::now();
    loop {
        let text = d.stdout_text();
        if notices(&text).iter().any(|l| l.contains("memory")) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "a NOTICE says history is memory-only:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.start(start_mb(16)).await.unwrap();
    c.stop(pb::StopRequest {}).await.unwrap();
    let runs = c
        .list_runs(pb::ListRunsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(runs.runs.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_database_is_renamed_aside_and_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("history.db");
    std::fs::write(&db, vec![0x5a_u8; 8192]).unwrap();
    let d = spawn_on(tmp.path());
    let mut c = d.client().await;
    let h = status(&mut c).await.history.unwrap();
    assert_eq!(h.mode, pb::HistoryMode::Durable as i32, "{h:?}");
    let aside: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("history.db.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read(tmp.path().join(&aside[0])).unwrap(),
        vec![0x5a_u8; 8192],
        "the corrupt file is kept as it was"
    );
    let line = d.wait_line("corrupt");
    assert!(line.contains(&aside[0]), "{line}");
    c.start(start_mb(16)).await.unwrap();
    c.stop(pb::StopRequest {}).await.unwrap();
    assert_eq!(
        c.list_runs(pb::ListRunsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .runs
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_stressd_on_the_same_state_dir_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let first = spawn_on(tmp.path());
    let mut c = first.client().await;
    c.start(start_mb(16)).await.unwrap();
    c.stop(pb::StopRequest {}).await.unwrap();

    let out = Command::new(bin("stressd"))
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(tmp.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(
        err.contains(&tmp.path().display().to_string()) && err.contains(&first.pid().to_string()),
        "the refusal names the dir and the holder: {err}"
    );
    // The first one still serves, and its record is intact.
    let runs = c
        .list_runs(pb::ListRunsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(runs.runs.len(), 1);
    assert_eq!(runs.runs[0].outcome, pb::Outcome::Stopped as i32);
}

/// A state dir on a 1 MiB tmpfs that fills up while stressd runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_keeps_serving_with_history_in_memory() {
    if !is_root() {
        return skip(
            "history::a_full_disk_keeps_serving_with_history_in_memory",
            "mounting a small tmpfs needs root",
            "sudo cargo test -p memstress-server --test history a_full_disk",
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("tiny");
    std::fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "memstress-it"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(ok.success(), "mount tmpfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mnt);

    let d = spawn_on(&mnt);
    let mut c = d.client().await;
    c.start(start_mb(16)).await.unwrap();
    c.stop(pb::StopRequest {}).await.unwrap();
    // Fill the rest of the file system.
    let filler = std::fs::File::create(mnt.join("filler")).unwrap();
    let mut w = std::io::BufWriter::new(filler);
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut w, &chunk).is_ok() {}
    drop(w);

    let t0 = Instant::now();
    let h = loop {
        c.start(pb::StartRequest {
            duration_seconds: Some(5),
            ..start_mb(16)
        })
        .await
        .expect("Start keeps working on a full disk");
        c.stop(pb::StopRequest {}).await.unwrap();
        let h = status(&mut c).await.history.unwrap();
        if h.mode == pb::HistoryMode::Memory as i32 {
            break h;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "history never noticed the full disk: {h:?}"
        );
    };
    assert!(h.reason.contains("full"), "{h:?}");
    d.wait_line("memory-only");
    let runs = c
        .list_runs(pb::ListRunsRequest {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        runs.runs.len() >= 2,
        "earlier runs kept: {}",
        runs.runs.len()
    );
    assert!(
        runs.runs
            .iter()
            .all(|r| r.outcome == pb::Outcome::Stopped as i32)
    );
}
