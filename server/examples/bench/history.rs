//! Row 13: fill rate with the run history on (`--state-dir`) and off, side by side: two fresh
//! stressd, one with and one without `--state-dir`, fill the same target alternately (ABBA),
//! so both see the same machine conditions. Both get `--memory-limit` as a pod would have it
//! (2 GiB for the 1 GiB fill: a checkpoint every 20.5 MiB, ~50 a fill; 8 GiB for 4 GiB), since
//! without a limit the basis is this host's RAM and a checkpoint would come only every
//! ~240 MiB. The 1 GiB row carries the bound; 4 GiB fills swing 1.5–3.8 GiB/s from one fill
//! to the next on this VM whatever the configuration (the hypervisor backing freshly freed
//! guest pages again), so their ratio is reported, not bounded.

use crate::daemon::{self, Daemon, History, MIB, dir_bytes, fs_type_of};
use crate::fill::{FillRun, fill_once, warm_up};
use crate::report::{Bound, Row, median, size_name};
use crate::{Ctx, Res, progress};
use serde_json::{Value, json};

/// Bound of the on ÷ off ratio: history costs at most 3 % of the fill rate.
pub(crate) const MIN_RATIO: f64 = 0.97;

/// Rows 13a–13f.
pub(crate) async fn on_off(ctx: &mut Ctx) -> Res<Vec<Row>> {
    let sizes: &[(u64, &str)] = if ctx.quick {
        &[(1024, "2Gi")]
    } else {
        &[(1024, "2Gi"), (4096, "8Gi")]
    };
    let reps = if ctx.quick { 3 } else { 7 };
    let mut rows = Vec::new();
    for (i, &(mb, limit)) in sizes.iter().enumerate() {
        let target = mb * MIB;
        let mut on = daemon::spawn_with(&ctx.stressd, History::On, Some(limit)).await?;
        let mut off = daemon::spawn_with(&ctx.stressd, History::Off, Some(limit)).await?;
        daemon::check_history(&mut on, History::On).await?;
        daemon::check_history(&mut off, History::Off).await?;
        tokio::time::sleep(crate::lifecycle::IDLE_SETTLE).await;
        let (mut on_runs, mut off_runs) = (Vec::new(), Vec::new());
        warm_up(&mut on, mb).await?;
        warm_up(&mut off, mb).await?;
        for rep in 0..reps {
            // ABBA: neither side always runs first (right after the other freed its memory).
            let order = if rep % 2 == 0 {
                [History::On, History::Off]
            } else {
                [History::Off, History::On]
            };
            for side in order {
                let d: &mut Daemon = match side {
                    History::On => &mut on,
                    History::Off => &mut off,
                };
                let run = fill_once(d, daemon::start_request(mb, 100), target).await?;
                daemon::clear(&mut d.client).await?;
                progress(&format!(
                    "[history] {mb} MiB rep {}: history {} {:.0} MiB/s ({:.0} ms){}",
                    rep + 1,
                    if side == History::On { "on " } else { "off" },
                    run.rate(),
                    run.own_secs * 1e3,
                    if run.reached {
                        ""
                    } else {
                        " [target not reached]"
                    }
                ));
                match side {
                    History::On => on_runs.push(run),
                    History::Off => off_runs.push(run),
                }
            }
        }
        let on_history = daemon::check_history(&mut on, History::On).await?;
        let basis = daemon::status(&mut on.client).await?.basis;
        let history = json!({
            "db_path": on_history.path,
            "runs_kept": on_history.runs_kept,
            "state_dir_fs": on.state_dir.as_ref().and_then(|t| fs_type_of(t.path())),
            "state_dir_bytes": on.state_dir.as_ref().map(|t| dir_bytes(t.path())),
            // Checkpoints come after every 1 % of this limit grown (and at least once a second).
            "basis_limit_mib": basis.as_ref().map(|b| b.limit_bytes / MIB),
            "basis_detail": basis.map(|b| b.detail),
        });
        let ids = [0, 1, 2].map(|k| format!("13{}", char::from(b'a' + (3 * i + k) as u8)));
        let fills = Fills {
            mb,
            limit,
            on: &on_runs,
            off: &off_runs,
        };
        rows.extend(size_rows(&ids, history, &fills, i == 0));
    }
    Ok(rows)
}

/// One size's fills on both sides.
struct Fills<'a> {
    mb: u64,
    limit: &'a str,
    on: &'a [FillRun],
    off: &'a [FillRun],
}

/// The three rows of one size: on, off, on ÷ off.
fn size_rows(ids: &[String; 3], history: Value, f: &Fills<'_>, bounded: bool) -> Vec<Row> {
    let Fills { mb, limit, on, off } = *f;
    let on_rates: Vec<f64> = on.iter().map(FillRun::rate).collect();
    let off_rates: Vec<f64> = off.iter().map(FillRun::rate).collect();
    let (m_on, m_off) = (median(&on_rates), median(&off_rates));
    let ratio = m_on / m_off;
    let paired: Vec<f64> = on_rates
        .iter()
        .zip(&off_rates)
        .map(|(a, b)| a / b)
        .collect();
    let on_details = json!({
        "history_after": history,
        "runs": on.iter().map(FillRun::json).collect::<Vec<_>>(),
    });
    let off_details = json!({ "runs": off.iter().map(FillRun::json).collect::<Vec<_>>() });
    let size = size_name(mb);
    let n = on_rates.len();
    let [a, b, c] = ids;
    vec![
        Row::new(
            a,
            format!(
                "fill {size}, history on (--state-dir), --memory-limit {limit}, 100 KiB payload (median of {n})"
            ),
            m_on,
            "MiB/s",
        )
        .samples(on_rates.clone())
        .details(on_details),
        Row::new(
            b,
            format!(
                "fill {size}, history off (no --state-dir), interleaved with {a} (median of {})",
                off_rates.len()
            ),
            m_off,
            "MiB/s",
        )
        .samples(off_rates.clone())
        .details(off_details),
        {
            let row = Row::new(c, format!("fill {size} history on ÷ off ({a} ÷ {b})"), ratio, "×");
            if bounded {
                row.bound(
                    Bound::AtLeast { value: MIN_RATIO },
                    format!("≥ {MIN_RATIO:.2}×"),
                )
            } else {
                row
            }
        }
            .shown(format!("{ratio:.3}× ({m_on:.0} vs {m_off:.0} MiB/s)"))
            .samples(paired)
            .details(json!({
                "measured": "median of the on rates ÷ median of the off rates; samples are the per-rep on ÷ off ratios",
                "on_rates_mib_s": on_rates,
                "off_rates_mib_s": off_rates,
            })),
    ]
}
