//! Row 15: every workload (tree, list, hash, matrix) against the tree's bounds — fill rate
//! against the raw first-touch rate of the same run, steady RSS − target from 64 MiB to 4 GiB,
//! the release after Clear, and (reported only) what an unthrottled hold does per second.

use crate::daemon::{self, MIB};
use crate::fill::{Release, clear_and_watch, fill_once, raw_first_touch};
use crate::report::{Bound, Row, fmt_num, max, median, size_name};
use crate::{Ctx, Res, progress};
use memstress_proto::v1 as pb;
use serde_json::json;
use std::time::Duration;

/// The fill size the rate and release rows use.
const FILL_MB: u64 = 1024;
/// Extra accuracy runs, one each, (MiB, payload KiB): the range is 64 MiB to 4 GiB,
/// and 4 KiB payloads make bookkeeping (nodes, entries, buckets) weigh the most.
const EDGES: [(u64, u32); 4] = [(64, 100), (64, 4), (4096, 100), (4096, 4)];
/// The hold-activity runs: this target, the counter read this long apart after a settle.
const HOLD_MB: u64 = 256;
const HOLD_SETTLE: Duration = Duration::from_millis(500);
const HOLD_WINDOW: Duration = Duration::from_secs(2);

const KINDS: [(pb::Workload, &str); 4] = [
    (pb::Workload::Tree, "tree"),
    (pb::Workload::List, "list"),
    (pb::Workload::Hash, "hash"),
    (pb::Workload::Matrix, "matrix"),
];

/// What the runs of one workload measured.
#[derive(Default)]
struct PerKind {
    rates: Vec<f64>,
    fills: Vec<serde_json::Value>,
    /// (target MiB, payload KiB, steady RSS − target in MiB).
    errors: Vec<(u64, u32, f64)>,
    releases: Vec<Release>,
    /// Unthrottled hold activity per second and its unit.
    activity: Option<(f64, String)>,
}

fn request(kind: pb::Workload, mb: u64, kb: u32) -> pb::StartRequest {
    let mut req = daemon::start_request(mb, kb);
    req.workload = kind as i32;
    req
}

/// One timed 1 GiB fill of `kind`, then Clear and the release.
async fn fill_and_release(ctx: &mut Ctx, kind: pb::Workload, pk: &mut PerKind) -> Res<()> {
    let target = FILL_MB * MIB;
    let run = fill_once(&mut ctx.d, request(kind, FILL_MB, 100), target).await?;
    let st = daemon::status(&mut ctx.d.client).await?;
    if st.workload != kind as i32 {
        return Err(format!("Status.workload is {} for a {kind:?} run", st.workload).into());
    }
    let rel = clear_and_watch(&mut ctx.d, ctx.idle_rss).await?;
    let err = (run.steady_rss as f64 - target as f64) / MIB as f64;
    progress(&format!(
        "[workload] {kind:?} 1 GiB: {:.0} MiB/s, RSS − target {err:+.3} MiB, release {}",
        run.rate(),
        rel.within_ms
            .map_or("NOT within 1 s".into(), |t| format!("{t:.0} ms"))
    ));
    pk.rates.push(run.rate());
    pk.fills.push(run.json());
    pk.errors.push((FILL_MB, 100, err));
    pk.releases.push(rel);
    Ok(())
}

/// Unthrottled hold (search_rate 0) of a 256 MiB `kind` run: Status activity per second.
async fn hold_rate(ctx: &mut Ctx, kind: pb::Workload) -> Res<(f64, String)> {
    let mut req = request(kind, HOLD_MB, 100);
    req.search_rate = Some(0);
    daemon::start(&mut ctx.d.client, req).await?;
    daemon::wait_searching(&mut ctx.d.client, Duration::from_secs(60)).await?;
    tokio::time::sleep(HOLD_SETTLE).await;
    let a = daemon::status(&mut ctx.d.client).await?;
    let t = std::time::Instant::now();
    tokio::time::sleep(HOLD_WINDOW).await;
    let b = daemon::status(&mut ctx.d.client).await?;
    let secs = t.elapsed().as_secs_f64();
    daemon::clear(&mut ctx.d.client).await?;
    let rate = b.searches.saturating_sub(a.searches) as f64 / secs;
    progress(&format!(
        "[workload] {kind:?} unthrottled hold: {rate:.0} {}/s",
        b.activity_unit
    ));
    Ok((rate, b.activity_unit))
}

/// Row 15. Per repetition: the raw first-touch rate, then each workload's fill (the order of
/// the workloads rotates), so all see the same machine conditions.
pub(crate) async fn run(ctx: &mut Ctx) -> Res<Vec<Row>> {
    let reps = if ctx.quick { 2 } else { 5 };
    let mut raw = Vec::new();
    let mut per: Vec<PerKind> = KINDS.iter().map(|_| PerKind::default()).collect();
    for rep in 0..reps {
        let bytes = usize::try_from(FILL_MB * MIB)?;
        let secs = tokio::task::spawn_blocking(move || raw_first_touch(bytes)).await??;
        raw.push(FILL_MB as f64 / secs);
        progress(&format!(
            "[workload] rep {}: raw first-touch {:.0} MiB/s",
            rep + 1,
            FILL_MB as f64 / secs
        ));
        for k in 0..KINDS.len() {
            let i = (k + rep) % KINDS.len();
            fill_and_release(ctx, KINDS[i].0, &mut per[i]).await?;
        }
    }
    let edges: &[(u64, u32)] = if ctx.quick { &EDGES[..2] } else { &EDGES };
    for (i, (kind, _)) in KINDS.iter().enumerate() {
        for &(mb, kb) in edges {
            let run = fill_once(&mut ctx.d, request(*kind, mb, kb), mb * MIB).await?;
            let rel = clear_and_watch(&mut ctx.d, ctx.idle_rss).await?;
            let err = (run.steady_rss as f64 - (mb * MIB) as f64) / MIB as f64;
            progress(&format!(
                "[workload] {kind:?} {} × {kb} KiB: RSS − target {err:+.3} MiB ({} items), \
                 release {}",
                size_name(mb),
                run.nodes,
                rel.within_ms
                    .map_or("NOT within 1 s".into(), |t| format!("{t:.0} ms"))
            ));
            per[i].errors.push((mb, kb, err));
            per[i].releases.push(rel);
        }
        per[i].activity = Some(hold_rate(ctx, *kind).await?);
    }
    let raw_med = median(&raw);
    let mut rows = Vec::new();
    for (i, ((_, name), pk)) in KINDS.iter().zip(&per).enumerate() {
        rows.extend(rows_of(i, name, pk, raw_med, &raw, ctx.idle_rss));
    }
    Ok(rows)
}

/// The rows of one workload: 15a–d fill rate, 15e–h accuracy, 15i–l release, 15m–p hold
/// activity (reported only).
fn rows_of(i: usize, name: &str, pk: &PerKind, raw: f64, raws: &[f64], idle: u64) -> Vec<Row> {
    let id = |base: u8| format!("15{}", char::from(base + i as u8));
    let fill = median(&pk.rates);
    let limit = 0.85 * raw;
    let rate_row = Row::new(
        &id(b'a'),
        format!(
            "{name}: fill 1 GiB, 100 KiB payload (median of {})",
            pk.rates.len()
        ),
        fill,
        "MiB/s",
    )
    .bound(
        Bound::AtLeast { value: limit },
        format!("≥ 0.85 × raw = {limit:.0} MiB/s"),
    )
    .shown(format!("{fill:.0} MiB/s = {:.2} × raw", fill / raw))
    .samples(pk.rates.clone())
    .details(json!({ "raw_mib_s": raws, "runs": pk.fills }));
    let (rate, unit) = pk.activity.clone().unwrap_or((f64::NAN, String::new()));
    let hold_row = Row::new(
        &id(b'm'),
        format!("{name}: hold activity, search_rate 0, {HOLD_MB} MiB"),
        rate,
        &format!("{unit}/s"),
    )
    .shown(format!("{} {unit}/s", si(rate)));
    vec![
        rate_row,
        accuracy_row(&id(b'e'), name, pk),
        release_row(&id(b'i'), &id(b'e'), name, pk, idle),
        hold_row,
    ]
}

/// 15e–h: the worst steady RSS − target of a workload's runs, relative to each run's own bound.
fn accuracy_row(id: &str, name: &str, pk: &PerKind) -> Row {
    let worst = pk
        .errors
        .iter()
        .map(|&(mb, kb, e)| (mb, kb, e, e.abs() / (0.005 * mb as f64).max(2.0)))
        .fold((0, 0, 0.0, -1.0), |a, b| if b.3 > a.3 { b } else { a });
    Row::new(
        id,
        format!(
            "{name}: steady RSS − target, worst of {} runs, 64 MiB…4 GiB × 4/100 KiB (÷ bound)",
            pk.errors.len()
        ),
        worst.3,
        "× bound",
    )
    .bound(
        Bound::AtMost { value: 1.0 },
        "within ±max(0.5 %, 2 MiB) at every size",
    )
    .shown(format!(
        "worst {:+.3} MiB at {} × {} KiB ({:.2} of its bound)",
        worst.2,
        size_name(worst.0),
        worst.1,
        worst.3
    ))
    .samples(pk.errors.iter().map(|e| e.2).collect())
    .details(json!({ "target_mib_payload_kib_error_mib": pk.errors }))
}

/// 15i–l: the slowest Clear of a workload's runs to RSS ≤ idle + 4 MiB.
fn release_row(id: &str, acc_id: &str, name: &str, pk: &PerKind, idle: u64) -> Row {
    let times: Vec<f64> = pk
        .releases
        .iter()
        .map(|r| r.within_ms.unwrap_or(f64::INFINITY))
        .collect();
    // A run that never got there is infinite (a fail), not left out as `max` would.
    let worst_ms = if times.iter().all(|t| t.is_finite()) {
        max(&times)
    } else {
        f64::INFINITY
    };
    Row::new(
        id,
        format!(
            "{name}: Clear → RSS ≤ idle + 4 MiB, worst of {} (the runs of 15a and {acc_id})",
            times.len()
        ),
        worst_ms,
        "ms",
    )
    .bound(Bound::AtMost { value: 1000.0 }, "≤ 1 s")
    .shown(format!(
        "worst {} (median {})",
        fmt_num(worst_ms, "ms"),
        fmt_num(median(&times), "ms")
    ))
    .samples(times)
    .details(json!({
        "idle_rss_mib": idle as f64 / MIB as f64,
        "runs": pk.releases.iter().map(|r| json!({
            "clear_rpc_ms": r.clear_ms,
            "server_free_ms": r.server_ms,
            "rss_after_mib": r.rss_after as f64 / MIB as f64,
        })).collect::<Vec<_>>(),
    }))
}

/// 11300000 → "11.3 M": hold rates span 10^6 to 10^10.
fn si(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.1} M", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => fmt_num(v, ""),
    }
}
