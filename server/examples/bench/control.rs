//! Rows 5 and 6: Stop during a build, and Status latency from concurrent clients during a
//! full-speed build.

use crate::daemon::{self, MIB, connect, rss_of, state_of};
use crate::report::{Bound, Row, fmt_num, max, median, percentile};
use crate::{Ctx, Res, progress};
use memstress_proto::v1 as pb;
use rand::RngExt;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// "RSS does not grow after Stop": growth over the next 50 ms at most this (a full-speed build
/// adds ~100 MiB in 50 ms; a page or two of allocator noise is not growth).
const STOP_GROWTH_TOLERANCE_MIB: f64 = 1.0;

/// Row 5: Stop at random moments of a build.
pub(crate) async fn stop(ctx: &mut Ctx) -> Res<Vec<Row>> {
    let mb: u64 = if ctx.quick { 1024 } else { 4096 };
    let n = if ctx.quick { 5 } else { 20 };
    // Build time of this size, measured by the fill rows (or a conservative guess).
    let build = match ctx.build_secs {
        Some((size, secs)) if secs.is_finite() => secs * mb as f64 / size as f64,
        _ => mb as f64 / 2048.0,
    };
    let mut lat = Vec::new();
    let mut growth = Vec::new();
    let mut runs = Vec::new();
    for i in 0..n {
        let delay = rand::rng().random_range(0.05..0.9) * build;
        daemon::start(&mut ctx.d.client, daemon::start_request(mb, 100)).await?;
        tokio::time::sleep(Duration::from_secs_f64(delay)).await;
        let before = rss_of(ctx.d.pid)?;
        let t0 = Instant::now();
        let resp = daemon::stop(&mut ctx.d.client).await?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let rss0 = rss_of(ctx.d.pid)?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let rss50 = rss_of(ctx.d.pid)?;
        let grew = (rss50 as f64 - rss0 as f64) / MIB as f64;
        let state = pb::State::try_from(resp.state).unwrap_or(pb::State::Unspecified);
        progress(&format!(
            "[stop] {}/{n}: after {:.0} ms at {:.0} MiB: Stop {ms:.1} ms, state {state:?}, RSS +{grew:.2} MiB in the next 50 ms",
            i + 1,
            delay * 1e3,
            before as f64 / MIB as f64
        ));
        runs.push(json!({
            "delay_ms": delay * 1e3,
            "rss_at_stop_mib": before as f64 / MIB as f64,
            "stop_rpc_ms": ms,
            "state_after": format!("{state:?}"),
            "stopped": resp.stopped,
            "rss_right_after_mib": rss0 as f64 / MIB as f64,
            "rss_50ms_after_mib": rss50 as f64 / MIB as f64,
        }));
        lat.push(ms);
        growth.push(grew);
        daemon::clear(&mut ctx.d.client).await?;
    }
    let details = json!({ "target_mib": mb, "expected_build_s": build, "runs": runs });
    let p50 = percentile(&lat, 50.0);
    let p99 = percentile(&lat, 99.0);
    let worst_growth = max(&growth);
    Ok(vec![
        Row::new(
            "5a",
            format!("Stop RPC latency p50, {n} stops during a {} MiB build", mb),
            p50,
            "ms",
        )
        .bound(Bound::AtMost { value: 20.0 }, "≤ 20 ms")
        .samples(lat.clone())
        .details(details),
        Row::new("5b", format!("Stop RPC latency p99 (of {n})"), p99, "ms")
            .bound(Bound::AtMost { value: 20.0 }, "≤ 20 ms")
            .samples_with_max("max", lat),
        Row::new(
            "5c",
            format!("RSS growth in the 50 ms after Stop returned (max of {n})"),
            worst_growth,
            "MiB",
        )
        .bound(
            Bound::AtMost {
                value: STOP_GROWTH_TOLERANCE_MIB,
            },
            format!("does not grow (≤ {STOP_GROWTH_TOLERANCE_MIB} MiB)"),
        )
        .samples(growth),
    ])
}

/// Coordination between the Status clients and the driver.
#[derive(Clone)]
struct Flags {
    barrier: Arc<tokio::sync::Barrier>,
    seen_building: Arc<AtomicBool>,
    build_over: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

impl Flags {
    fn new(parties: usize) -> Self {
        Self {
            barrier: Arc::new(tokio::sync::Barrier::new(parties)),
            seen_building: Arc::new(AtomicBool::new(false)),
            build_over: Arc::new(AtomicBool::new(false)),
            done: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// A Status client thread; it returns its latency samples (ms).
type ClientHandle = std::thread::JoinHandle<Result<Vec<f64>, String>>;

/// Spawns `n` Status clients, each on its own thread, runtime and connection.
fn spawn_clients(n: usize, url: &str, flags: &Flags, record_all: bool) -> Res<Vec<ClientHandle>> {
    let mut handles = Vec::new();
    for i in 0..n {
        let (url, flags) = (url.to_string(), flags.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("status-client-{i}"))
                .spawn(move || status_client(url, flags, record_all).map_err(|e| e.to_string()))?,
        );
    }
    Ok(handles)
}

/// Joins the clients and collects their samples.
async fn join_clients(handles: Vec<ClientHandle>) -> Res<Vec<f64>> {
    let mut all = Vec::new();
    for h in handles {
        let got = tokio::task::spawn_blocking(move || h.join())
            .await?
            .map_err(|_| "a status client panicked")??;
        all.extend(got);
    }
    Ok(all)
}

/// One Status client on its own thread, runtime and connection.
/// With `record_all` every sample counts (the idle reference); otherwise only those answered
/// while BUILDING.
fn status_client(url: String, flags: Flags, record_all: bool) -> Res<Vec<f64>> {
    let Flags {
        barrier,
        seen_building,
        build_over,
        done,
    } = flags;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let connected = connect(&url).await;
        barrier.wait().await;
        let mut c = connected?;
        // Warm the connection before measuring.
        daemon::status(&mut c).await?;
        // Independent pollers: each client gets its own random phase within the 10 ms period
        // (rather than all four firing at the same instant).
        let phase = Duration::from_secs_f64(rand::rng().random_range(0.0..0.010));
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + phase,
            Duration::from_millis(10),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lat = Vec::new();
        while !done.load(Ordering::Acquire) {
            tick.tick().await;
            let t0 = Instant::now();
            let s = daemon::status(&mut c).await?;
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            if record_all {
                lat.push(ms);
                continue;
            }
            match state_of(&s) {
                pb::State::Building => {
                    seen_building.store(true, Ordering::Release);
                    lat.push(ms);
                }
                pb::State::Searching if seen_building.load(Ordering::Acquire) => {
                    build_over.store(true, Ordering::Release);
                }
                _ => {}
            }
        }
        Ok(lat)
    })
}

/// Row 6: Status latency from 4 concurrent clients every 10 ms during full-speed builds.
pub(crate) async fn status_latency(ctx: &mut Ctx) -> Res<Vec<Row>> {
    const CLIENTS: usize = 4;
    let mb: u64 = if ctx.quick { 1024 } else { 4096 };
    let want = if ctx.quick { 300 } else { 1000 };
    let mut lat: Vec<f64> = Vec::new();
    let mut builds = 0;
    let min_builds = if ctx.quick { 1 } else { 2 };
    while (lat.len() < want || builds < min_builds) && builds < 10 {
        builds += 1;
        let flags = Flags::new(CLIENTS + 1);
        let handles = spawn_clients(CLIENTS, &ctx.d.url, &flags, false)?;
        flags.barrier.wait().await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        let started = daemon::start(&mut ctx.d.client, daemon::start_request(mb, 100)).await;
        let t0 = Instant::now();
        while started.is_ok()
            && !flags.build_over.load(Ordering::Acquire)
            && t0.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        flags.done.store(true, Ordering::Release);
        let got = join_clients(handles).await?;
        let this_build = got.len();
        lat.extend(got);
        started?;
        daemon::clear(&mut ctx.d.client).await?;
        progress(&format!(
            "[status] build {builds}: {this_build} samples while BUILDING (total {})",
            lat.len()
        ));
    }
    // Reference: the same clients against an idle stressd (no build), same duration.
    let flags = Flags::new(CLIENTS + 1);
    let handles = spawn_clients(CLIENTS, &ctx.d.url, &flags, true)?;
    flags.barrier.wait().await;
    tokio::time::sleep(Duration::from_millis(if ctx.quick { 1000 } else { 2500 })).await;
    flags.done.store(true, Ordering::Release);
    let idle = join_clients(handles).await?;
    progress(&format!(
        "[status] idle reference: {} samples, p50 {:.3} ms, p99 {:.3} ms",
        idle.len(),
        percentile(&idle, 50.0),
        percentile(&idle, 99.0)
    ));
    let p50 = percentile(&lat, 50.0);
    let p99 = percentile(&lat, 99.0);
    let details = json!({
        "clients": CLIENTS,
        "period_ms": 10,
        "builds": builds,
        "target_mib": mb,
        "p90_ms": percentile(&lat, 90.0),
        "p999_ms": percentile(&lat, 99.9),
        "max_ms": max(&lat),
        "median_ms": median(&lat),
    });
    let n = lat.len();
    Ok(vec![
        Row::new("6a", format!("Status latency p50, {CLIENTS} clients × every 10 ms during {builds} full-speed {mb} MiB builds ({n} samples)"), p50, "ms")
            .samples(lat.clone())
            .details(details),
        Row::new("6b", format!("Status latency p99 (same {n} samples)"), p99, "ms")
            .bound(Bound::AtMost { value: 2.0 }, "≤ 2 ms")
            .shown(format!("{} (p99.9 {}, max {})", fmt_num(p99, "ms"), fmt_num(percentile(&lat, 99.9), "ms"), fmt_num(max(&lat), "ms")))
            .samples(lat),
        Row::new("6c", format!("reference: Status latency p99, same clients, stressd idle ({} samples)", idle.len()), percentile(&idle, 99.0), "ms")
            .shown(format!("{} (p50 {})", fmt_num(percentile(&idle, 99.0), "ms"), fmt_num(percentile(&idle, 50.0), "ms")))
            .samples(idle),
    ])
}
