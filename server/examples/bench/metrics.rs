//! Row 14: Prometheus `/metrics` on stressd's HTTP port — scrape latency during full-speed
//! builds (against the same client's idle reference from the same run), and the fill rate
//! while a scraper runs, interleaved with fills nobody scrapes.

use crate::daemon::{self, MIB, state_of};
use crate::fill::{FillRun, fill_once, warm_up};
use crate::http::{ScrapeLog, ScrapeSample, Scraper};
use crate::report::{Bound, Row, fmt_num, max, median, percentile, size_name};
use crate::{Ctx, Res, progress};
use memstress_proto::v1 as pb;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Period of the latency scraper (the Status clients of row 6 use the same).
const LATENCY_PERIOD: Duration = Duration::from_millis(10);
/// Bound on the scrape latency p99 during a build.
const P99_BOUND_MS: f64 = 5.0;
/// Bound of the scraped ÷ unscraped fill-rate ratio at one scrape a second.
const MIN_RATIO: f64 = 0.97;
/// Pause after Clear before an idle window starts.
const SETTLE: Duration = Duration::from_millis(200);

/// A time window `[from, to]`.
type Window = (Instant, Instant);

/// Latencies (ms) of the scrapes sent and answered inside any of `windows`.
fn inside(samples: &[ScrapeSample], windows: &[Window]) -> Vec<f64> {
    samples
        .iter()
        .filter(|s| windows.iter().any(|w| s.within(w.0, w.1)))
        .map(|s| s.ms)
        .collect()
}

/// Alternates idle windows and full-speed builds of `mb` MiB until the builds have lasted
/// `want` scrape periods (and at least `min_builds`); returns (build windows, idle windows).
async fn builds_and_idles(
    ctx: &mut Ctx,
    mb: u64,
    want: usize,
    min_builds: usize,
    idle: Duration,
) -> Res<(Vec<Window>, Vec<Window>)> {
    let (mut builds, mut idles) = (Vec::new(), Vec::new());
    let mut build_secs = 0.0;
    let want_secs = want as f64 * LATENCY_PERIOD.as_secs_f64();
    while (build_secs < want_secs || builds.len() < min_builds) && builds.len() < 20 {
        tokio::time::sleep(SETTLE).await;
        let t = Instant::now();
        tokio::time::sleep(idle).await;
        idles.push((t, Instant::now()));
        let t0 = Instant::now();
        daemon::start(&mut ctx.d.client, daemon::start_request(mb, 100)).await?;
        // Status every 10 ms (not 5): the driver's own RPCs load stressd as little as possible.
        daemon::wait_status(
            &mut ctx.d.client,
            Duration::from_millis(10),
            Duration::from_secs(120),
            "SEARCHING",
            |s| state_of(s) == pb::State::Searching,
        )
        .await?;
        let t1 = Instant::now();
        builds.push((t0, t1));
        build_secs += (t1 - t0).as_secs_f64();
        daemon::clear(&mut ctx.d.client).await?;
        progress(&format!(
            "[metrics] build {}: {mb} MiB in {:.0} ms (builds so far {build_secs:.1} s)",
            builds.len(),
            (t1 - t0).as_secs_f64() * 1e3
        ));
    }
    Ok((builds, idles))
}

/// Rows 14a–14c: scrape latency of one client every 10 ms during full-speed builds, and the
/// same client's latency in idle windows between the builds.
pub(crate) async fn scrape_latency(ctx: &mut Ctx) -> Res<Vec<Row>> {
    let mb: u64 = if ctx.quick { 1024 } else { 4096 };
    let want = if ctx.quick { 300 } else { 1000 };
    let min_builds = if ctx.quick { 2 } else { 3 };
    let idle = Duration::from_millis(if ctx.quick { 500 } else { 1000 });
    let scraper = Scraper::start(&ctx.d.http, LATENCY_PERIOD, LATENCY_PERIOD).await?;
    let driven = builds_and_idles(ctx, mb, want, min_builds, idle).await;
    let log = scraper.finish().await?;
    let (builds, idles) = driven?;
    let lat = inside(&log.samples, &builds);
    let idle_lat = inside(&log.samples, &idles);
    progress(&format!(
        "[metrics] {} scrapes during builds (p99 {:.3} ms), {} idle (p99 {:.3} ms), {} reconnects",
        lat.len(),
        percentile(&lat, 99.0),
        idle_lat.len(),
        percentile(&idle_lat, 99.0),
        log.reconnects
    ));
    let bytes: Vec<f64> = log.samples.iter().map(|s| s.bytes as f64).collect();
    let details = json!({
        "http": ctx.d.http,
        "period_ms": LATENCY_PERIOD.as_secs_f64() * 1e3,
        "builds": builds.len(),
        "target_mib": mb,
        "build_ms": builds.iter().map(|w| (w.1 - w.0).as_secs_f64() * 1e3).collect::<Vec<_>>(),
        "idle_window_ms": idle.as_secs_f64() * 1e3,
        "scrapes_total": log.samples.len(),
        "reconnects": log.reconnects,
        "body_bytes_median": median(&bytes),
        "p90_ms": percentile(&lat, 90.0),
        "p999_ms": percentile(&lat, 99.9),
        "max_ms": max(&lat),
        "idle_p50_ms": percentile(&idle_lat, 50.0),
        "idle_max_ms": max(&idle_lat),
    });
    let what = format!("{} full-speed {} builds", builds.len(), size_name(mb));
    Ok(latency_rows(&what, lat, idle_lat, details))
}

/// Rows 14a–14c from the latencies during the builds and in the idle windows.
fn latency_rows(builds: &str, lat: Vec<f64>, idle_lat: Vec<f64>, details: Value) -> Vec<Row> {
    let (n, n_idle) = (lat.len(), idle_lat.len());
    let p99 = percentile(&lat, 99.0);
    let idle_p99 = percentile(&idle_lat, 99.0);
    vec![
        Row::new(
            "14a",
            format!(
                "GET /metrics latency p50, 1 client every 10 ms during {builds} ({n} samples)"
            ),
            percentile(&lat, 50.0),
            "ms",
        )
        .samples(lat.clone())
        .details(details),
        Row::new("14b", format!("GET /metrics latency p99 (same {n} samples)"), p99, "ms")
            .bound(
                Bound::AtMost {
                    value: P99_BOUND_MS,
                },
                format!("≤ {P99_BOUND_MS} ms"),
            )
            .shown(format!(
                "{} (p99.9 {}, max {})",
                fmt_num(p99, "ms"),
                fmt_num(percentile(&lat, 99.9), "ms"),
                fmt_num(max(&lat), "ms")
            ))
            .samples(lat),
        Row::new(
            "14c",
            format!(
                "reference: GET /metrics latency p99, same client, stressd idle between the builds ({n_idle} samples)"
            ),
            idle_p99,
            "ms",
        )
        .shown(format!(
            "{} (p50 {})",
            fmt_num(idle_p99, "ms"),
            fmt_num(percentile(&idle_lat, 50.0), "ms")
        ))
        .samples(idle_lat),
    ]
}

/// Who scrapes during a fill of rows 14d–14e.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scraping {
    /// Nobody.
    Off,
    /// One scraper with this period.
    Every(Duration),
}

/// One fill of rows 14d–14e and the scrapes sent while it grew.
struct ScrapedFill {
    run: FillRun,
    scrapes: usize,
    scrape_ms: Vec<f64>,
}

async fn one_fill(ctx: &mut Ctx, mb: u64, scraping: Scraping) -> Res<ScrapedFill> {
    let scraper = match scraping {
        Scraping::Off => None,
        // The first scrape lands in the first FIRST_SCRAPE_WITHIN of the fill, so every scraped
        // fill is scraped while it grows (a 1 GiB fill takes ~300 ms here).
        Scraping::Every(p) => Some(Scraper::start(&ctx.d.http, p, FIRST_SCRAPE_WITHIN).await?),
    };
    let run = fill_once(&mut ctx.d, daemon::start_request(mb, 100), mb * MIB).await;
    let log = match scraper {
        Some(s) => s.finish().await?,
        None => ScrapeLog::default(),
    };
    let run = run?;
    daemon::clear(&mut ctx.d.client).await?;
    let growth = (
        run.started,
        run.started + Duration::from_secs_f64(run.own_secs),
    );
    let during: Vec<&ScrapeSample> = log
        .samples
        .iter()
        .filter(|s| s.sent >= growth.0 && s.sent <= growth.1)
        .collect();
    Ok(ScrapedFill {
        scrapes: during.len(),
        scrape_ms: during.iter().map(|s| s.ms).collect(),
        run,
    })
}

/// "3" or "1–2": the range of whole counts.
fn span(counts: &[f64]) -> String {
    let lo = counts.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = max(counts);
    if lo == hi {
        format!("{hi:.0}")
    } else {
        format!("{lo:.0}–{hi:.0}")
    }
}

fn fills_json(fills: &[ScrapedFill]) -> serde_json::Value {
    fills
        .iter()
        .map(|f| {
            let mut j = f.run.json();
            j["scrapes_during_growth"] = json!(f.scrapes);
            j["scrape_ms"] = json!(f.scrape_ms);
            j
        })
        .collect()
}

/// A scraped fill's first scrape comes within this long of its start.
const FIRST_SCRAPE_WITHIN: Duration = Duration::from_millis(200);

/// Rows 14d–14e: fill rate with a scraper every 1 s and every 100 ms ÷ without, interleaved.
///
/// 1 GiB fills: 4 GiB fills swing 1.5–3.8 GiB/s from one fill to the next on this VM whatever
/// is scraped (row 13's note), which drowns a 3 % bound; a 1 GiB fill is steady to ~1 %. The
/// first scrape is placed inside the growth, so a 1 s scraper costs every scraped fill one
/// scrape (its worst case: a longer fill spreads one scrape a second over more bytes).
pub(crate) async fn fill_while_scraped(ctx: &mut Ctx) -> Res<Vec<Row>> {
    let mb: u64 = 1024;
    let reps = if ctx.quick { 3 } else { 7 };
    let variants = [
        Scraping::Off,
        Scraping::Every(Duration::from_secs(1)),
        Scraping::Every(Duration::from_millis(100)),
    ];
    let mut got: [Vec<ScrapedFill>; 3] = Default::default();
    warm_up(&mut ctx.d, mb).await?;
    for rep in 0..reps {
        let mut order = [0, 1, 2];
        order.rotate_left(rep % 3);
        for v in order {
            let f = one_fill(ctx, mb, variants[v]).await?;
            progress(&format!(
                "[metrics] {mb} MiB rep {}: {} {:.0} MiB/s ({:.0} ms, {} scrapes during growth)",
                rep + 1,
                match variants[v] {
                    Scraping::Off => "not scraped     ".to_string(),
                    Scraping::Every(p) => format!("scraped every {:>4} ms", p.as_millis()),
                },
                f.run.rate(),
                f.run.own_secs * 1e3,
                f.scrapes
            ));
            got[v].push(f);
        }
    }
    Ok(ratio_rows(&size_name(mb), mb, &got))
}

/// Rows 14d (bound) and 14e (report): scraped ÷ unscraped medians; `got[0]` is unscraped.
fn ratio_rows(size: &str, mb: u64, got: &[Vec<ScrapedFill>; 3]) -> Vec<Row> {
    let rates = |fs: &[ScrapedFill]| fs.iter().map(|f| f.run.rate()).collect::<Vec<f64>>();
    let base = rates(&got[0]);
    let m_base = median(&base);
    let mut rows = Vec::new();
    for (k, (id, what, bound)) in [
        ("14d", "every 1 s", true),
        ("14e", "every 100 ms (10/s)", false),
    ]
    .into_iter()
    .enumerate()
    {
        let fills = &got[k + 1];
        let r = rates(fills);
        let m = median(&r);
        let ratio = m / m_base;
        let counts: Vec<f64> = fills.iter().map(|f| f.scrapes as f64).collect();
        let paired: Vec<f64> = r.iter().zip(&base).map(|(a, b)| a / b).collect();
        let row = Row::new(
            id,
            format!(
                "fill {size} with GET /metrics {what} ÷ not scraped (median of {} each, interleaved)",
                r.len()
            ),
            ratio,
            "×",
        )
        .shown(format!(
            "{ratio:.3}× ({m:.0} vs {m_base:.0} MiB/s; {} scrapes per fill)",
            span(&counts)
        ))
        .samples(paired)
        .details(json!({
            "measured": "median of the scraped rates ÷ median of the unscraped rates; samples are the per-rep ratios",
            "target_mib": mb,
            "scraped_rates_mib_s": r,
            "unscraped_rates_mib_s": base,
            "scraped_runs": fills_json(fills),
            "unscraped_runs": fills_json(&got[0]),
        }));
        rows.push(if bound {
            row.bound(
                Bound::AtLeast { value: MIN_RATIO },
                format!("≥ {MIN_RATIO:.2}×"),
            )
        } else {
            row
        });
    }
    rows
}
