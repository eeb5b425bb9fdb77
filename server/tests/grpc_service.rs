//! The gRPC service in process: `StressApi`'s handlers called directly (no socket), to check
//! the proto ↔ domain mapping of workloads, phases, repeat, Status and the history record.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use memstress_proto::v1 as pb;
use memstress_proto::v1::stress_service_server::StressService;
use memstress_server::cgroup::CgroupProbe;
use memstress_server::engine::{Engine, EngineConfig};
use memstress_server::grpc::StressApi;
use memstress_server::history::{CurrentCgroup, History, HistoryConfig};
use memstress_server::logs::LogHub;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, MutexGuard};
use tonic::{Code, Request};

const MIB: u64 = 1 << 20;
const PATIENCE: Duration = Duration::from_secs(60);

/// One service at a time: RSS is the process's. (tokio's Mutex: the turn is held across
/// awaits, and a failed test does not poison it.)
static TURN: Mutex<()> = Mutex::const_new(());

async fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().await
}

fn api() -> (StressApi, Arc<Engine>, tokio::sync::watch::Sender<bool>) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cgroup/v2");
    let config = EngineConfig {
        fs_root: PathBuf::from("/"),
        cgroup: CgroupProbe::discover(&fixture, None),
        host_total_bytes: 16 << 30,
        allow_host_oom: false,
        instance: Arc::new(memstress_server::instance::Instance::detect(
            &fixture,
            |k| (k == "POD_NAME").then(|| "stress-0".to_string()),
        )),
    };
    let logs = Arc::new(LogHub::new(10_000, 1024));
    let opened = History::open(&HistoryConfig::default(), &CurrentCgroup::default()).unwrap();
    let engine = Arc::new(Engine::new(config, logs, Arc::new(opened.history)).unwrap());
    let (tx, rx) = tokio::sync::watch::channel(false);
    (StressApi::new(Arc::clone(&engine), rx), engine, tx)
}

async fn status(api: &StressApi) -> pb::StatusResponse {
    api.status(Request::new(pb::StatusRequest {}))
        .await
        .unwrap()
        .into_inner()
}

async fn wait_state(api: &StressApi, state: pb::State) -> pb::StatusResponse {
    let t0 = Instant::now();
    loop {
        let s = status(api).await;
        if s.state == state as i32 {
            return s;
        }
        assert!(t0.elapsed() < PATIENCE, "never {state:?}: {s:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn phase(mb: u64, hold_seconds: u32) -> pb::Phase {
    pb::Phase {
        target: Some(pb::phase::Target::MemoryMb(mb)),
        hold_seconds,
        ramp_mb_per_second: None,
    }
}

fn rss_mb(engine: &Engine) -> u64 {
    engine.rss_bytes().div_ceil(MIB)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_status_maps_the_domain_snapshot() {
    let _turn = turn().await;
    let (api, _engine, _tx) = api();
    let s = status(&api).await;
    assert_eq!(s.state, pb::State::Idle as i32);
    assert_eq!(s.workload, pb::Workload::Tree as i32);
    assert_eq!(s.activity_unit, "searches");
    assert!(s.peak_rss_bytes >= s.rss_bytes, "{s:?}");
    assert!(s.phase.is_none());
    let instance = s.instance.unwrap();
    assert_eq!(instance.pod_name, "stress-0");
    assert!(!instance.instance_id.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_workload_and_bad_phases_are_invalid_arguments() {
    let _turn = turn().await;
    let (api, _engine, _tx) = api();
    let refused = |req: pb::StartRequest| {
        let api = api.clone();
        async move { api.start(Request::new(req)).await.unwrap_err() }
    };
    let err = refused(pb::StartRequest {
        target: Some(pb::start_request::Target::MemoryMb(64)),
        workload: 99,
        ..Default::default()
    })
    .await;
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("workload = 99 is invalid"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("WORKLOAD_MATRIX"),
        "{}",
        err.message()
    );

    let err = refused(pb::StartRequest {
        phases: vec![phase(64, 0), phase(64, 0), phase(4096, 0)],
        ..Default::default()
    })
    .await;
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .starts_with("phases[2].memory_mb = 4096 is invalid"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("allowed: 10..=511"),
        "{}",
        err.message()
    );

    let err = refused(pb::StartRequest {
        phases: vec![phase(64, 0)],
        target: Some(pb::start_request::Target::MemoryPercent(10.0)),
        ..Default::default()
    })
    .await;
    assert!(
        err.message().starts_with("memory_percent = 10 is invalid"),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_run_is_echoed_shown_and_recorded() {
    let _turn = turn().await;
    let (api, engine, _tx) = api();
    let (high, low) = (rss_mb(&engine) + 40, rss_mb(&engine) + 20);
    let started = api
        .start(Request::new(pb::StartRequest {
            phases: vec![phase(high, 0), phase(low, 1)],
            repeat: Some(1),
            workload: pb::Workload::Hash as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.phase_target_bytes, vec![high * MIB, low * MIB]);
    assert_eq!(started.target_bytes, high * MIB);
    let params = started.parameters.unwrap();
    assert_eq!(params.memory_mb, None, "a profile has no single target");
    assert_eq!(params.phases.len(), 2);
    assert_eq!(params.repeat, 1);
    assert_eq!(params.workload, pb::Workload::Hash as i32);

    let holding = wait_state(&api, pb::State::Searching).await;
    assert_eq!(holding.workload, pb::Workload::Hash as i32);
    assert_eq!(holding.activity_unit, "lookups");
    let p = holding.phase.unwrap();
    assert_eq!((p.index, p.count, p.repetition, p.repeat), (2, 2, 1, 1));
    assert_eq!(p.target_bytes, low * MIB);

    wait_state(&api, pb::State::Completed).await;
    let runs = api
        .list_runs(Request::new(pb::ListRunsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .runs;
    let record = runs.first().unwrap();
    assert_eq!(record.run_id, started.run_id);
    let kept = record.parameters.as_ref().unwrap();
    assert_eq!(kept.workload, pb::Workload::Hash as i32);
    assert_eq!(kept.phases, params.phases);
    assert_eq!(kept.repeat, 1);
    assert_eq!(record.target_bytes, high * MIB);
    api.clear(Request::new(pb::ClearRequest {})).await.unwrap();
}
