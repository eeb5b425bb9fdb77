//! Rows 3, 10 and 11: target accuracy, ramp-rate fidelity, and CPU use while holding.

use crate::daemon::{self, MIB, cpu_seconds_of, rss_of};
use crate::fill::fill_once;
use crate::report::{Bound, Row, fmt_num, median, size_name};
use crate::sampler::Sampler;
use crate::{Ctx, Res, progress};
use serde_json::json;
use std::time::{Duration, Instant};

/// A hold configuration of row 11.
struct HoldConfig {
    id: &'static str,
    what: &'static str,
    search_rate: Option<u64>,
    keep_hot: bool,
    log_interval: Option<u32>,
}

/// Row 3: steady RSS − target over targets × payload sizes.
pub(crate) async fn accuracy(ctx: &mut Ctx) -> Res<Vec<Row>> {
    let targets: &[u64] = if ctx.quick {
        &[64, 1024]
    } else {
        &[64, 1024, 4096]
    };
    let payloads: [u32; 4] = [4, 100, 1024, 65_536];
    let mut rows = Vec::new();
    let mut letter = b'a';
    for &mb in targets {
        for kb in payloads {
            let target = mb * MIB;
            let run = fill_once(&mut ctx.d, daemon::start_request(mb, kb), target).await?;
            daemon::clear(&mut ctx.d.client).await?;
            let err = (run.steady_rss as f64 - target as f64) / MIB as f64;
            let limit = (0.005 * mb as f64).max(2.0);
            progress(&format!(
                "[accuracy] {} × {kb} KiB: RSS − target {err:+.3} MiB ({} nodes)",
                size_name(mb),
                run.nodes
            ));
            let id = format!("3{}", char::from(letter));
            letter += 1;
            rows.push(
                Row::new(
                    &id,
                    format!(
                        "steady RSS − target, {} target × {kb} KiB payload",
                        size_name(mb)
                    ),
                    err,
                    "MiB",
                )
                .bound(
                    Bound::AbsAtMost { value: limit },
                    format!("within ±{}", fmt_num(limit, "MiB")),
                )
                .shown(format!("{err:+.3} MiB ({} nodes)", run.nodes))
                .samples(vec![err])
                .details(json!({
                    "target_mib": mb,
                    "payload_kb": kb,
                    "steady_rss_bytes": run.steady_rss,
                    "target_bytes": target,
                    "nodes": run.nodes,
                    "fill_ms": run.own_secs * 1e3,
                })),
            );
        }
    }
    Ok(rows)
}

/// Row 10: achieved build rate at asked ramp rates.
pub(crate) async fn ramp(ctx: &mut Ctx) -> Res<Vec<Row>> {
    let reps = if ctx.quick { 1 } else { 3 };
    let plan: [(f64, f64); 3] = [(10.0, 4.0), (100.0, 3.0), (1000.0, 3.0)];
    let mut rows = Vec::new();
    for (i, (rate, secs)) in plan.into_iter().enumerate() {
        let mut got = Vec::new();
        let mut runs = Vec::new();
        let mut halves_all = Vec::new();
        for rep in 0..reps {
            let base = rss_of(ctx.d.pid)?;
            let mb = base.div_ceil(MIB) + (rate * secs) as u64;
            let target = mb * MIB;
            let mut req = daemon::start_request(mb, 100);
            req.ramp_mb_per_second = rate;
            let sampler = Sampler::start(ctx.d.pid, Duration::from_millis(1))?;
            let t0 = Instant::now();
            let res = match daemon::start(&mut ctx.d.client, req).await {
                Ok(_) => {
                    daemon::wait_searching(
                        &mut ctx.d.client,
                        Duration::from_secs_f64(secs * 4.0 + 10.0),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            tokio::time::sleep(Duration::from_millis(10)).await;
            let samples = sampler.finish();
            let st = res?;
            daemon::clear(&mut ctx.d.client).await?;
            // From the first sample 2.5 % into the growth to the first within a page of the target.
            let grow = target.saturating_sub(base);
            let a = samples
                .first_at_least(t0, base + grow / 40)
                .ok_or("RSS never started growing")?;
            let b = samples
                .first_at_least(t0, target - 4096)
                .or_else(|| samples.first_at_least(t0, samples.max().saturating_sub(4096)))
                .ok_or("no RSS samples")?;
            let dt = b.0.duration_since(a.0).as_secs_f64();
            let achieved = (b.1 as f64 - a.1 as f64) / MIB as f64 / dt;
            // The same split in two halves of the growth (shows where a shortfall comes from).
            let mid = samples
                .first_at_least(a.0, a.1 + (b.1 - a.1) / 2)
                .unwrap_or(b);
            let half_rate = |from: (Instant, u64), to: (Instant, u64)| {
                (to.1 as f64 - from.1 as f64)
                    / MIB as f64
                    / to.0.duration_since(from.0).as_secs_f64()
            };
            let halves = (half_rate(a, mid), half_rate(mid, b));
            halves_all.push(halves);
            progress(&format!(
                "[ramp] {rate} MiB/s rep {}: achieved {achieved:.2} MiB/s over {dt:.2} s (halves {:.1} / {:.1}; Status fill_rate {:.2})",
                rep + 1,
                halves.0,
                halves.1,
                st.fill_rate_mb_per_second
            ));
            got.push(achieved);
            runs.push(json!({
                "target_mib": mb,
                "rss_before_mib": base as f64 / MIB as f64,
                "measured_from_mib": a.1 as f64 / MIB as f64,
                "measured_to_mib": b.1 as f64 / MIB as f64,
                "seconds": dt,
                "achieved_mib_s": achieved,
                "first_half_mib_s": halves.0,
                "second_half_mib_s": halves.1,
                "status_fill_rate_mib_s": st.fill_rate_mb_per_second,
                "status_time_to_target_ms": st.time_to_target_ms,
            }));
        }
        let med = median(&got);
        let id = format!("10{}", ['a', 'b', 'c'][i]);
        rows.push(
            Row::new(
                &id,
                format!("ramp {rate} MiB/s: achieved average rate from RSS (median of {reps})"),
                med,
                "MiB/s",
            )
            .bound(
                Bound::WithinPercent {
                    target: rate,
                    percent: 5.0,
                },
                format!("{:.1}–{:.1} MiB/s (±5%)", rate * 0.95, rate * 1.05),
            )
            .shown(format!(
                "{} ({:+.1}%; 1st half {:.0}, 2nd half {:.0} MiB/s)",
                fmt_num(med, "MiB/s"),
                (med / rate - 1.0) * 100.0,
                median(&halves_all.iter().map(|h| h.0).collect::<Vec<_>>()),
                median(&halves_all.iter().map(|h| h.1).collect::<Vec<_>>())
            ))
            .samples(got)
            .details(json!({ "runs": runs })),
        );
    }
    Ok(rows)
}

/// Row 11: CPU use while holding 1 GiB.
pub(crate) async fn hold_cpu(ctx: &mut Ctx) -> Res<Vec<Row>> {
    let window = Duration::from_secs(if ctx.quick { 2 } else { 3 });
    let mut rows = Vec::new();
    let configs = [
        HoldConfig {
            id: "11a",
            what: "default search_rate (1000/s)",
            search_rate: None,
            keep_hot: false,
            log_interval: None,
        },
        HoldConfig {
            id: "11b",
            what: "search_rate 0 (unthrottled)",
            search_rate: Some(0),
            keep_hot: false,
            log_interval: None,
        },
        HoldConfig {
            id: "11c",
            what: "keep_hot, log interval 1 s",
            search_rate: None,
            keep_hot: true,
            log_interval: Some(1),
        },
    ];
    for HoldConfig {
        id,
        what,
        search_rate,
        keep_hot,
        log_interval,
    } in configs
    {
        let mut req = daemon::start_request(1024, 100);
        req.search_rate = search_rate;
        req.keep_hot = keep_hot;
        req.log_interval_seconds = log_interval;
        daemon::start(&mut ctx.d.client, req).await?;
        daemon::wait_searching(&mut ctx.d.client, Duration::from_secs(60)).await?;
        // Let the hold settle (and keep_hot pass its first interval).
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let s0 = daemon::status(&mut ctx.d.client).await?;
        let p0 = cpu_seconds_of(ctx.d.pid)?;
        let t0 = Instant::now();
        tokio::time::sleep(window).await;
        let s1 = daemon::status(&mut ctx.d.client).await?;
        let p1 = cpu_seconds_of(ctx.d.pid)?;
        let wall = t0.elapsed().as_secs_f64();
        daemon::clear(&mut ctx.d.client).await?;
        let pct = (s1.process_cpu_seconds - s0.process_cpu_seconds) / wall * 100.0;
        let proc_pct = (p1 - p0) / wall * 100.0;
        let searches = s1.searches.saturating_sub(s0.searches) as f64 / wall;
        progress(&format!(
            "[hold] {what}: {pct:.1}% of a core (/proc/stat {proc_pct:.1}%), {searches:.0} searches/s"
        ));
        rows.push(
            Row::new(
                id,
                format!("CPU while holding 1 GiB, {what}"),
                pct,
                "% of a core",
            )
            .shown(format!("{pct:.1}% of a core ({searches:.0} searches/s)"))
            .samples(vec![pct])
            .details(json!({
                "window_s": wall,
                "status_cpu_seconds_delta": s1.process_cpu_seconds - s0.process_cpu_seconds,
                "proc_stat_percent": proc_pct,
                "searches_per_second": searches,
                "status_searches_per_second": s1.searches_per_second,
            })),
        );
    }
    Ok(rows)
}
