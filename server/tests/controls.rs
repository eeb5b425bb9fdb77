//! The hold and growth controls end to end: ramp, search rate, keep_hot, huge pages.
//! (How well they perform is the benchmark's job; these check that they act.)
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use memstress_proto::v1 as pb;
use std::time::Duration;

/// A ramp really throttles: growing 100 MiB at 50 MiB/s cannot take less than ~2 s.
/// (Only a lower bound: a slow machine can make it longer, never shorter.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramp_grows_no_faster_than_asked() {
    let d = Stressd::spawn();
    let mut c = d.client().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle_mb = d.rss() / MIB;
    c.start(pb::StartRequest {
        ramp_mb_per_second: 50.0,
        duration_seconds: Some(0),
        ..start_mb(idle_mb + 100)
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mid = status(&mut c).await;
    assert_eq!(state(&mid), pb::State::Building);
    assert!(
        mid.current_fill_rate_mb_per_second > 0.0 && mid.current_fill_rate_mb_per_second < 80.0,
        "current rate {}",
        mid.current_fill_rate_mb_per_second
    );
    let s = wait_state(&mut c, pb::State::Searching, Duration::from_secs(30)).await;
    let took = s.time_to_target_ms.unwrap();
    assert!(took >= 1400, "100 MiB at 50 MiB/s took only {took} ms");
    assert!(
        s.fill_rate_mb_per_second <= 60.0,
        "average {}",
        s.fill_rate_mb_per_second
    );
    c.clear(pb::ClearRequest {}).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unthrottled_keep_hot_huge_pages_hold_completes() {
    let d = Stressd::spawn();
    let mut c = d.client().await;
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let thp_on = thp.contains("[always]") || thp.contains("[madvise]");
    c.start(pb::StartRequest {
        duration_seconds: Some(5),
        log_interval_seconds: Some(1),
        search_rate: Some(0),
        keep_hot: true,
        huge_pages: true,
        ..start_mb(128)
    })
    .await
    .unwrap();
    let s = wait_for(&mut c, Duration::from_secs(20), "progress", |s| {
        state(s) == pb::State::Searching && s.searches_per_second > 0.0
    })
    .await;
    // unthrottled: far beyond the default 1000/s (10x, which a starved nice-19 worker still makes)
    assert!(
        s.searches_per_second > 10_000.0,
        "{}",
        s.searches_per_second
    );
    if thp_on {
        assert!(
            s.huge_page_bytes >= 32 * MIB,
            "THP-backed bytes {}",
            s.huge_page_bytes
        );
    }
    wait_state(&mut c, pb::State::Completed, Duration::from_secs(20)).await;
    let mut text = String::new();
    for e in kept_logs(&mut c).await {
        text.push_str(&e.message);
        text.push('\n');
    }
    assert!(text.contains(", keep hot"), "{text}");
    if !thp_on {
        assert!(
            text.contains("using 4 KiB pages"),
            "fallback logged: {text}"
        );
    }
    let rss = d.rss();
    c.clear(pb::ClearRequest {}).await.unwrap();
    assert!(d.rss() < rss / 4);
}
