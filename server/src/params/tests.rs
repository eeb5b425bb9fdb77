//! Unit tests of parameter validation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const NO_GUARD: HostGuard = HostGuard {
    available_bytes: None,
    allow_host_oom: false,
};

fn basis(mb: u64) -> MemoryBasis {
    MemoryBasis {
        limit_bytes: mb * MIB,
        source: BasisSource::CgroupV1,
        detail: "/sys/fs/cgroup/memory/memory.limit_in_bytes".into(),
    }
}

fn mb(n: u64) -> StartSpec {
    StartSpec {
        target: Some(Target::MemoryMb(n)),
        ..StartSpec::default()
    }
}

#[test]
fn defaults_fill_in() {
    let (p, bytes) = validate(&mb(128), &basis(512), true, &NO_GUARD).unwrap();
    assert_eq!(bytes, 128 * MIB);
    assert_eq!(p.duration_seconds, 60);
    assert_eq!(p.log_interval_seconds, 5);
    assert_eq!(p.payload_size_kb, 100);
    assert_eq!(p.search_rate, 1000);
    assert_eq!(p.scope, Scope::Process);
}

#[test]
fn percent_is_of_the_basis_and_fractions_work() {
    let spec = StartSpec {
        target: Some(Target::Percent(12.5)),
        ..StartSpec::default()
    };
    let (_, bytes) = validate(&spec, &basis(1024), true, &NO_GUARD).unwrap();
    assert_eq!(bytes, 128 * MIB);
}

/// Every refusal: (spec, field named, range text expected in the message).
#[test]
fn validation_table() {
    let with = |f: &dyn Fn(&mut StartSpec)| {
        let mut s = mb(100);
        f(&mut s);
        s
    };
    let cases: Vec<(StartSpec, &str, &str)> = vec![
        (
            StartSpec::default(),
            "memory_mb/memory_percent",
            "exactly one",
        ),
        (mb(9), "memory_mb", "10..=511"),
        (mb(512), "memory_mb", "10..=511"),
        (mb(600), "memory_mb", "OOM-killed"),
        (
            with(&|s| s.target = Some(Target::Percent(0.5))),
            "memory_percent",
            "1..=95",
        ),
        (
            with(&|s| s.target = Some(Target::Percent(95.5))),
            "memory_percent",
            "1..=95",
        ),
        (
            with(&|s| s.target = Some(Target::Percent(f64::NAN))),
            "memory_percent",
            "1..=95",
        ),
        (
            with(&|s| s.duration_seconds = Some(4)),
            "duration_seconds",
            "5..=86400",
        ),
        (
            with(&|s| s.duration_seconds = Some(86_401)),
            "duration_seconds",
            "5..=86400",
        ),
        (
            with(&|s| s.log_interval_seconds = Some(0)),
            "log_interval_seconds",
            "1..=60",
        ),
        (
            with(&|s| s.log_interval_seconds = Some(61)),
            "log_interval_seconds",
            "1..=60",
        ),
        (
            with(&|s| s.payload_size_kb = Some(0)),
            "payload_size_kb",
            "1..=65536",
        ),
        (
            with(&|s| s.payload_size_kb = Some(65_537)),
            "payload_size_kb",
            "1..=65536",
        ),
        (
            with(&|s| s.ramp_mb_per_second = -1.0),
            "ramp_mb_per_second",
            "100000",
        ),
        (
            with(&|s| s.ramp_mb_per_second = f64::INFINITY),
            "ramp_mb_per_second",
            "100000",
        ),
        (
            with(&|s| s.search_rate = Some(10_000_001)),
            "search_rate",
            "10000000",
        ),
        (mb(2000), "memory_mb", "10..=511"),
    ];
    for (spec, field, range) in cases {
        let err = validate(&spec, &basis(512), true, &NO_GUARD).expect_err(field);
        let msg = err.to_string();
        assert!(msg.starts_with(field), "{msg}");
        assert!(msg.contains(range), "{field}: {msg}");
    }
    let err = validate(
        &StartSpec {
            scope: Scope::Container,
            ..mb(100)
        },
        &basis(512),
        false,
        &NO_GUARD,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("scope"), "{err}");
}

#[test]
fn allow_oom_lifts_the_limit_but_not_to_infinity() {
    let spec = StartSpec {
        allow_oom: true,
        ..mb(600)
    };
    assert_eq!(
        validate(&spec, &basis(512), true, &NO_GUARD).unwrap().1,
        600 * MIB
    );
    let spec = StartSpec {
        allow_oom: true,
        ..mb(1025)
    };
    let err = validate(&spec, &basis(512), true, &NO_GUARD)
        .unwrap_err()
        .to_string();
    assert!(err.contains("10..=1024 with allow_oom"), "{err}");
}

#[test]
fn hold_until_stopped_and_edges_accepted() {
    for spec in [
        StartSpec {
            duration_seconds: Some(0),
            ..mb(10)
        },
        StartSpec {
            duration_seconds: Some(86_400),
            log_interval_seconds: Some(60),
            payload_size_kb: Some(65_536),
            search_rate: Some(0),
            ..mb(511)
        },
    ] {
        validate(&spec, &basis(512), true, &NO_GUARD).unwrap();
    }
}

fn host_basis(mb: u64) -> MemoryBasis {
    MemoryBasis {
        limit_bytes: mb * MIB,
        source: BasisSource::HostTotal,
        detail: "host MemTotal (no cgroup limit)".into(),
    }
}

/// MemAvailable as the engine reads it: from a fixture `/proc/meminfo` under a root.
fn guard_from_meminfo(meminfo: &str, allow_host_oom: bool) -> HostGuard {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    std::fs::write(dir.path().join("proc/meminfo"), meminfo).unwrap();
    HostGuard {
        available_bytes: crate::procmem::ProcMem::new(dir.path()).mem_available_bytes(),
        allow_host_oom,
    }
}

/// 1000 MiB available: 90 % is 900 MiB.
const MEMINFO: &str = "MemTotal:        4096000 kB\nMemFree:          512000 kB\n\
                       MemAvailable:     1024000 kB\nBuffers:           10000 kB\n";

#[test]
fn without_a_limit_allow_oom_needs_the_server_flag() {
    let spec = StartSpec {
        allow_oom: true,
        ..mb(64)
    };
    let guard = guard_from_meminfo(MEMINFO, false);
    let err = validate(&spec, &host_basis(4000), true, &guard)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("allow_oom = true is invalid"), "{err}");
    assert!(err.contains("global OOM killer"), "{err}");
    assert!(err.contains("--allow-host-oom"), "{err}");
    // With the flag it is accepted, up to twice the host as before.
    let guard = guard_from_meminfo(MEMINFO, true);
    assert_eq!(
        validate(&spec, &host_basis(4000), true, &guard).unwrap().1,
        64 * MIB
    );
    let big = StartSpec {
        allow_oom: true,
        ..mb(5000)
    };
    validate(&big, &host_basis(4000), true, &guard).unwrap();
    // Any limit makes the flag irrelevant: the cgroup's OOM killer takes stressd alone.
    for source in [
        BasisSource::CgroupV1,
        BasisSource::CgroupV2,
        BasisSource::DownwardApi,
    ] {
        let b = MemoryBasis {
            source,
            ..host_basis(4000)
        };
        let guard = guard_from_meminfo(MEMINFO, false);
        validate(&spec, &b, true, &guard).unwrap();
    }
}

#[test]
fn without_a_limit_a_target_past_90_percent_of_available_is_refused() {
    let guard = guard_from_meminfo(MEMINFO, false);
    assert_eq!(guard.available_bytes, Some(1000 * MIB));
    assert_eq!(guard.headroom_bytes(), Some(900 * MIB));
    validate(&mb(900), &host_basis(4000), true, &guard).unwrap();
    let err = validate(&mb(901), &host_basis(4000), true, &guard)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("memory_mb = 901 is invalid"), "{err}");
    assert!(err.contains("(allowed: 10..=900)"), "{err}");
    assert!(err.contains("1000 MiB available (MemAvailable)"), "{err}");
    // Percent of host total: 25 % of 4000 MiB = 1000 MiB > 900 MiB.
    let pct = |p| StartSpec {
        target: Some(Target::Percent(p)),
        ..StartSpec::default()
    };
    let err = validate(&pct(25.0), &host_basis(4000), true, &guard)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("memory_percent = 25 is invalid"), "{err}");
    assert!(err.contains("(allowed: 1..=22.50)"), "{err}");
    validate(&pct(22.5), &host_basis(4000), true, &guard).unwrap();
    // With a limit, MemAvailable is not the bound: the limit is.
    validate(&mb(2000), &basis(4000), true, &guard).unwrap();
    // allow_oom (vetted by --allow-host-oom) lifts the headroom.
    let guard = guard_from_meminfo(MEMINFO, true);
    let spec = StartSpec {
        allow_oom: true,
        ..mb(3000)
    };
    validate(&spec, &host_basis(4000), true, &guard).unwrap();
}

#[test]
fn unreadable_meminfo_leaves_only_the_basis_bounds() {
    for bad in [
        "",
        "MemTotal: 1 kB\n",
        "MemAvailable: lots kB\n",
        "MemAvailable:\n",
        "MemAvailable: 18446744073709551615 kB\n",
    ] {
        let guard = guard_from_meminfo(bad, false);
        assert_eq!(guard.available_bytes, None, "{bad:?}");
        validate(&mb(3000), &host_basis(4000), true, &guard).unwrap();
        assert!(validate(&mb(4000), &host_basis(4000), true, &guard).is_err());
    }
    let missing = crate::procmem::ProcMem::new(std::path::Path::new("/nonexistent"));
    assert_eq!(missing.mem_available_bytes(), None);
}

fn phase(target: Target, hold_seconds: u32, ramp: Option<f64>) -> PhaseSpec {
    PhaseSpec {
        target: Some(target),
        hold_seconds,
        ramp_mb_per_second: ramp,
    }
}

fn profile(phases: Vec<PhaseSpec>) -> StartSpec {
    StartSpec {
        phases,
        ramp_mb_per_second: 50.0,
        ..StartSpec::default()
    }
}

#[test]
fn a_single_target_is_one_phase_once() {
    let (p, bytes) = validate(&mb(128), &basis(512), true, &NO_GUARD).unwrap();
    assert!(p.phases.is_empty());
    assert_eq!(p.repeat, 1);
    assert_eq!(p.workload, WorkloadKind::Tree);
    let plan = plan(&p, &basis(512));
    assert_eq!(plan.repeat, 1);
    assert_eq!(plan.targets(), vec![bytes]);
    assert_eq!(
        plan.phases[0].hold,
        Some(std::time::Duration::from_secs(60))
    );
    let (p, _) = validate(
        &StartSpec {
            duration_seconds: Some(0),
            ..mb(128)
        },
        &basis(512),
        true,
        &NO_GUARD,
    )
    .unwrap();
    assert_eq!(plan_of(&p).phases[0].hold, None, "0 holds until stopped");
}

fn plan_of(p: &RunParams) -> Plan {
    plan(p, &basis(512))
}

#[test]
fn a_profile_resolves_every_phase_and_inherits_the_ramp() {
    let spec = StartSpec {
        repeat: Some(0),
        ..profile(vec![
            phase(Target::MemoryMb(100), 30, None),
            phase(Target::Percent(50.0), 0, Some(10.0)),
            phase(Target::MemoryMb(20), 5, Some(0.0)),
        ])
    };
    let (p, bytes) = validate(&spec, &basis(512), true, &NO_GUARD).unwrap();
    assert_eq!(bytes, 256 * MIB, "the run's target is its largest phase's");
    assert_eq!(p.target, Target::Percent(50.0));
    assert_eq!(p.duration_seconds, 0);
    assert_eq!(p.repeat, 0);
    assert_eq!(p.phases.len(), 3);
    let plan = plan_of(&p);
    assert_eq!(plan.targets(), vec![100 * MIB, 256 * MIB, 20 * MIB]);
    assert_eq!(plan.peak_bytes(), 256 * MIB);
    let ramps: Vec<f64> = plan.phases.iter().map(|p| p.ramp_mb_per_second).collect();
    assert_eq!(ramps, vec![50.0, 10.0, 0.0]);
    assert_eq!(plan.phases[1].hold, Some(std::time::Duration::ZERO));
}

/// Every profile refusal: (spec, field named, text expected in the message).
#[test]
fn profile_refusals_name_the_phase_and_field() {
    let ok = || phase(Target::MemoryMb(100), 1, None);
    let with = |f: &dyn Fn(&mut StartSpec)| {
        let mut s = profile(vec![ok(), ok()]);
        f(&mut s);
        s
    };
    let cases: Vec<(StartSpec, &str, &str)> = vec![
        (
            with(&|s| s.phases[1].target = Some(Target::MemoryMb(512))),
            "phases[1].memory_mb",
            "10..=511",
        ),
        (
            with(&|s| s.phases[0].target = Some(Target::MemoryMb(5))),
            "phases[0].memory_mb",
            "10..=511",
        ),
        (
            with(&|s| s.phases[1].target = Some(Target::Percent(96.0))),
            "phases[1].memory_percent",
            "1..=95",
        ),
        (
            with(&|s| s.phases[1].target = None),
            "phases[1].memory_mb/memory_percent",
            "exactly one",
        ),
        (
            with(&|s| s.phases[0].hold_seconds = 86_401),
            "phases[0].hold_seconds",
            "0..=86400",
        ),
        (
            with(&|s| s.phases[1].ramp_mb_per_second = Some(-1.0)),
            "phases[1].ramp_mb_per_second",
            "100000",
        ),
        (
            with(&|s| s.phases[1].ramp_mb_per_second = Some(f64::NAN)),
            "phases[1].ramp_mb_per_second",
            "100000",
        ),
        (
            with(&|s| s.target = Some(Target::MemoryMb(100))),
            "memory_mb",
            "unset when phases are given",
        ),
        (
            with(&|s| s.target = Some(Target::Percent(10.0))),
            "memory_percent",
            "unset when phases are given",
        ),
        (
            with(&|s| s.duration_seconds = Some(60)),
            "duration_seconds",
            "unset when phases are given",
        ),
        (
            with(&|s| s.repeat = Some(10_001)),
            "repeat",
            "0 (until stopped) to 10000",
        ),
        (with(&|s| s.phases = vec![ok(); 65]), "phases", "1..=64"),
        (
            with(&|s| {
                s.repeat = Some(0);
                s.phases[0].hold_seconds = 0;
                s.phases[1].hold_seconds = 0;
            }),
            "repeat",
            "needs a phase with hold_seconds > 0",
        ),
        (
            StartSpec {
                repeat: Some(3),
                ..mb(100)
            },
            "repeat",
            "unset without phases",
        ),
    ];
    for (spec, field, text) in cases {
        let err = validate(&spec, &basis(512), true, &NO_GUARD).expect_err(field);
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("{field} = ")), "{field}: {msg}");
        assert!(msg.contains(text), "{field}: {msg}");
        let EngineError::InvalidArgument { field: named, .. } = err else {
            panic!("{msg}");
        };
        assert_eq!(named, field);
    }
}

#[test]
fn profile_phases_follow_allow_oom_and_the_host_guard() {
    let over = profile(vec![phase(Target::MemoryMb(600), 0, None)]);
    let err = validate(&over, &basis(512), true, &NO_GUARD)
        .unwrap_err()
        .to_string();
    assert!(err.contains("OOM-killed"), "{err}");
    let allowed = StartSpec {
        allow_oom: true,
        ..over
    };
    let (_, bytes) = validate(&allowed, &basis(512), true, &NO_GUARD).unwrap();
    assert_eq!(bytes, 600 * MIB);
    let guard = guard_from_meminfo(MEMINFO, false);
    let big = profile(vec![
        phase(Target::MemoryMb(100), 0, None),
        phase(Target::MemoryMb(901), 0, None),
    ]);
    let err = validate(&big, &host_basis(4000), true, &guard)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("phases[1].memory_mb = 901 is invalid"),
        "{err}"
    );
    assert!(err.contains("(allowed: 10..=900)"), "{err}");
}

#[test]
fn workload_is_kept() {
    let spec = StartSpec {
        workload: WorkloadKind::Matrix,
        ..mb(64)
    };
    let (p, _) = validate(&spec, &basis(512), true, &NO_GUARD).unwrap();
    assert_eq!(p.workload, WorkloadKind::Matrix);
}
