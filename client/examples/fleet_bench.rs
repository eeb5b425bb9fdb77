//! Fleet benchmark (issue 8): 50 small stressd on 127.0.1.1 … 127.0.1.50 sharing one port.
//!
//! 1. `stressctl status` across all 50 against one endpoint: median wall time of the real
//!    binary over several repetitions of each, interleaved in the same run. Bound: 50 endpoints
//!    within 2 × one endpoint + 50 ms.
//! 2. `stressctl logs --follow` merging all 50 while each logs one entry a second (a run with
//!    --log-interval 1 held until stopped): 50 entries/s in total for the duration; every
//!    entry each stressd logged must arrive (compared by sequence number with what each
//!    stressd keeps), with no LOG_ENTRIES_MISSED.
//!
//! cargo build --release --workspace --bins &&
//! cargo run --release -p memstress-client --example fleet_bench -- [--quick] [--out bench/fleet.json]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memstress_proto::v1::{
    StartRequest, StopRequest, WatchLogsRequest, start_request::Target,
    stress_service_client::StressServiceClient,
};
use serde_json::{Value, json};

const ENDPOINTS: usize = 50;

/// stressd and stressctl from the same build as this example (target/<profile>/).
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|p| p.parent()).unwrap();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} missing: cargo build --workspace --bins first",
        p.display()
    );
    p
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts stressd on `ip:port`; `None` if it did not come up.
fn start_stressd(ip: &str, port: u16) -> Option<Daemon> {
    let mut child = Command::new(bin("stressd"))
        .args([
            "--grpc-addr",
            &format!("{ip}:{port}"),
            "--http-addr",
            &format!("{ip}:0"),
        ])
        .args(["--memory-limit", "1Gi"])
        .env_remove("STRESSD_STATE_DIR")
        .env_remove("MEMORY_LIMIT_BYTES")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(" listening grpc=")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    let daemon = Daemon(child);
    rx.recv_timeout(Duration::from_secs(30))
        .ok()
        .map(|()| daemon)
}

/// Fifty stressd on one port of 127.0.1.1 … 127.0.1.50.
fn start_fleet() -> (Vec<Daemon>, Vec<String>) {
    for _ in 0..10 {
        let port = std::net::TcpListener::bind("127.0.1.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ips: Vec<String> = (1..=ENDPOINTS).map(|i| format!("127.0.1.{i}")).collect();
        let daemons: Vec<Option<Daemon>> = ips.iter().map(|ip| start_stressd(ip, port)).collect();
        if daemons.iter().all(Option::is_some) {
            let addrs = ips.iter().map(|ip| format!("{ip}:{port}")).collect();
            return (daemons.into_iter().flatten().collect(), addrs);
        }
    }
    panic!("no port free on all of 127.0.1.1-50");
}

fn addr_args(addrs: &[String]) -> Vec<String> {
    addrs
        .iter()
        .flat_map(|a| ["--addr".to_owned(), a.clone()])
        .collect()
}

/// Wall time of one `stressctl status` against `addrs`, which must succeed.
fn time_status(addrs: &[String]) -> Duration {
    let t = Instant::now();
    let out = Command::new(bin("stressctl"))
        .env_remove("STRESSCTL_ADDR")
        .args(addr_args(addrs))
        .arg("status")
        .output()
        .unwrap();
    let elapsed = t.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// Row 1: status across 50 endpoints against one.
fn bench_status(addrs: &[String], reps: usize) -> Value {
    // Warm-up: page cache, first connections.
    time_status(&addrs[..1]);
    time_status(addrs);
    let (mut one, mut fifty) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        one.push(time_status(&addrs[..1]));
        fifty.push(time_status(addrs));
    }
    let (m1, m50) = (median(one.clone()), median(fifty.clone()));
    let bound = m1 * 2 + Duration::from_millis(50);
    println!(
        "status: 1 endpoint median {:.2} ms, {ENDPOINTS} endpoints median {:.2} ms, bound {:.2} ms: {}",
        ms(m1),
        ms(m50),
        ms(bound),
        if m50 <= bound { "PASS" } else { "FAIL" }
    );
    json!({
        "endpoints": ENDPOINTS,
        "repetitions": reps,
        "one_endpoint_ms": one.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "fifty_endpoints_ms": fifty.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "one_endpoint_median_ms": ms(m1),
        "fifty_endpoints_median_ms": ms(m50),
        "bound_ms": ms(bound),
        "pass": m50 <= bound,
    })
}

async fn client(addr: &str) -> StressServiceClient<tonic::transport::Channel> {
    StressServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

/// Every sequence number `addr` still keeps.
async fn kept_sequences(addr: &str) -> BTreeSet<u64> {
    let mut c = client(addr).await;
    let mut stream = c
        .watch_logs(WatchLogsRequest {
            from_sequence: 0,
            follow: false,
        })
        .await
        .unwrap()
        .into_inner();
    let mut seqs = BTreeSet::new();
    while let Some(e) = stream.message().await.unwrap() {
        if e.sequence > 0 {
            seqs.insert(e.sequence);
        }
    }
    seqs
}

/// Row 2: merged `logs --follow` of 50 endpoints logging one entry a second each.
async fn bench_follow(addrs: &[String], seconds: u64) -> Value {
    let mut follower = Command::new(bin("stressctl"))
        .env_remove("STRESSCTL_ADDR")
        .args(addr_args(addrs))
        .args(["--output", "json", "logs", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let received: Arc<Mutex<Vec<(Instant, Value)>>> = Arc::default();
    let sink = Arc::clone(&received);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                sink.lock().unwrap().push((Instant::now(), v));
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    for a in addrs {
        let req = StartRequest {
            target: Some(Target::MemoryMb(10)),
            duration_seconds: Some(0),
            log_interval_seconds: Some(1),
            search_rate: Some(100),
            ..StartRequest::default()
        };
        client(a).await.start(req).await.unwrap();
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    for a in addrs {
        client(a).await.stop(StopRequest {}).await.unwrap();
    }
    // Let the last entries (STRESS_TEST_STOPPED) arrive, then end the follow.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = follower.kill();
    let _ = follower.wait();
    let _ = reader.join();

    let got = std::mem::take(&mut *received.lock().unwrap());
    let mut by_endpoint: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut missed_events = 0u64;
    let mut in_window = 0usize;
    for (at, v) in got.iter() {
        let Some(endpoint) = v["endpoint"].as_str() else {
            continue;
        };
        if v["operation"] == "LOG_ENTRIES_MISSED" {
            missed_events += 1;
        }
        if let Some(seq) = v["sequence"].as_u64().filter(|s| *s > 0) {
            by_endpoint
                .entry(endpoint.to_owned())
                .or_default()
                .insert(seq);
            if *at >= started && at.duration_since(started) <= Duration::from_secs(seconds) {
                in_window += 1;
            }
        }
    }
    let mut missing = 0usize;
    let mut kept_total = 0usize;
    for a in addrs {
        let kept = kept_sequences(a).await;
        kept_total += kept.len();
        let have = by_endpoint.get(a.as_str()).cloned().unwrap_or_default();
        missing += kept.difference(&have).count();
    }
    let rate = in_window as f64 / seconds as f64;
    let pass = missing == 0 && missed_events == 0 && rate >= ENDPOINTS as f64 * 0.95;
    println!(
        "logs --follow: {ENDPOINTS} endpoints for {seconds} s: {in_window} entries in the window ({rate:.1}/s), \
         {kept_total} logged in all, {missing} missing, {missed_events} LOG_ENTRIES_MISSED: {}",
        if pass { "PASS" } else { "FAIL" }
    );
    json!({
        "endpoints": ENDPOINTS,
        "seconds": seconds,
        "entries_in_window": in_window,
        "entries_per_second": (rate * 10.0).round() / 10.0,
        "entries_logged_by_servers": kept_total,
        "entries_received": got.len(),
        "missing": missing,
        "log_entries_missed_events": missed_events,
        "pass": pass,
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let (_daemons, addrs) = start_fleet();
    println!(
        "{ENDPOINTS} stressd up on {} … {}",
        addrs[0],
        addrs[ENDPOINTS - 1]
    );
    let status = bench_status(&addrs, if quick { 5 } else { 15 });
    let follow = bench_follow(&addrs, if quick { 10 } else { 60 }).await;
    let report = json!({
        "benchmark": "fleet (issue 8)",
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "cpus": std::thread::available_parallelism().map_or(0, usize::from),
        "status_50_endpoints": status,
        "logs_follow_50_endpoints": follow,
    });
    if let Some(path) = out {
        std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap() + "\n").unwrap();
        println!("wrote {path}");
    }
}
