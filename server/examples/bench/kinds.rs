//! Row 15: every workload (tree, list, hash, matrix) against the tree's bounds — fill rate
//! against the raw first-touch rate of the same run, steady RSS − target from 64 MiB to 4 GiB,
//! and the release after Clear.

use crate::daemon::{self, MIB};
use crate::fill::{Release, clear_and_watch, fill_once, raw_first_touch};
use crate::report::{Bound, Row, fmt_num, max, median, size_name};
use crate::{Ctx, Res, progress};
use memstress_proto::v1 as pb;
use serde_json::json;
use std::time::Duration;

/// The fill size the rate and release rows use.
const FILL_MB: u64 = 1024;
/// Extra accuracy sizes, one run each (the range is 64 MiB to 4 GiB).
const EDGE_MB: [u64; 2] = [64, 4096];
/// Let the hold run a moment before reading its activity counter.
const HOLD_LOOK: Duration = Duration::from_millis(300);

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
    /// (target MiB, steady RSS − target in MiB).
    errors: Vec<(u64, f64)>,
    releases: Vec<Release>,
    /// (activity counter 300 ms into the hold, its unit).
    activity: Vec<(u64, String)>,
}

fn request(kind: pb::Workload, mb: u64) -> pb::StartRequest {
    let mut req = daemon::start_request(mb, 100);
    req.workload = kind as i32;
    req
}

/// One timed 1 GiB fill of `kind`, its hold activity, then Clear and the release.
async fn fill_and_release(ctx: &mut Ctx, kind: pb::Workload, pk: &mut PerKind) -> Res<()> {
    let target = FILL_MB * MIB;
    let run = fill_once(&mut ctx.d, request(kind, FILL_MB), target).await?;
    tokio::time::sleep(HOLD_LOOK).await;
    let st = daemon::status(&mut ctx.d.client).await?;
    if st.workload != kind as i32 {
        return Err(format!("Status.workload is {} for a {kind:?} run", st.workload).into());
    }
    let rel = clear_and_watch(&mut ctx.d, ctx.idle_rss).await?;
    let err = (run.steady_rss as f64 - target as f64) / MIB as f64;
    progress(&format!(
        "[workload] {kind:?} 1 GiB: {:.0} MiB/s, RSS − target {err:+.3} MiB, {} {}, release {}",
        run.rate(),
        st.searches,
        st.activity_unit,
        rel.within_ms
            .map_or("NOT within 1 s".into(), |t| format!("{t:.0} ms"))
    ));
    pk.rates.push(run.rate());
    pk.fills.push(run.json());
    pk.errors.push((FILL_MB, err));
    pk.activity.push((st.searches, st.activity_unit.clone()));
    pk.releases.push(rel);
    Ok(())
}

/// Row 15. Per repetition: the raw first-touch rate, then each workload's fill (the order of
/// the workloads rotates), so all see the same machine conditions.
pub async fn run(ctx: &mut Ctx) -> Res<Vec<Row>> {
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
    let edges: &[u64] = if ctx.quick { &EDGE_MB[..1] } else { &EDGE_MB };
    for (i, (kind, _)) in KINDS.iter().enumerate() {
        for &mb in edges {
            let run = fill_once(&mut ctx.d, request(*kind, mb), mb * MIB).await?;
            daemon::clear(&mut ctx.d.client).await?;
            let err = (run.steady_rss as f64 - (mb * MIB) as f64) / MIB as f64;
            progress(&format!(
                "[workload] {kind:?} {}: RSS − target {err:+.3} MiB",
                size_name(mb)
            ));
            per[i].errors.push((mb, err));
        }
    }
    let raw_med = median(&raw);
    let mut rows = Vec::new();
    for (i, ((_, name), pk)) in KINDS.iter().zip(&per).enumerate() {
        rows.extend(rows_of(i, name, pk, raw_med, &raw, ctx.idle_rss));
    }
    Ok(rows)
}

/// The three rows of one workload: 15a–d fill rate, 15e–h accuracy, 15i–l release.
fn rows_of(i: usize, name: &str, pk: &PerKind, raw: f64, raws: &[f64], idle: u64) -> Vec<Row> {
    let letter = |base: u8| char::from(base + i as u8);
    let fill = median(&pk.rates);
    let limit = 0.85 * raw;
    let rate_row = Row::new(
        &format!("15{}", letter(b'a')),
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
    .details(json!({ "raw_mib_s": raws, "runs": pk.fills, "hold_activity_300ms": pk.activity }));

    // The bound depends on the size: the worst error relative to its own bound is what counts.
    let worst = pk
        .errors
        .iter()
        .map(|&(mb, e)| (mb, e, e.abs() / (0.005 * mb as f64).max(2.0)))
        .fold((0, 0.0, -1.0), |a, b| if b.2 > a.2 { b } else { a });
    let acc_row = Row::new(
        &format!("15{}", letter(b'e')),
        format!("{name}: steady RSS − target, worst of 64 MiB…4 GiB (÷ its bound)"),
        worst.2,
        "× bound",
    )
    .bound(
        Bound::AtMost { value: 1.0 },
        "|RSS − target| ≤ max(0.5 %, 2 MiB) at every size",
    )
    .shown(format!(
        "worst {:+.3} MiB at {} ({:.2} of its bound)",
        worst.1,
        size_name(worst.0),
        worst.2
    ))
    .samples(pk.errors.iter().map(|e| e.1).collect())
    .details(json!({ "target_mib_and_error_mib": pk.errors }));

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
    let rel_row = Row::new(
        &format!("15{}", letter(b'i')),
        format!(
            "{name}: Clear of 1 GiB → RSS ≤ idle + 4 MiB, worst of {}",
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
    }));
    vec![rate_row, acc_row, rel_row]
}
