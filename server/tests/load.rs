//! Load tests for bounded resources (issue 9): many log watchers, watchers that never read,
//! idle connections, and shutdown with a silent connection. Loopback only, bounded in time
//! and count; each prints its measured numbers (`cargo test --test load -- --nocapture`).
//! They run one at a time (a lock), so their numbers do not disturb each other.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use memstress_proto::v1 as pb;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::Code;

/// One test at a time (each has its own runtime; tokio's mutex works across them and is not
/// poisoned by a failed test).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Raises RLIMIT_NOFILE (soft up to hard) for this process and the stressd it spawns;
/// returns the soft limit now in force.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a valid, owned struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// How many connections a test may open given the descriptor limit (two ends of each
/// connection live on this machine: ours and stressd's, in separate processes).
fn connections_allowed(want: usize) -> usize {
    let soft = usize::try_from(raise_nofile()).unwrap_or(usize::MAX);
    let allowed = want.min(soft.saturating_sub(200));
    if allowed < want {
        println!(
            "NOTE: RLIMIT_NOFILE hard limit {soft} allows only {allowed} of {want} connections"
        );
    }
    allowed
}

fn spawn_with_args(args: &[&str]) -> Stressd {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    Stressd::spawn_with(move |cmd| {
        cmd.args(&args);
    })
}

fn metric(http: &str, name: &str) -> f64 {
    http_get(http, "/metrics")
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

// ---- raw HTTP/2: a WatchLogs call from a client that never reads ---------------------------

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

fn literal(name: &str, value: &str) -> Vec<u8> {
    // HPACK literal header field without indexing, new name (short strings only).
    let mut h = vec![0, u8::try_from(name.len()).unwrap()];
    h.extend(name.as_bytes());
    h.push(u8::try_from(value.len()).unwrap());
    h.extend(value.as_bytes());
    h
}

/// One connection with the preface, SETTINGS and `calls` gRPC calls to `path` with the
/// protobuf `message`. With `zero_window` the server may send no DATA at all (and the caller
/// never reads the socket nor sends WINDOW_UPDATE).
fn raw_grpc_calls(
    addr: &str,
    path: &str,
    message: &[u8],
    calls: u32,
    zero_window: bool,
) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    let settings: &[u8] = if zero_window {
        &[0, 4, 0, 0, 0, 0] // INITIAL_WINDOW_SIZE = 0
    } else {
        &[]
    };
    out.extend(frame(4, 0, 0, settings));
    let mut headers = Vec::new();
    for (n, v) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        headers.extend(literal(n, v));
    }
    let mut body = vec![0];
    body.extend(u32::try_from(message.len()).unwrap().to_be_bytes());
    body.extend(message);
    for i in 0..calls {
        let stream = 2 * i + 1;
        out.extend(frame(1, 0x4, stream, &headers)); // HEADERS, END_HEADERS
        out.extend(frame(0, 0x1, stream, &body)); // DATA, END_STREAM
    }
    s.write_all(&out).unwrap();
    s
}

// ---- (a) --------------------------------------------------------------------------------

/// Follows the log until STRESS_TEST_STOPPED of `run`; returns (sequences seen, entries
/// missed as announced).
async fn follow_until_stopped(
    mut c: memstress_proto::v1::stress_service_client::StressServiceClient<
        tonic::transport::Channel,
    >,
) -> Result<(Vec<u64>, u64), tonic::Status> {
    let mut s = c
        .watch_logs(pb::WatchLogsRequest {
            from_sequence: 0,
            follow: true,
        })
        .await?
        .into_inner();
    let (mut seqs, mut missed) = (Vec::new(), 0);
    while let Some(e) = s.message().await? {
        if e.operation == pb::Operation::LogEntriesMissed as i32 {
            missed += e.missed;
            continue;
        }
        seqs.push(e.sequence);
        if e.operation == pb::Operation::StressTestStopped as i32 {
            return Ok((seqs, missed));
        }
    }
    Err(tonic::Status::aborted(
        "stream ended before STRESS_TEST_STOPPED",
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_watchers_and_1000_status_per_second_during_a_gib_run() {
    let _serial = SERIAL.lock().await;
    const WATCHERS: usize = 200;
    const WINDOW: Duration = Duration::from_secs(30);
    let n = connections_allowed(WATCHERS + 10);
    let d = spawn_with_args(&[]);
    let mut c = d.client().await;
    c.start(pb::StartRequest {
        log_interval_seconds: Some(1),
        ..start_mb(1024)
    })
    .await
    .unwrap();
    wait_state(&mut c, pb::State::Searching, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_run = d.rss();

    // each watcher on its own connection
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS.min(n) {
        watchers.push(tokio::spawn(follow_until_stopped(d.client().await)));
    }
    let (calls, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let t0 = Instant::now();
    let mut pollers = Vec::new();
    for _ in 0..4 {
        let (mut c, calls, errors) = (c.clone(), Arc::clone(&calls), Arc::clone(&errors));
        pollers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(4)); // 250/s each
            while t0.elapsed() < WINDOW {
                tick.tick().await;
                if c.status(pb::StatusRequest {}).await.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                calls.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut rss_max = 0;
    while t0.elapsed() < WINDOW {
        rss_max = rss_max.max(d.rss());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for p in pollers {
        p.await.unwrap();
    }
    let elapsed = t0.elapsed().as_secs_f64();
    c.stop(pb::StopRequest {}).await.unwrap();
    let (mut stream_errors, mut gaps, mut missed_total) = (0, 0, 0);
    for w in watchers {
        match w.await.unwrap() {
            Ok((seqs, missed)) => {
                missed_total += missed;
                let set: BTreeSet<u64> = seqs.iter().copied().collect();
                let (lo, hi) = (seqs[0], seqs[seqs.len() - 1]);
                let absent = (hi - lo + 1) - set.len() as u64;
                if set.len() != seqs.len() || (absent > 0 && missed < absent) {
                    gaps += 1;
                }
            }
            Err(_) => stream_errors += 1,
        }
    }
    let growth = rss_max.saturating_sub(rss_run);
    let calls = calls.load(Ordering::Relaxed);
    let errors = errors.load(Ordering::Relaxed);
    println!(
        "LOAD a: {} watchers, {calls} Status in {elapsed:.1} s ({:.0}/s), {errors} Status errors, \
         {stream_errors} stream errors, {gaps} silent gaps, {missed_total} entries announced missed; \
         RSS with the run {:.1} MiB, max during load {:.1} MiB, growth {:.2} MiB (bound 16)",
        WATCHERS.min(n),
        calls as f64 / elapsed,
        rss_run as f64 / MIB as f64,
        rss_max as f64 / MIB as f64,
        growth as f64 / MIB as f64
    );
    assert_eq!(errors + stream_errors, 0, "RPC errors");
    assert_eq!(gaps, 0, "silent gaps");
    assert!(growth <= 16 * MIB, "RSS growth {growth} B");
}

// ---- (b) --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_2000_watchers_that_never_read() {
    let _serial = SERIAL.lock().await;
    let n: usize = 2000;
    raise_nofile();
    let cap = n.to_string();
    let d = spawn_with_args(&["--max-watchers", &cap, "--max-connections", "4096"]);
    let mut c = d.client().await;
    // some history to replay, and a run that keeps logging while nobody reads
    c.start(pb::StartRequest {
        log_interval_seconds: Some(1),
        ..start_mb(32)
    })
    .await
    .unwrap();
    wait_state(&mut c, pb::State::Searching, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss0 = d.rss();
    let t0 = Instant::now();
    let follow = [0x10, 0x01]; // WatchLogsRequest { follow: true }
    // 2,000 streams on 20 connections (100 each, within HTTP/2's usual concurrency)
    let socks: Vec<TcpStream> = (0..n.div_ceil(100))
        .map(|i| {
            let calls = u32::try_from((n - i * 100).min(100)).unwrap();
            raw_grpc_calls(
                &d.grpc,
                "/memstress.v1.StressService/WatchLogs",
                &follow,
                calls,
                true,
            )
        })
        .collect();
    // wait until all are served (the gauge counts streams being served)
    let mut served = 0.0;
    while t0.elapsed() < Duration::from_secs(20) {
        served = metric(&d.http, "memstress_log_watchers");
        if served >= n as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let opened = t0.elapsed();
    // entries keep coming for a while, pumps stall on zero windows
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss1 = d.rss();
    let refused = c
        .watch_logs(pb::WatchLogsRequest {
            from_sequence: 0,
            follow: true,
        })
        .await
        .err()
        .unwrap();
    let socks_n = socks.len();
    drop(socks);
    let t1 = Instant::now();
    let mut left = served;
    while t1.elapsed() < Duration::from_secs(10) && left > 0.0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = metric(&d.http, "memstress_log_watchers");
    }
    let growth = rss1.saturating_sub(rss0);
    println!(
        "LOAD b: {n} never-reading watchers (streams on {} connections) served={served} (opened in {:.1} s); RSS {:.1} -> {:.1} MiB, \
         growth {:.2} MiB (bound 64), {:.1} KiB per watcher; one more: {:?} {:?}; after they \
         disconnected: {left} watchers after {:.1} s",
        socks_n,
        opened.as_secs_f64(),
        rss0 as f64 / MIB as f64,
        rss1 as f64 / MIB as f64,
        growth as f64 / MIB as f64,
        growth as f64 / 1024.0 / n as f64,
        refused.code(),
        refused.message(),
        t1.elapsed().as_secs_f64()
    );
    assert_eq!(served, n as f64, "every watcher served");
    assert!(growth <= 64 * MIB, "RSS growth {growth} B");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("--max-watchers"),
        "{}",
        refused.message()
    );
    assert_eq!(left, 0.0, "slots released on disconnect");
}

// ---- (c) --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_idle_connections_are_closed_by_the_idle_timeout() {
    let _serial = SERIAL.lock().await;
    let n = connections_allowed(500);
    let d = spawn_with_args(&["--idle-timeout", "2s"]);
    // a follow stream that waits quietly is not idle
    let mut c = d.client().await;
    let mut quiet = c
        .watch_logs(pb::WatchLogsRequest {
            from_sequence: 0,
            follow: true,
        })
        .await
        .unwrap()
        .into_inner();
    let t0 = Instant::now();
    // n connections that make one call (a Status), read its answer, then say nothing
    let socks: Vec<TcpStream> = (0..n)
        .map(|_| raw_grpc_calls(&d.grpc, "/memstress.v1.StressService/Status", &[], 1, false))
        .collect();
    let opened = t0.elapsed();
    let readers: Vec<_> = socks
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
                let mut buf = [0u8; 4096];
                // the Status answer, then only the close ends this
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => return Some(t0.elapsed()),
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                            return Some(t0.elapsed());
                        }
                        Err(_) => return None,
                    }
                }
            })
        })
        .collect();
    let closed: Vec<Duration> = readers
        .into_iter()
        .filter_map(|r| r.join().unwrap())
        .collect();
    let last = closed.iter().max().copied().unwrap_or_default();
    // the quiet follower is still there: it gets the next entry
    c.start(pb::StartRequest {
        duration_seconds: Some(0),
        ..start_mb(16)
    })
    .await
    .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), quiet.message()).await;
    let follower_alive = matches!(next, Ok(Ok(Some(_))));
    println!(
        "LOAD c: {n} idle connections opened in {:.2} s, {} closed by --idle-timeout 2s, the last \
         {:.2} s after the first was opened; quiet follower alive after {:.1} s: {follower_alive}",
        opened.as_secs_f64(),
        closed.len(),
        last.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(closed.len(), n, "every idle connection closed");
    assert!(follower_alive, "a quiet follow stream is not idle");
}

// ---- (d) --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d_sigterm_with_a_silent_connection_exits_within_a_second() {
    let _serial = SERIAL.lock().await;
    let mut d = spawn_with_args(&[]);
    let _ = d.client().await; // serving
    let silent_grpc = TcpStream::connect(&d.grpc).unwrap();
    let silent_http = TcpStream::connect(&d.http).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    d.signal(libc::SIGTERM);
    let status = loop {
        if let Some(status) = d.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(6),
            "stressd did not exit"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = t0.elapsed();
    println!(
        "LOAD d: SIGTERM with a silent gRPC and a silent HTTP connection open: exited in {:.3} s ({status})",
        took.as_secs_f64()
    );
    drop((silent_grpc, silent_http));
    assert!(status.success(), "{status}");
    assert!(took <= Duration::from_secs(1), "exit took {took:?}");
}
