//! Rows 7 and 8: start-up (idle RSS, time to health SERVING) and leaks over many runs.

use crate::daemon::{self, History, MIB, launch, rss_of};
use crate::report::{Bound, Row, median};
use crate::{Ctx, Res, progress};
use serde_json::json;
use std::time::{Duration, Instant};
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How long after start-up the idle RSS is read.
pub(crate) const IDLE_SETTLE: Duration = Duration::from_millis(250);

/// A loopback port that was free a moment ago.
fn free_port() -> Res<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Polls connect + Check("") until SERVING; returns the time since spawn.
async fn time_to_serving(url: &str, spawned_at: Instant) -> Res<Duration> {
    let ep = Endpoint::from_shared(url.to_string())?.connect_timeout(Duration::from_millis(200));
    let mut client: Option<HealthClient<tonic::transport::Channel>> = None;
    loop {
        if spawned_at.elapsed() > Duration::from_secs(10) {
            return Err("stressd was not SERVING within 10 s of spawn".into());
        }
        if client.is_none() {
            client = ep.connect().await.ok().map(HealthClient::new);
        }
        if let Some(c) = client.as_mut() {
            match c
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
            {
                Ok(r) if r.get_ref().status == ServingStatus::Serving as i32 => {
                    return Ok(spawned_at.elapsed());
                }
                Ok(_) => {}
                Err(_) => client = None,
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Row 7: idle RSS and time from exec to health SERVING over fresh spawns.
pub(crate) async fn idle(ctx: &mut Ctx) -> Res<Vec<Row>> {
    let n = if ctx.quick { 3 } else { 5 };
    let mut rss = Vec::new();
    let mut ready = Vec::new();
    for i in 0..n {
        let port = free_port()?;
        // Start-up as measured before the history existed: no --state-dir (see BENCHMARKS.md).
        let launched = launch(&ctx.stressd, &format!("127.0.0.1:{port}"), History::Off)?;
        let t = time_to_serving(&format!("http://127.0.0.1:{port}"), launched.spawned_at).await?;
        let d = launched.ready().await?;
        tokio::time::sleep(IDLE_SETTLE).await;
        let r = rss_of(d.pid)? as f64 / MIB as f64;
        drop(d);
        let ms = t.as_secs_f64() * 1e3;
        progress(&format!(
            "[idle] spawn {}: SERVING after {ms:.1} ms, idle RSS {r:.2} MiB",
            i + 1
        ));
        rss.push(r);
        ready.push(ms);
    }
    let med_rss = median(&rss);
    let med_ready = median(&ready);
    Ok(vec![
        Row::new(
            "7a",
            format!("idle RSS after start-up (median of {n} spawns)"),
            med_rss,
            "MiB",
        )
        .bound(Bound::AtMost { value: 8.0 }, "≤ 8 MiB")
        .samples_with_max("max", rss),
        Row::new(
            "7b",
            format!("exec → gRPC health SERVING (median of {n} spawns)"),
            med_ready,
            "ms",
        )
        .bound(Bound::AtMost { value: 50.0 }, "≤ 50 ms")
        .samples_with_max("max", ready),
    ])
}

/// Row 8: Start/Clear cycles on a fresh stressd; idle RSS after the last vs after the first.
pub(crate) async fn leak(ctx: &mut Ctx) -> Res<Vec<Row>> {
    let cycles = if ctx.quick { 20 } else { 200 };
    let mb = 256;
    let mut d = daemon::spawn(&ctx.stressd).await?;
    tokio::time::sleep(IDLE_SETTLE).await;
    let startup = rss_of(d.pid)?;
    daemon::check_history(&mut d, History::On).await?;
    let mut first = 0u64;
    let mut logs_first = (0, 0);
    let mut trend = Vec::new();
    let t0 = Instant::now();
    for i in 1..=cycles {
        daemon::start(&mut d.client, daemon::start_request(mb, 100)).await?;
        daemon::wait_searching(&mut d.client, Duration::from_secs(30)).await?;
        daemon::clear(&mut d.client).await?;
        if i == 1 || i == cycles {
            tokio::time::sleep(IDLE_SETTLE).await;
        }
        let r = rss_of(d.pid)?;
        if i == 1 {
            first = r;
            logs_first = daemon::kept_logs(&mut d.client).await?;
        }
        if i == 1 || i % 20 == 0 || i == cycles {
            trend.push(json!({ "cycle": i, "rss_mib": r as f64 / MIB as f64 }));
        }
        if i % 50 == 0 {
            progress(&format!(
                "[leak] {i}/{cycles} cycles, idle RSS {:.2} MiB",
                r as f64 / MIB as f64
            ));
        }
    }
    tokio::time::sleep(IDLE_SETTLE).await;
    let last = rss_of(d.pid)?;
    let logs_last = daemon::kept_logs(&mut d.client).await?;
    let grew = (last as f64 - first as f64) / MIB as f64;
    let new_entries = logs_last.0.saturating_sub(logs_first.0);
    let per_entry = (last as f64 - first as f64) / new_entries.max(1) as f64;
    progress(&format!(
        "[leak] {cycles} cycles in {:.1} s: idle RSS {:.2} → {:.2} MiB; stressd keeps {} log entries ({} more than after the 1st cycle; {per_entry:.0} B of RSS growth per new entry)",
        t0.elapsed().as_secs_f64(),
        first as f64 / MIB as f64,
        last as f64 / MIB as f64,
        logs_last.0,
        new_entries
    ));
    Ok(vec![
        Row::new(
            "8",
            format!("idle RSS after {cycles} Start/Clear cycles of {mb} MiB − after the 1st"),
            grew,
            "MiB",
        )
        .bound(Bound::AbsAtMost { value: 4.0 }, "within ±4 MiB")
        .shown(format!(
            "{grew:+.2} MiB ({:.2} → {:.2} MiB)",
            first as f64 / MIB as f64,
            last as f64 / MIB as f64
        ))
        .samples(vec![grew])
        .details(json!({
            "startup_rss_mib": startup as f64 / MIB as f64,
            "after_first_mib": first as f64 / MIB as f64,
            "after_last_mib": last as f64 / MIB as f64,
            "trend": trend,
            "seconds": t0.elapsed().as_secs_f64(),
        })),
    ])
}
