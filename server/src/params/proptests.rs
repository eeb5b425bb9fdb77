//! Property tests of parameter validation: Start values generated over and beyond every
//! documented range, against random bases and host guards. An independent oracle lists the
//! offending fields; validation must accept exactly when the list is empty, and a refusal
//! must name one of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;

/// Fields that break a documented rule, computed from the documentation, not the code.
fn offending(
    spec: &StartSpec,
    basis: &MemoryBasis,
    readable: bool,
    host: &HostGuard,
) -> Vec<&'static str> {
    let mut out = Vec::new();
    let d = spec.duration_seconds.unwrap_or(60);
    if d != 0 && !(5..=86_400).contains(&d) {
        out.push("duration_seconds");
    }
    if !(1..=60).contains(&spec.log_interval_seconds.unwrap_or(5)) {
        out.push("log_interval_seconds");
    }
    if !(1..=65_536).contains(&spec.payload_size_kb.unwrap_or(100)) {
        out.push("payload_size_kb");
    }
    let r = spec.ramp_mb_per_second;
    if !(r.is_finite() && (0.0..=100_000.0).contains(&r)) {
        out.push("ramp_mb_per_second");
    }
    if spec.search_rate.unwrap_or(1000) > 10_000_000 {
        out.push("search_rate");
    }
    if spec.scope == Scope::Container && !readable {
        out.push("scope");
    }
    let unlimited = basis.source == BasisSource::HostTotal;
    if unlimited && spec.allow_oom && !host.allow_host_oom {
        out.push("allow_oom");
    }
    let limit = u128::from(basis.limit_bytes);
    let mib = u128::from(MIB);
    let headroom = host.available_bytes.map(|a| u128::from(a) * 9 / 10);
    let over_headroom =
        |bytes: u128| unlimited && !spec.allow_oom && headroom.is_some_and(|h| bytes > h);
    match spec.target {
        None => out.push("memory_mb/memory_percent"),
        Some(Target::MemoryMb(mb)) => {
            let bytes = u128::from(mb) * mib;
            let oom_max = (2 * (limit / mib)).max(10);
            if mb < 10
                || (!spec.allow_oom && bytes >= limit)
                || (spec.allow_oom && u128::from(mb) > oom_max)
                || over_headroom(bytes)
            {
                out.push("memory_mb");
            }
        }
        Some(Target::Percent(p)) => {
            let in_range = p.is_finite() && (1.0..=95.0).contains(&p);
            let bytes = (basis.limit_bytes as f64 * p / 100.0) as u64;
            if !in_range || u128::from(bytes) < 10 * mib || over_headroom(u128::from(bytes)) {
                out.push("memory_percent");
            }
        }
    }
    out
}

fn u32_around(edges: [u32; 2]) -> impl Strategy<Value = Option<u32>> {
    let [lo, hi] = edges;
    proptest::option::of(prop_oneof![
        0..=lo.saturating_add(3),
        hi.saturating_sub(3)..=hi.saturating_add(3),
        any::<u32>(),
    ])
}

fn float_beyond(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(lo),
        Just(hi),
        (lo - 10.0)..(hi + 10.0),
        any::<f64>(),
    ]
}

fn target() -> impl Strategy<Value = Option<Target>> {
    proptest::option::weighted(
        0.95,
        prop_oneof![
            prop_oneof![0u64..20, 0u64..70_000, any::<u64>()].prop_map(Target::MemoryMb),
            float_beyond(1.0, 95.0).prop_map(Target::Percent),
        ],
    )
}

fn spec() -> impl Strategy<Value = StartSpec> {
    (
        target(),
        u32_around([5, 86_400]),
        u32_around([1, 60]),
        u32_around([1, 65_536]),
        float_beyond(0.0, MAX_RAMP_MB_PER_SECOND),
        proptest::option::of(prop_oneof![
            0u64..10,
            (MAX_SEARCH_RATE - 3)..(MAX_SEARCH_RATE + 3),
            any::<u64>()
        ]),
        any::<[bool; 4]>(),
    )
        .prop_map(
            |(target, d, l, p, ramp, search, [hot, huge, container, oom])| StartSpec {
                target,
                duration_seconds: d,
                log_interval_seconds: l,
                payload_size_kb: p,
                ramp_mb_per_second: ramp,
                search_rate: search,
                keep_hot: hot,
                huge_pages: huge,
                scope: if container {
                    Scope::Container
                } else {
                    Scope::Process
                },
                allow_oom: oom,
                ..StartSpec::default()
            },
        )
}

fn basis() -> impl Strategy<Value = MemoryBasis> {
    (
        prop_oneof![0u64..(64 * MIB), MIB..(1 << 40), any::<u64>()],
        prop_oneof![
            Just(BasisSource::CgroupV1),
            Just(BasisSource::CgroupV2),
            Just(BasisSource::DownwardApi),
            Just(BasisSource::HostTotal),
        ],
    )
        .prop_map(|(limit_bytes, source)| MemoryBasis {
            limit_bytes,
            source,
            detail: "generated".into(),
        })
}

fn guard() -> impl Strategy<Value = HostGuard> {
    (
        proptest::option::of(prop_oneof![0u64..(64 * MIB), MIB..(1 << 40), any::<u64>()]),
        any::<bool>(),
    )
        .prop_map(|(available_bytes, allow_host_oom)| HostGuard {
            available_bytes,
            allow_host_oom,
        })
}

/// Every field of an accepted run is inside its documented range.
fn assert_in_range(
    spec: &StartSpec,
    basis: &MemoryBasis,
    host: &HostGuard,
    p: &RunParams,
    bytes: u64,
) {
    assert!(p.duration_seconds == 0 || (5..=86_400).contains(&p.duration_seconds));
    assert!((1..=60).contains(&p.log_interval_seconds));
    assert!((1..=65_536).contains(&p.payload_size_kb));
    assert!(p.ramp_mb_per_second.is_finite());
    assert!((0.0..=MAX_RAMP_MB_PER_SECOND).contains(&p.ramp_mb_per_second));
    assert!(p.search_rate <= MAX_SEARCH_RATE);
    assert!(bytes >= MIN_MEMORY_MB * MIB);
    match p.target {
        Target::MemoryMb(mb) => assert_eq!(bytes, mb.saturating_mul(MIB)),
        Target::Percent(pct) => assert!(pct.is_finite() && (1.0..=95.0).contains(&pct)),
    }
    if !spec.allow_oom {
        assert!(
            bytes < basis.limit_bytes,
            "{bytes} not below {}",
            basis.limit_bytes
        );
    }
    if basis.source == BasisSource::HostTotal {
        if spec.allow_oom {
            assert!(host.allow_host_oom);
        } else if let Some(h) = host.headroom_bytes() {
            assert!(bytes <= h, "{bytes} past the headroom {h}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn validation_accepts_exactly_the_documented_ranges(
        spec in spec(),
        basis in basis(),
        host in guard(),
        readable in any::<bool>(),
    ) {
        let bad = offending(&spec, &basis, readable, &host);
        match validate(&spec, &basis, readable, &host) {
            Ok((p, bytes)) => {
                prop_assert!(bad.is_empty(), "accepted although {bad:?} break the rules: {spec:?} {basis:?} {host:?}");
                assert_in_range(&spec, &basis, &host, &p, bytes);
            }
            Err(e) => {
                let msg = e.to_string();
                let EngineError::InvalidArgument { field, allowed, .. } = e else {
                    panic!("not an InvalidArgument: {msg}");
                };
                prop_assert!(bad.contains(&field.as_ref()), "refused naming {field} but the offenders are {bad:?}: {msg}");
                prop_assert!(msg.starts_with(&format!("{field} = ")), "{msg}");
                prop_assert!(!allowed.is_empty(), "{msg}");
                prop_assert!(msg.contains("(allowed: "), "{msg}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Without a limit, targets near the headroom line: accepted exactly up to 90 % of
    /// MemAvailable, and allow_oom refused unless the server allows host OOM.
    #[test]
    fn unlimited_host_headroom_is_exactly_90_percent_of_available(
        available in (20 * MIB)..(1 << 40),
        share in 0.85f64..0.95,
        by_percent in any::<bool>(),
        allow_oom in any::<bool>(),
        allow_host_oom in any::<bool>(),
    ) {
        let basis = MemoryBasis {
            limit_bytes: available.saturating_mul(2),
            source: BasisSource::HostTotal,
            detail: "host".into(),
        };
        let host = HostGuard { available_bytes: Some(available), allow_host_oom };
        let wanted = (available as f64 * share) as u64;
        let target = if by_percent {
            Target::Percent(wanted as f64 * 100.0 / basis.limit_bytes as f64)
        } else {
            Target::MemoryMb((wanted / MIB).max(MIN_MEMORY_MB))
        };
        let spec = StartSpec { target: Some(target), allow_oom, ..StartSpec::default() };
        let result = validate(&spec, &basis, true, &host);
        if allow_oom {
            match result {
                Ok(_) => prop_assert!(allow_host_oom),
                Err(e) => {
                    prop_assert!(!allow_host_oom, "{e}");
                    prop_assert!(e.to_string().starts_with("allow_oom = true"), "{e}");
                }
            }
        } else {
            let headroom = u128::from(available) * 9 / 10;
            match result {
                Ok((_, bytes)) => prop_assert!(u128::from(bytes) <= headroom),
                Err(e) => {
                    let field = if by_percent { "memory_percent" } else { "memory_mb" };
                    prop_assert!(e.to_string().starts_with(field), "{e}");
                    prop_assert!(e.to_string().contains("MemAvailable"), "{e}");
                    let bytes = match target {
                        Target::MemoryMb(mb) => u128::from(mb) * u128::from(MIB),
                        Target::Percent(p) => (basis.limit_bytes as f64 * p / 100.0) as u128,
                    };
                    prop_assert!(bytes > headroom, "{e}");
                }
            }
        }
    }
}
