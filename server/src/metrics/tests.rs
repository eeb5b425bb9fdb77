#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::encode::per_bucket_counts;
use super::*;
use crate::cgroup::{CgroupProbe, ContainerMemory};
use crate::engine::{EngineConfig, RunStatus, State};
use crate::history::model::Outcome;
use crate::history::tally::{HistogramSnapshot, RunTally};
use crate::history::{CurrentCgroup, History, HistoryConfig};
use crate::logs::{LogHub, Operation};
use crate::params::{RunParams, Scope, Target};
use std::collections::BTreeMap;
use std::path::Path;

const MI: u64 = 1 << 20;
const STAT: &str = "77 (stressd) S 1 77 77 0 -1 4194560 1 0 0 0 5 5 0 0 20 0 4 0 250 1 1 \
                    18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";

/// The v2 cgroup fixture (512 MiB limit, 2 OOM kills, PSI) plus process files, in a temp root.
fn fixture_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let v2 = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/cgroup/v2"));
    copy_tree(v2, dir.path());
    let files = [
        ("proc/self/statm", "5000 1234 300 10 0 900 0\n"),
        ("proc/self/stat", STAT),
        ("proc/stat", "cpu 1 2 3\nbtime 1700000000\n"),
        ("proc/self/fd/0", ""),
        ("proc/self/fd/1", ""),
        ("proc/self/fd/2", ""),
    ];
    for (rel, content) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn engine(root: &Path) -> Arc<Engine> {
    let config = EngineConfig {
        fs_root: root.to_path_buf(),
        cgroup: CgroupProbe::discover(root, None),
        host_total_bytes: 16 << 30,
        allow_host_oom: false,
        instance: Arc::new(crate::instance::Instance::detect(root, |_| None)),
    };
    let logs = Arc::new(LogHub::new(100, 16));
    let opened = History::open(&HistoryConfig::default(), &CurrentCgroup::default()).unwrap();
    Arc::new(Engine::new(config, logs, Arc::new(opened.history)).unwrap())
}

/// Renders a fixed scrape (what the collector would take from the engine).
fn render(scrape: Scrape) -> String {
    #[derive(Debug)]
    struct Fixed(Scrape);
    impl Collector for Fixed {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            self.0.encode(&mut encoder)
        }
    }
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Fixed(scrape)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
    out
}

/// `# TYPE` lines (family -> type) and samples (`name{labels}` -> value).
struct Parsed {
    types: BTreeMap<String, String>,
    units: BTreeMap<String, String>,
    samples: BTreeMap<String, f64>,
}

fn parse(text: &str) -> Parsed {
    let mut p = Parsed {
        types: BTreeMap::new(),
        units: BTreeMap::new(),
        samples: BTreeMap::new(),
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["#", "TYPE", name, ty] => {
                assert!(p.types.insert(name.to_string(), ty.to_string()).is_none())
            }
            ["#", "UNIT", name, unit] => {
                p.units.insert(name.to_string(), unit.to_string());
            }
            ["#", "HELP", ..] | ["#", "EOF"] => {}
            [series, value] => {
                let v: f64 = value
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}"));
                assert!(
                    p.samples.insert(series.to_string(), v).is_none(),
                    "duplicate {series}"
                );
            }
            _ => panic!("unexpected line {line:?}"),
        }
    }
    p
}

impl Parsed {
    fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no sample {series}"))
    }
    fn has(&self, series: &str) -> bool {
        self.samples.contains_key(series)
    }
}

/// Every family with its type and unit (None = no unit).
const FAMILIES: &[(&str, &str, Option<&str>)] = &[
    ("memstress_build", "info", None),
    ("memstress_state", "gauge", None),
    ("memstress_searches", "counter", None),
    ("memstress_target_bytes", "gauge", Some("bytes")),
    ("memstress_nodes", "gauge", None),
    ("memstress_payload_bytes", "gauge", Some("bytes")),
    (
        "memstress_fill_rate_bytes_per_second",
        "gauge",
        Some("bytes_per_second"),
    ),
    (
        "memstress_peak_resident_memory_bytes",
        "gauge",
        Some("bytes"),
    ),
    ("memstress_peak_working_set_bytes", "gauge", Some("bytes")),
    ("memstress_runs", "counter", None),
    (
        "memstress_time_to_target_seconds",
        "histogram",
        Some("seconds"),
    ),
    ("memstress_history_durable", "gauge", None),
    ("memstress_log_entries", "counter", None),
    ("memstress_log_watchers", "gauge", None),
    (
        "memstress_container_memory_limit_bytes",
        "gauge",
        Some("bytes"),
    ),
    (
        "memstress_container_memory_usage_bytes",
        "gauge",
        Some("bytes"),
    ),
    (
        "memstress_container_memory_working_set_bytes",
        "gauge",
        Some("bytes"),
    ),
    ("memstress_container_oom_kills", "counter", None),
    (
        "memstress_container_memory_pressure_seconds",
        "counter",
        Some("seconds"),
    ),
    ("process_resident_memory_bytes", "gauge", Some("bytes")),
    ("process_cpu_seconds", "counter", Some("seconds")),
    ("process_start_time_seconds", "gauge", Some("seconds")),
    ("process_open_fds", "gauge", None),
];

#[test]
fn idle_engine_over_a_fixture_root_exports_every_family() {
    let root = fixture_root();
    let text = Exporter::new(engine(root.path()), root.path().to_path_buf())
        .render()
        .unwrap();
    assert!(text.ends_with("\n# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1);
    let p = parse(&text);
    let expected: BTreeMap<String, String> = FAMILIES
        .iter()
        .map(|(n, t, _)| (n.to_string(), t.to_string()))
        .collect();
    assert_eq!(p.types, expected);
    let units: BTreeMap<String, String> = FAMILIES
        .iter()
        .filter_map(|(n, _, u)| u.map(|u| (n.to_string(), u.to_string())))
        .collect();
    assert_eq!(p.units, units);
    for series in p.samples.keys() {
        let name = series.split('{').next().unwrap();
        let family = ["_total", "_bucket", "_sum", "_count", "_info"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| p.types.contains_key(*f)))
            .unwrap_or(name);
        assert!(p.types.contains_key(family), "{series} has no # TYPE");
    }

    let ones: Vec<_> = p
        .samples
        .iter()
        .filter(|(k, v)| k.starts_with("memstress_state{") && **v == 1.0)
        .collect();
    assert_eq!(ones.len(), 1, "{ones:?}");
    assert_eq!(p.get(r#"memstress_state{state="idle"}"#), 1.0);
    assert_eq!(
        p.samples
            .keys()
            .filter(|k| k.starts_with("memstress_state{"))
            .count(),
        6
    );
    let build = format!(
        r#"memstress_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(p.get(&build), 1.0);

    // Before any run: zeros, and peaks are the current values.
    let page = page_size();
    assert_eq!(p.get("memstress_target_bytes"), 0.0);
    assert_eq!(p.get("memstress_nodes"), 0.0);
    assert_eq!(p.get("memstress_fill_rate_bytes_per_second"), 0.0);
    assert_eq!(p.get("process_resident_memory_bytes"), 1234.0 * page);
    assert_eq!(p.get("memstress_peak_resident_memory_bytes"), 1234.0 * page);
    assert_eq!(p.get("memstress_searches_total"), 0.0);
    assert_eq!(p.get(r#"memstress_runs_total{outcome="oom_killed"}"#), 0.0);
    assert!(!p.has(r#"memstress_runs_total{outcome="running"}"#));
    assert_eq!(
        p.get(r#"memstress_time_to_target_seconds_bucket{le="+Inf"}"#),
        0.0
    );
    assert_eq!(p.get("memstress_history_durable"), 0.0);

    // The cgroup fixture, in base units.
    assert_eq!(
        p.get("memstress_container_memory_limit_bytes"),
        (512 * MI) as f64
    );
    assert_eq!(
        p.get("memstress_container_memory_usage_bytes"),
        209_715_200.0
    );
    let ws = (209_715_200 - 52_428_800) as f64;
    assert_eq!(p.get("memstress_container_memory_working_set_bytes"), ws);
    assert_eq!(p.get("memstress_peak_working_set_bytes"), ws);
    assert_eq!(p.get("memstress_container_oom_kills_total"), 2.0);
    let some = r#"memstress_container_memory_pressure_seconds_total{kind="some"}"#;
    let full = r#"memstress_container_memory_pressure_seconds_total{kind="full"}"#;
    assert!((p.get(some) - 4.523_311).abs() < 1e-9);
    assert!((p.get(full) - 2.310_043).abs() < 1e-9);

    // Process facts from the fixture root.
    assert_eq!(p.get("process_open_fds"), 3.0);
    let start = p.get("process_start_time_seconds");
    assert!(
        (1_700_000_000.0..1_700_000_100.0).contains(&start),
        "{start}"
    );
    assert!(p.get("process_cpu_seconds_total") >= 0.0);
}

fn page_size() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as f64 }
}

fn a_run(state: State) -> RunStatus {
    RunStatus {
        run_id: "run-1-abcdef".into(),
        params: RunParams {
            target: Target::MemoryMb(256),
            duration_seconds: 60,
            log_interval_seconds: 5,
            payload_size_kb: 100,
            ramp_mb_per_second: 64.0,
            search_rate: 1000,
            keep_hot: false,
            huge_pages: false,
            scope: Scope::Process,
            allow_oom: false,
            workload: crate::params::WorkloadKind::Tree,
            phases: Vec::new(),
            repeat: 1,
        },
        target_bytes: 256 * MI,
        nodes: 1000,
        payload_bytes: 100 * MI,
        peak_rss_bytes: 120 * MI,
        peak_working_set_bytes: Some(130 * MI),
        basis: crate::cgroup::MemoryBasis {
            limit_bytes: 512 * MI,
            source: crate::cgroup::BasisSource::CgroupV2,
            detail: "x".into(),
        },
        searches: 0,
        searches_per_second: 0.0,
        started_at_ms: 0,
        elapsed_ms: 1500,
        remaining_ms: None,
        last_error: String::new(),
        fill_rate_mb_per_second: 60.0,
        current_fill_rate_mb_per_second: if state == State::Building { 64.0 } else { 0.0 },
        time_to_target_ms: None,
        huge_page_bytes: 0,
        oom_kills_at_start: Some(2),
        phase: None,
    }
}

fn scrape_of(root: &Path) -> Scrape {
    let engine = engine(root);
    Scrape::take(&engine, &ProcessReader::new(root))
}

#[test]
fn a_building_run_is_reported_in_base_units() {
    let root = fixture_root();
    let mut s = scrape_of(root.path());
    s.status.state = State::Building;
    s.status.run = Some(a_run(State::Building));
    // The engine computes the snapshot's peaks from the run; set as it would.
    s.status.peak_rss_bytes = 120 * MI;
    s.status.peak_working_set_bytes = Some(130 * MI);
    s.status.searches_total = 12_345;
    s.log_entries = 7;
    s.log_watchers = 2;
    let p = parse(&render(s.clone()));
    assert_eq!(p.get(r#"memstress_state{state="building"}"#), 1.0);
    assert_eq!(p.get(r#"memstress_state{state="idle"}"#), 0.0);
    assert_eq!(p.get("memstress_target_bytes"), (256 * MI) as f64);
    assert_eq!(p.get("memstress_nodes"), 1000.0);
    assert_eq!(p.get("memstress_payload_bytes"), (100 * MI) as f64);
    assert_eq!(
        p.get("memstress_fill_rate_bytes_per_second"),
        (64 * MI) as f64
    );
    assert_eq!(
        p.get("memstress_peak_resident_memory_bytes"),
        (120 * MI) as f64
    );
    assert_eq!(p.get("memstress_peak_working_set_bytes"), (130 * MI) as f64);
    assert_eq!(p.get("memstress_searches_total"), 12_345.0);
    assert_eq!(p.get("memstress_log_entries_total"), 7.0);
    assert_eq!(p.get("memstress_log_watchers"), 2.0);

    // Holding: no fill rate, even if the run still carried one.
    s.status.state = State::Searching;
    let p = parse(&render(s));
    assert_eq!(p.get("memstress_fill_rate_bytes_per_second"), 0.0);
    assert_eq!(p.get(r#"memstress_state{state="searching"}"#), 1.0);
}

#[test]
fn runs_and_time_to_target_come_from_the_tally() {
    let root = fixture_root();
    let mut s = scrape_of(root.path());
    let tally = RunTally::default();
    for o in [Outcome::OomKilled, Outcome::OomKilled, Outcome::Completed] {
        tally.count_run(o);
    }
    for secs in [0.05, 0.3, 0.4, 7.0, 5000.0] {
        tally.observe_time_to_target(secs);
    }
    s.status.history.tally = tally.snapshot();
    let p = parse(&render(s));
    assert_eq!(p.get(r#"memstress_runs_total{outcome="oom_killed"}"#), 2.0);
    assert_eq!(p.get(r#"memstress_runs_total{outcome="completed"}"#), 1.0);
    assert_eq!(p.get(r#"memstress_runs_total{outcome="killed"}"#), 0.0);
    let bucket = |le: &str| {
        p.get(&format!(
            r#"memstress_time_to_target_seconds_bucket{{le="{le}"}}"#
        ))
    };
    // Cumulative, exactly as the tally counts them (not accumulated twice).
    assert_eq!(bucket("0.1"), 1.0);
    assert_eq!(bucket("0.25"), 1.0);
    assert_eq!(bucket("0.5"), 3.0);
    assert_eq!(bucket("10.0"), 4.0);
    assert_eq!(bucket("1800.0"), 4.0);
    assert_eq!(bucket("+Inf"), 5.0);
    assert_eq!(p.get("memstress_time_to_target_seconds_count"), 5.0);
    assert!((p.get("memstress_time_to_target_seconds_sum") - 5007.75).abs() < 1e-9);
}

#[test]
fn unknown_container_values_are_declared_without_samples() {
    let root = fixture_root();
    let mut s = scrape_of(root.path());
    s.status.container = ContainerMemory::default();
    s.status.peak_working_set_bytes = None;
    s.process = ProcessFacts::default();
    let text = render(s);
    let p = parse(&text);
    for family in [
        "memstress_container_memory_limit_bytes",
        "memstress_container_memory_usage_bytes",
        "memstress_container_memory_working_set_bytes",
        "memstress_container_oom_kills",
        "memstress_container_memory_pressure_seconds",
        "memstress_peak_working_set_bytes",
        "process_start_time_seconds",
        "process_open_fds",
    ] {
        assert!(p.types.contains_key(family), "{family} not declared");
        assert!(
            !p.samples.keys().any(|k| k.starts_with(family)),
            "{family} has a sample though unknown"
        );
    }
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn per_bucket_counts_undo_the_accumulation() {
    let h = HistogramSnapshot {
        buckets: vec![(0.5, 1), (1.0, 1), (2.0, 4), (f64::INFINITY, 6)],
        sum: 9.0,
        count: 6,
    };
    assert_eq!(
        per_bucket_counts(&h),
        vec![(0.5, 1), (1.0, 0), (2.0, 3), (f64::INFINITY, 2)]
    );
    // Empty or inconsistent input still ends in +Inf = count and never underflows.
    assert_eq!(
        per_bucket_counts(&HistogramSnapshot::default()),
        vec![(f64::INFINITY, 0)]
    );
    let odd = HistogramSnapshot {
        buckets: vec![(1.0, 5), (2.0, 3)],
        sum: 0.0,
        count: 4,
    };
    assert_eq!(
        per_bucket_counts(&odd),
        vec![(1.0, 4), (2.0, 0), (f64::INFINITY, 0)]
    );
}

#[test]
fn log_counters_count_entries_and_watchers_but_not_the_printer() {
    let hub = LogHub::new(3, 16);
    hub.spawn_stdout_printer().unwrap();
    assert_eq!(hub.watchers(), 0, "the stdout printer is not a watcher");
    let run: Arc<str> = Arc::from("");
    for i in 0..5 {
        hub.publish(Operation::Notice, &run, 1.0, None, format!("e{i}"));
    }
    assert_eq!(hub.entries_total(), 5, "published, not kept (3)");
    let a = hub.subscribe(0);
    let b = hub.subscribe(0);
    assert_eq!(hub.watchers(), 2);
    drop(a);
    assert_eq!(hub.watchers(), 1);
    drop(b);
    assert_eq!(hub.watchers(), 0);
}
