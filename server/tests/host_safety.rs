//! Host safety against the real stressd: without any memory limit, `allow_oom` needs
//! `--allow-host-oom`, and a target above 90 % of the host's MemAvailable is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use memstress_proto::v1 as pb;
use std::time::Duration;
use tonic::Code;

/// The basis source stressd reports, or a skip when a limit applies to this test's cgroup.
async fn unlimited_or_skip(d: &Stressd, test: &str) -> bool {
    let mut c = d.client().await;
    let basis = status(&mut c).await.basis.unwrap();
    if basis.source == pb::BasisSource::HostTotal as i32 {
        return true;
    }
    skip(
        test,
        &format!(
            "stressd has a memory limit here ({:?}, {}), so the host-safety rules do not apply",
            pb::BasisSource::try_from(basis.source),
            basis.detail
        ),
        "cargo test -p memstress-server --test host_safety (outside any memory-limited cgroup)",
    );
    false
}

fn mem_available_mb() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024
}

fn with_oom(mb: u64) -> pb::StartRequest {
    pb::StartRequest {
        allow_oom: true,
        ..start_mb(mb)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_oom_without_a_limit_needs_allow_host_oom() {
    let test = "allow_oom_without_a_limit_needs_allow_host_oom";
    let d = Stressd::spawn_with(|cmd| {
        cmd.env_remove("STRESSD_ALLOW_HOST_OOM");
    });
    if !unlimited_or_skip(&d, test).await {
        return;
    }
    let mut c = d.client().await;
    let err = c.start(with_oom(64)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let msg = err.message();
    assert!(msg.starts_with("allow_oom = true is invalid"), "{msg}");
    assert!(msg.contains("global OOM killer"), "{msg}");
    assert!(msg.contains("--allow-host-oom"), "{msg}");
    assert_eq!(
        state(&status(&mut c).await),
        pb::State::Idle,
        "never started"
    );

    // Past 90 % of MemAvailable without allow_oom: refused, never started.
    let over = mem_available_mb() * 95 / 100;
    let err = c.start(start_mb(over)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().starts_with("memory_mb = "),
        "{}",
        err.message()
    );
    assert!(err.message().contains("MemAvailable"), "{}", err.message());
    assert_eq!(
        state(&status(&mut c).await),
        pb::State::Idle,
        "never started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_host_oom_lets_allow_oom_through() {
    let test = "allow_host_oom_lets_allow_oom_through";
    for how in ["flag", "env"] {
        let d = Stressd::spawn_with(|cmd| {
            if how == "flag" {
                cmd.arg("--allow-host-oom");
            } else {
                cmd.env("STRESSD_ALLOW_HOST_OOM", "true");
            }
        });
        if !unlimited_or_skip(&d, test).await {
            return;
        }
        let mut c = d.client().await;
        // Far below available memory: accepted, then stopped and cleared at once.
        let r = c.start(with_oom(64)).await.unwrap().into_inner();
        assert_eq!(r.target_bytes, 64 * MIB, "{how}");
        c.stop(pb::StopRequest {}).await.unwrap();
        wait_for(&mut c, Duration::from_secs(10), "run ended", |s| {
            !matches!(state(s), pb::State::Building | pb::State::Searching)
        })
        .await;
        c.clear(pb::ClearRequest {}).await.unwrap();
    }
}
