//! End-to-end lifecycle through the gRPC API against the real stressd binary.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use memstress_proto::v1 as pb;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_lands_on_target_and_clear_gives_memory_back() {
    let d = Stressd::spawn();
    let mut c = d.client().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = d.rss();
    assert!(idle > 0);

    let resp = c
        .start(pb::StartRequest {
            duration_seconds: Some(5),
            log_interval_seconds: Some(1),
            ..start_mb(128)
        })
        .await
        .expect("start")
        .into_inner();
    assert_eq!(resp.target_bytes, 128 * MIB);
    assert!(resp.run_id.starts_with("run-"));
    let p = resp.parameters.unwrap();
    assert_eq!(
        (
            p.duration_seconds,
            p.log_interval_seconds,
            p.payload_size_kb
        ),
        (5, 1, 100)
    );
    assert!(resp.basis.unwrap().limit_bytes > 128 * MIB);

    let s = wait_state(&mut c, pb::State::Searching, Duration::from_secs(20)).await;
    let rss = d.rss();
    let target = 128 * MIB;
    let err = (rss as f64 - target as f64).abs() / target as f64;
    assert!(
        err < 0.05,
        "RSS {rss} vs target {target}: {:.2}% off",
        err * 100.0
    );
    assert!(
        s.nodes > 1000,
        "~1300 nodes of 100 KiB expected, got {}",
        s.nodes
    );
    assert!(s.payload_bytes > 100 * MIB);
    assert!(s.time_to_target_ms.is_some());
    assert!(s.fill_rate_mb_per_second > 0.0);
    assert_eq!(s.run_id, resp.run_id);

    let s = wait_state(&mut c, pb::State::Completed, Duration::from_secs(20)).await;
    assert!(s.searches > 0, "the hold searched");
    assert!(s.peak_rss_bytes >= target - 4 * MIB);
    // the tree stays in memory after completion
    assert!(d.rss() > target * 9 / 10, "tree held after COMPLETED");

    // the whole story is in the log, in order
    let mut ops = Vec::new();
    // (After the startup NOTICE that history is memory-only, which belongs to no run.)
    let logs = kept_logs(&mut c).await;
    assert_eq!(
        logs[0].operation,
        pb::Operation::Notice as i32,
        "{:?}",
        logs[0]
    );
    assert!(logs[0].message.contains("will not survive a restart"));
    for e in logs.into_iter().skip(1) {
        assert_eq!(e.run_id, resp.run_id);
        ops.push(pb::Operation::try_from(e.operation).unwrap());
    }
    let want = [
        pb::Operation::StressTestStart,
        pb::Operation::BuildTreeStart,
        pb::Operation::BuildTreeComplete,
        pb::Operation::SearchTreeStart,
        pb::Operation::SearchTreeProgress,
        pb::Operation::SearchTreeComplete,
        pb::Operation::StressTestComplete,
    ];
    let mut it = ops.iter();
    for w in want {
        assert!(it.any(|o| *o == w), "missing {w:?} in order; got {ops:?}");
    }

    let cleared = c.clear(pb::ClearRequest {}).await.unwrap().into_inner();
    assert!(cleared.released_bytes > 100 * MIB);
    assert!(cleared.rss_after_bytes < cleared.rss_before_bytes);
    let after = wait_rss(d.pid(), Duration::from_secs(2), |r| r <= idle + 16 * MIB);
    assert!(
        after <= idle + 16 * MIB,
        "RSS after clear {after} vs idle {idle}"
    );
    let s = status(&mut c).await;
    assert_eq!(state(&s), pb::State::Idle);
    assert_eq!(s.nodes, 0);
    // stdout carries one line per entry for kubectl logs (printed by its own thread, so
    // waited for rather than expected the instant Clear returns)
    d.wait_line("MEMORY_CLEARED");
}

/// The rule at full size: after clearing a 1 GiB run, RSS is back within 16 MiB of the
/// idle RSS within 2 seconds — because slabs are unmapped and the heap trimmed, not because the
/// allocator happened to give memory back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_a_gib_returns_to_idle() {
    let d = Stressd::spawn();
    let mut c = d.client().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = d.rss();
    // 4 KiB payloads: ~260k nodes, the case where malloc'd nodes would linger without a trim
    for payload_kb in [100, 4] {
        c.start(pb::StartRequest {
            duration_seconds: Some(0),
            payload_size_kb: Some(payload_kb),
            ..start_mb(1024)
        })
        .await
        .unwrap();
        wait_state(&mut c, pb::State::Searching, Duration::from_secs(60)).await;
        assert!(d.rss() > 1000 * MIB);
        let cleared = c.clear(pb::ClearRequest {}).await.unwrap().into_inner();
        assert!(cleared.stopped_running);
        let after = wait_rss(d.pid(), Duration::from_secs(2), |r| r <= idle + 16 * MIB);
        assert!(
            after <= idle + 16 * MIB,
            "payload {payload_kb} KiB: RSS after clear {after} vs idle {idle}"
        );
    }
}
