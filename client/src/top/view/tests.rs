//! Layout at 80×24 and larger, one endpoint and three, through ratatui's `TestBackend`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::super::Sample;
use super::super::model::Model;
use super::{draw, panel};
use memstress_proto::v1::{
    ContainerMemory, Instance, LogEntry, MemoryBasis, Operation, PhaseProgress, State,
    StatusResponse, Workload,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A status of a run at `rss` MiB of a 512 MiB target under a 1 GiB limit.
fn status(state: State, rss_mib: u64, pod: &str) -> StatusResponse {
    StatusResponse {
        state: state as i32,
        target_bytes: 512 * MIB,
        rss_bytes: rss_mib * MIB,
        started_at_unix_ms: 1,
        elapsed_ms: 62_000,
        searches_per_second: 1000.4,
        activity_unit: "searches".into(),
        current_fill_rate_mb_per_second: 1843.25,
        workload: Workload::Tree as i32,
        basis: Some(MemoryBasis {
            limit_bytes: GIB,
            ..Default::default()
        }),
        container: Some(ContainerMemory {
            limit_bytes: Some(GIB),
            working_set_bytes: Some(rss_mib * MIB + 8 * MIB),
            oom_kills: Some(0),
            ..Default::default()
        }),
        instance: Some(Instance {
            instance_id: "id".into(),
            pod_name: pod.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn entry(n: u64, message: &str) -> LogEntry {
    LogEntry {
        sequence: n,
        timestamp_unix_ms: 1_764_000_000_000 + n as i64 * 1000,
        operation: Operation::BuildTreeTarget as i32,
        message: message.into(),
        ..Default::default()
    }
}

/// A model after 30 one-second polls of `endpoints` (address, final status or error), RSS
/// climbing linearly to the final value, with `logs` from the first endpoint.
fn model(endpoints: &[(&str, Result<StatusResponse, String>)], logs: &[LogEntry]) -> Model {
    let t0 = Instant::now();
    let mut m = Model::new(Duration::from_secs(60), t0);
    for step in 1..=30u64 {
        let samples = endpoints
            .iter()
            .enumerate()
            .map(|(i, (addr, st))| Sample {
                endpoint: (*addr).to_owned(),
                status: st.clone().map(|mut s| {
                    s.rss_bytes = s.rss_bytes * step / 30;
                    if let Some(c) = s.container.as_mut() {
                        c.working_set_bytes = c.working_set_bytes.map(|w| w * step / 30);
                    }
                    s
                }),
                logs: if step == 30 && i == 0 {
                    logs.to_vec()
                } else {
                    Vec::new()
                },
            })
            .collect();
        m.apply(samples, t0 + Duration::from_secs(step));
    }
    m
}

/// The screen as text, one string per row.
fn render(m: &Model, w: u16, h: u16) -> Vec<String> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, m, Duration::from_secs(1))).unwrap();
    let buf = t.backend().buffer().clone();
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buf[(x, y)].symbol().to_owned())
                .collect::<String>()
        })
        .collect()
}

fn braille(screen: &[String]) -> usize {
    screen
        .iter()
        .flat_map(|l| l.chars())
        .filter(|c| ('\u{2801}'..='\u{28FF}').contains(c))
        .count()
}

fn has(screen: &[String], needle: &str) -> bool {
    screen.iter().any(|l| l.contains(needle))
}

fn dump(screen: &[String]) -> String {
    screen.join("\n")
}

#[test]
fn one_endpoint_at_80x24_shows_numbers_chart_and_logs() {
    let logs = [
        entry(1, "first entry"),
        entry(2, "512.0 MiB of 512.0 MiB reached"),
    ];
    let m = model(
        &[("127.0.0.1:50051", Ok(status(State::Searching, 512, "")))],
        &logs,
    );
    let s = render(&m, 80, 24);
    let text = dump(&s);
    assert!(
        has(&s, "stressctl top  1 endpoint  refresh 1s  q quits"),
        "{text}"
    );
    assert!(has(&s, "127.0.0.1:50051  SEARCHING  tree"), "{text}");
    assert!(
        has(
            &s,
            "RSS 512.0 MiB   working set 520.0 MiB   target 512.0 MiB   limit 1.00 GiB"
        ),
        "{text}"
    );
    assert!(
        has(&s, "OOM kills 0   rate 1,000 searches/s   elapsed 1m 02s"),
        "{text}"
    );
    assert!(has(&s, "RSS and working set, last 29s ─"), "{text}");
    assert!(
        has(&s, "│limit 1.00 GiB"),
        "limit line in the legend:\n{text}"
    );
    assert!(braille(&s) > 20, "chart not drawn:\n{text}");
    assert!(has(&s, "-29s"), "x axis labels:\n{text}");
    assert!(has(&s, "BUILDING 512.0 MiB of 512.0 MiB reached"), "{text}");
    assert!(has(&s, "BUILDING first entry"), "{text}");
    assert!(
        s.last().unwrap().contains("512.0 MiB of 512.0 MiB reached"),
        "newest last:\n{text}"
    );
}

#[test]
fn building_shows_the_fill_rate_and_a_profile_its_phase() {
    let mut st = status(State::Building, 256, "memory-stress-0");
    st.phase = Some(PhaseProgress {
        index: 2,
        count: 3,
        repetition: 1,
        repeat: 3,
        target_bytes: 384 * MIB,
    });
    let m = model(&[("10.0.0.7:50051", Ok(st))], &[]);
    let s = render(&m, 120, 40);
    let text = dump(&s);
    assert!(
        has(
            &s,
            "memory-stress-0  BUILDING  (10.0.0.7:50051)  tree  phase 2/3 rep 1/3"
        ),
        "{text}"
    );
    assert!(has(&s, "target 384.0 MiB"), "phase target:\n{text}");
    assert!(has(&s, "rate fill 1843.2 MiB/s"), "{text}");
    assert!(braille(&s) > 40, "{text}");
}

#[test]
fn three_endpoints_at_80x24_one_failing_fit_in_a_table() {
    let logs = [entry(7, "hello from a")];
    let m = model(
        &[
            ("127.0.0.2:50051", Ok(status(State::Searching, 512, ""))),
            (
                "127.0.0.3:50051",
                Ok(status(
                    State::Building,
                    300,
                    "memory-stress-7d9f8b6c4-x2x9z",
                )),
            ),
            (
                "127.0.0.4:50051",
                Err("cannot reach stressd (connection refused)".into()),
            ),
        ],
        &logs,
    );
    let s = render(&m, 80, 24);
    let text = dump(&s);
    assert!(has(&s, "3 endpoints"), "{text}");
    assert!(has(&s, "NAME"), "{text}");
    assert!(
        has(
            &s,
            "127.0.0.2:50051    SEARCHING  512.0 MiB   520.0 MiB  512.0 MiB   1.00 GiB   0"
        ),
        "{text}"
    );
    // The rate does not fit beside the numbers at 80 columns: it goes below them.
    assert!(has(&s, "1,000 searches/s  tree"), "{text}");
    assert!(
        has(&s, "…s-7d9f8b6c4-x2x9z BUILDING"),
        "pod name keeps its end:\n{text}"
    );
    assert!(has(&s, "fill 1843.2 MiB/s  tree"), "{text}");
    assert!(
        has(
            &s,
            "127.0.0.4:50051    error: cannot reach stressd (connection refused)"
        ),
        "{text}"
    );
    assert!(
        has(
            &s,
            "RSS per endpoint, last 29s (colours as in the table, targets green, limits red)"
        ),
        "{text}"
    );
    assert!(braille(&s) > 20, "{text}");
    assert!(
        !has(&s, "│target"),
        "no legend over a many-endpoint chart:\n{text}"
    );
    assert!(
        has(&s, "127.0.0.2:50051    16:00:07 BUILDING hello from a"),
        "{text}"
    );
}

#[test]
fn three_endpoints_on_a_wide_screen_keep_one_row_each() {
    let m = model(
        &[
            ("127.0.0.2:50051", Ok(status(State::Searching, 512, ""))),
            ("127.0.0.3:50051", Ok(status(State::Searching, 500, ""))),
            ("127.0.0.4:50051", Ok(status(State::Completed, 400, ""))),
        ],
        &[],
    );
    let s = render(&m, 140, 40);
    let text = dump(&s);
    assert!(has(&s, "1.00 GiB   0  1,000 searches/s  tree"), "{text}");
    assert!(
        has(&s, "127.0.0.4:50051    COMPLETED  400.0 MiB   408.0 MiB"),
        "{text}"
    );
    assert!(braille(&s) > 60, "{text}");
}

#[test]
fn an_idle_endpoint_and_one_never_answered() {
    let idle = StatusResponse {
        state: State::Idle as i32,
        rss_bytes: 12 * MIB,
        basis: Some(MemoryBasis {
            limit_bytes: 24 * GIB,
            ..Default::default()
        }),
        ..Default::default()
    };
    let m = model(&[("127.0.0.1:1", Ok(idle))], &[]);
    let s = render(&m, 80, 24);
    let text = dump(&s);
    assert!(has(&s, "127.0.0.1:1  IDLE  tree"), "{text}");
    assert!(
        has(
            &s,
            "RSS 12.0 MiB   working set -   target -   limit 24.00 GiB"
        ),
        "{text}"
    );
    assert!(
        has(&s, "limit 24.00 GiB off scale"),
        "a host limit must not flatten the chart:\n{text}"
    );
    assert!(braille(&s) > 0, "{text}");

    let m = model(&[("127.0.0.1:2", Err("timed out after 2s".into()))], &[]);
    let s = render(&m, 80, 24);
    let text = dump(&s);
    assert!(has(&s, "127.0.0.1:2  -"), "{text}");
    assert!(has(&s, "error: timed out after 2s"), "{text}");
}

#[test]
fn before_the_first_poll_and_on_tiny_screens_nothing_panics() {
    let m = Model::new(Duration::from_secs(300), Instant::now());
    let s = render(&m, 80, 24);
    assert!(has(&s, "waiting for the first answer"), "{}", dump(&s));
    let many: Vec<(String, Result<StatusResponse, String>)> = (0..50)
        .map(|i| {
            (
                format!("127.0.1.{i}:50051"),
                Ok(status(State::Searching, 100 + i, "")),
            )
        })
        .collect();
    let refs: Vec<(&str, Result<StatusResponse, String>)> =
        many.iter().map(|(a, s)| (a.as_str(), s.clone())).collect();
    let m = model(&refs, &[]);
    let s = render(&m, 80, 24);
    assert!(has(&s, "more endpoints"), "{}", dump(&s));
    for (w, h) in [(1, 1), (10, 3), (20, 5), (80, 2)] {
        let _ = render(&m, w, h);
    }
}

#[test]
fn rates_and_names() {
    assert_eq!(panel::activity_rate(1000.4, "searches"), "1,000 searches/s");
    assert_eq!(
        panel::activity_rate(52_310.6, "lookups"),
        "52,311 lookups/s"
    );
    assert_eq!(panel::activity_rate(f64::NAN, ""), "0 searches/s");
    assert_eq!(panel::activity_rate(-3.0, "walk steps"), "0 walk steps/s");
    assert_eq!(panel::fit_name("abc", 5), "abc  ");
    assert_eq!(panel::fit_name("memory-stress-0123", 8), "…ss-0123");
    assert_eq!(panel::workload(Workload::Unspecified as i32), "tree");
    assert_eq!(panel::workload(Workload::Hash as i32), "hash");
    let mut s = StatusResponse::default();
    assert_eq!(panel::phase(&s), "");
    s.phase = Some(PhaseProgress {
        index: 1,
        count: 2,
        repetition: 4,
        repeat: 0,
        target_bytes: 0,
    });
    assert_eq!(panel::phase(&s), "phase 1/2 rep 4/∞");
    s.target_bytes = MIB;
    assert_eq!(
        panel::target(&s),
        Some(MIB),
        "phase without a target falls back to the run's"
    );
}

#[test]
fn a_restart_is_counted_on_the_panel_and_in_the_table_and_logged() {
    let t0 = Instant::now();
    let mut m = Model::new(Duration::from_secs(60), t0);
    let with_id = |addr: &str, id: &str| {
        let mut s = status(State::Searching, 64, "");
        if let Some(i) = s.instance.as_mut() {
            i.instance_id = id.into();
        }
        Sample {
            endpoint: addr.into(),
            status: Ok(s),
            logs: Vec::new(),
        }
    };
    m.apply(vec![with_id("127.0.0.2:1", "old")], t0);
    m.apply(
        vec![with_id("127.0.0.2:1", "new")],
        t0 + Duration::from_secs(1),
    );
    let s = render(&m, 80, 24);
    let text = dump(&s);
    assert!(
        has(&s, "127.0.0.2:1  SEARCHING  tree  restarts 1"),
        "{text}"
    );
    assert!(has(&s, "stressd restarted (new instance id)"), "{text}");

    m.apply(
        vec![with_id("127.0.0.2:1", "new"), with_id("127.0.0.3:1", "x")],
        t0 + Duration::from_secs(2),
    );
    let s = render(&m, 140, 30);
    let text = dump(&s);
    assert!(has(&s, "1,000 searches/s  tree  restarts 1"), "{text}");
    assert!(
        has(&s, "127.0.0.2:1        stressd restarted (new instance id)"),
        "{text}"
    );
}
