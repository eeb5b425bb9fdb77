//! The engine in process (no socket, no binary): start, stop, clear, the state machine, the
//! refusals, target profiles and every workload, against real memory and a fixture cgroup
//! (v2, 512 MiB limit). One engine at a time: RSS is the process's, so the tests take turns.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use memstress_server::auth::{Caller, Credential};
use memstress_server::cgroup::CgroupProbe;
use memstress_server::engine::{Engine, EngineConfig, State, StatusSnapshot};
use memstress_server::error::EngineError;
use memstress_server::history::{CurrentCgroup, History, HistoryConfig};
use memstress_server::logs::{LogHub, LogRecord, Operation};
use memstress_server::params::{PhaseSpec, StartSpec, Target, WorkloadKind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
/// A generous bound for liveness (never a speed assertion): a step that has not happened by
/// then is not going to.
const PATIENCE: Duration = Duration::from_secs(60);

static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cgroup/v2")
}

/// An engine measuring this process's real RSS, with the fixture's 512 MiB cgroup as basis.
fn engine() -> Engine {
    let config = EngineConfig {
        fs_root: PathBuf::from("/"),
        cgroup: CgroupProbe::discover(&fixture(), None),
        host_total_bytes: 16 << 30,
        allow_host_oom: false,
        instance: Arc::new(memstress_server::instance::Instance::detect(
            &fixture(),
            |_| None,
        )),
    };
    let logs = Arc::new(LogHub::new(10_000, 1024));
    let opened = History::open(&HistoryConfig::default(), &CurrentCgroup::default()).unwrap();
    Engine::new(config, logs, Arc::new(opened.history)).unwrap()
}

fn caller() -> Caller {
    Caller {
        peer: None,
        credential: Credential::None,
    }
}

/// MiB above the RSS now (the targets must be above what the process already holds).
fn above_rss(e: &Engine, mb: u64) -> u64 {
    e.rss_bytes().div_ceil(MIB) + mb
}

fn wait_for(e: &Engine, what: &str, ok: impl Fn(&StatusSnapshot) -> bool) -> StatusSnapshot {
    let t0 = Instant::now();
    loop {
        let s = e.status();
        if ok(&s) {
            return s;
        }
        assert!(t0.elapsed() < PATIENCE, "{what} never happened: {s:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn entries(e: &Engine) -> Vec<LogRecord> {
    let mut sub = e.logs().subscribe(0);
    let mut all = Vec::new();
    loop {
        let page = sub.next_page(false);
        all.extend(page.entries);
        if page.caught_up {
            return all;
        }
    }
}

fn ops(entries: &[LogRecord]) -> Vec<Operation> {
    entries.iter().map(|r| r.operation).collect()
}

fn invalid_field(err: EngineError) -> String {
    match err {
        EngineError::InvalidArgument { field, .. } => field.into_owned(),
        other => panic!("not an InvalidArgument: {other}"),
    }
}

#[test]
fn single_target_builds_holds_stops_and_clears() {
    let _turn = turn();
    let e = engine();
    let target = above_rss(&e, 24);
    let spec = StartSpec {
        target: Some(Target::MemoryMb(target)),
        duration_seconds: Some(0),
        ..StartSpec::default()
    };
    let out = e.start(&spec, &caller()).unwrap();
    assert_eq!(out.target_bytes, target * MIB);
    assert_eq!(out.phase_target_bytes, vec![target * MIB]);
    let again = e.start(&spec, &caller()).unwrap_err();
    assert!(
        matches!(again, EngineError::RunInProgress { .. }),
        "{again}"
    );

    let s = wait_for(&e, "SEARCHING", |s| s.state == State::Searching);
    let run = s.run.as_ref().unwrap();
    assert!(run.phase.is_none(), "a single target has no phase progress");
    assert!(run.nodes > 0 && run.payload_bytes > 0, "{run:?}");
    assert!(run.time_to_target_ms.is_some());
    assert_eq!(run.remaining_ms, None, "held until stopped");
    assert_eq!(s.workload, WorkloadKind::Tree);
    assert_eq!(s.activity_unit, "searches");
    assert!(s.peak_rss_bytes >= s.rss_bytes);
    wait_for(&e, "searches", |s| {
        s.run.as_ref().is_some_and(|r| r.searches > 0)
    });

    let stop = e.stop(&caller());
    assert!(stop.stopped);
    assert_eq!(stop.state, State::Stopped);
    let held = e.status().run.unwrap();
    assert!(held.payload_bytes > 0, "a stopped run keeps its memory");
    let stop_again = e.stop(&caller());
    assert!(!stop_again.stopped);

    let cleared = e.clear(&caller());
    assert_eq!(cleared.released_bytes, held.payload_bytes);
    assert_eq!(cleared.nodes_released, held.nodes);
    assert_eq!(e.state(), State::Idle);
    let log = ops(&entries(&e));
    let expect = [
        Operation::StressTestStart,
        Operation::BuildTreeStart,
        Operation::BuildTreeComplete,
        Operation::SearchTreeStart,
        Operation::StressTestStopped,
        Operation::MemoryCleared,
    ];
    let seen: Vec<Operation> = log.iter().copied().filter(|o| expect.contains(o)).collect();
    assert_eq!(seen, expect, "{log:?}");
    assert!(!log.contains(&Operation::PhaseStart), "{log:?}");
}

#[test]
fn refusals_name_the_field() {
    let _turn = turn();
    let e = engine();
    let phase = |mb| PhaseSpec {
        target: Some(Target::MemoryMb(mb)),
        hold_seconds: 0,
        ramp_mb_per_second: None,
    };
    let cases = [
        (StartSpec::default(), "memory_mb/memory_percent"),
        (
            StartSpec {
                target: Some(Target::MemoryMb(600)),
                ..StartSpec::default()
            },
            "memory_mb",
        ),
        (
            StartSpec {
                target: Some(Target::MemoryMb(100)),
                phases: vec![phase(100)],
                ..StartSpec::default()
            },
            "memory_mb",
        ),
        (
            StartSpec {
                phases: vec![phase(100)],
                duration_seconds: Some(60),
                ..StartSpec::default()
            },
            "duration_seconds",
        ),
        (
            StartSpec {
                phases: vec![phase(100), phase(9000)],
                ..StartSpec::default()
            },
            "phases[1].memory_mb",
        ),
        (
            StartSpec {
                target: Some(Target::MemoryMb(100)),
                repeat: Some(2),
                ..StartSpec::default()
            },
            "repeat",
        ),
        (
            StartSpec {
                phases: vec![phase(100)],
                repeat: Some(10_001),
                ..StartSpec::default()
            },
            "repeat",
        ),
        (
            StartSpec {
                phases: vec![phase(100); 65],
                ..StartSpec::default()
            },
            "phases",
        ),
    ];
    for (spec, field) in cases {
        let err = e.start(&spec, &caller()).unwrap_err();
        let msg = err.to_string();
        assert_eq!(invalid_field(err), field, "{msg}");
        assert!(msg.contains("allowed: "), "{msg}");
    }
    assert_eq!(e.state(), State::Idle, "nothing started");
    assert!(entries(&e).is_empty(), "a refused start logs nothing");
}

#[test]
fn a_profile_grows_shrinks_and_repeats() {
    let _turn = turn();
    let e = engine();
    let base = above_rss(&e, 0);
    let phase = |mb| PhaseSpec {
        target: Some(Target::MemoryMb(mb)),
        hold_seconds: 0,
        ramp_mb_per_second: None,
    };
    let (high, low) = (base + 48, base + 16);
    let spec = StartSpec {
        phases: vec![phase(high), phase(low)],
        repeat: Some(2),
        ..StartSpec::default()
    };
    let out = e.start(&spec, &caller()).unwrap();
    assert_eq!(out.phase_target_bytes, vec![high * MIB, low * MIB]);
    assert_eq!(
        out.target_bytes,
        high * MIB,
        "the run's target is its largest phase's"
    );
    assert_eq!(out.params.repeat, 2);

    let s = wait_for(&e, "COMPLETED", |s| s.state == State::Completed);
    let phase_now = s.run.as_ref().unwrap().phase.unwrap();
    assert_eq!(
        (
            phase_now.index,
            phase_now.count,
            phase_now.repetition,
            phase_now.repeat
        ),
        (2, 2, 2, 2)
    );
    assert_eq!(phase_now.target_bytes, low * MIB);
    let log = entries(&e);
    let starts: Vec<&str> = log
        .iter()
        .filter(|r| r.operation == Operation::PhaseStart)
        .map(|r| &*r.message)
        .collect();
    assert_eq!(starts.len(), 4, "{starts:?}");
    assert!(starts[0].starts_with("phase 1/2, rep 1/2"), "{starts:?}");
    assert!(starts[3].starts_with("phase 2/2, rep 2/2"), "{starts:?}");
    // Each shrink reached the lower target within max(0.5 %, 2 MiB) above it.
    let shrinks: Vec<&LogRecord> = log
        .iter()
        .skip_while(|r| !r.message.starts_with("shrinking"))
        .filter(|r| r.operation == Operation::BuildTreeComplete)
        .step_by(2)
        .collect();
    assert!(!shrinks.is_empty(), "no shrink: {:?}", ops(&log));
    for r in shrinks {
        assert!(r.memory_mb <= (low + 2) as f64, "{r:?}");
    }
    assert!(!ops(&log).contains(&Operation::StressTestError));
    e.clear(&caller());
}

#[test]
fn every_workload_holds_and_names_its_activity() {
    let _turn = turn();
    let e = engine();
    for kind in WorkloadKind::ALL {
        let spec = StartSpec {
            target: Some(Target::MemoryMb(above_rss(&e, 16))),
            duration_seconds: Some(0),
            workload: kind,
            payload_size_kb: Some(64),
            search_rate: Some(0),
            ..StartSpec::default()
        };
        let out = e.start(&spec, &caller()).unwrap();
        assert_eq!(out.params.workload, kind);
        let s = wait_for(&e, "activity", |s| {
            s.state == State::Searching && s.run.as_ref().is_some_and(|r| r.searches > 0)
        });
        assert_eq!(s.workload, kind);
        assert_eq!(s.activity_unit, kind.activity_unit());
        assert!(s.run.unwrap().nodes > 0);
        e.stop(&caller());
        let cleared = e.clear(&caller());
        assert!(cleared.released_bytes > 0, "{kind:?}");
        let log = entries(&e);
        let cleared_entry = log
            .iter()
            .rev()
            .find(|r| r.operation == Operation::MemoryCleared);
        assert!(cleared_entry.is_some(), "{kind:?}");
    }
}

#[test]
fn a_phase_hold_counts_down_and_completes() {
    let _turn = turn();
    let e = engine();
    let spec = StartSpec {
        phases: vec![PhaseSpec {
            target: Some(Target::MemoryMb(above_rss(&e, 16))),
            hold_seconds: 2,
            ramp_mb_per_second: Some(64.0),
        }],
        ..StartSpec::default()
    };
    e.start(&spec, &caller()).unwrap();
    let s = wait_for(&e, "SEARCHING", |s| s.state == State::Searching);
    let left = s.run.unwrap().remaining_ms.unwrap();
    assert!(left <= 2000, "{left}");
    let done = wait_for(&e, "COMPLETED", |s| s.state == State::Completed);
    // 2 s at the default 1000 searches/s: the hold searched from its start, not in a burst
    // after a long first sleep.
    let searches = done.run.unwrap().searches;
    assert!(searches >= 500, "{searches}");
    let log = ops(&entries(&e));
    assert!(log.contains(&Operation::SearchTreeComplete), "{log:?}");
    assert!(log.contains(&Operation::StressTestComplete), "{log:?}");
    e.clear(&caller());
}
