//! Row 16: a 4-phase target profile (512 → 1024 → 256 → 768 MiB, each held a few seconds), once
//! per workload: RSS within tolerance at the end of every phase, and the shrink to a lower phase
//! in ≤ 1 s per GiB released.

use crate::daemon::{self, MIB, state_of};
use crate::report::{Bound, Row, fmt_num};
use crate::sampler::{Sampler, Samples};
use crate::{Ctx, Res, progress};
use memstress_proto::v1 as pb;
use serde_json::json;
use std::time::{Duration, Instant};

/// The profile, MiB.
const PROFILE: [u64; 4] = [512, 1024, 256, 768];

const KINDS: [(pb::Workload, &str); 4] = [
    (pb::Workload::Tree, "tree"),
    (pb::Workload::List, "list"),
    (pb::Workload::Hash, "hash"),
    (pb::Workload::Matrix, "matrix"),
];

/// One Status poll.
#[derive(Debug, Clone, Copy)]
struct Seen {
    at: Instant,
    index: u32,
    state: pb::State,
    rss: u64,
}

fn request(hold_seconds: u32) -> pb::StartRequest {
    let phases = PROFILE
        .iter()
        .map(|&mb| pb::Phase {
            target: Some(pb::phase::Target::MemoryMb(mb)),
            hold_seconds,
            ramp_mb_per_second: None,
        })
        .collect();
    pb::StartRequest {
        phases,
        repeat: Some(1),
        payload_size_kb: Some(100),
        ..Default::default()
    }
}

/// max(0.5 % of the target, 2 MiB), in bytes.
fn tolerance(target: u64) -> u64 {
    (target / 200).max(2 * MIB)
}

/// Polls Status every 5 ms until the run completes; every poll is kept.
async fn watch(c: &mut daemon::Client, timeout: Duration) -> Res<Vec<Seen>> {
    let t0 = Instant::now();
    let mut seen = Vec::new();
    loop {
        let s = daemon::status(c).await?;
        let state = state_of(&s);
        seen.push(Seen {
            at: Instant::now(),
            index: s.phase.map_or(0, |p| p.index),
            state,
            rss: s.rss_bytes,
        });
        match state {
            pb::State::Completed => return Ok(seen),
            pb::State::Failed => return Err(format!("the run failed: {}", s.last_error).into()),
            pb::State::Stopped | pb::State::Idle => {
                return Err(format!("the run ended as {state:?} before its last phase").into());
            }
            _ => {}
        }
        if t0.elapsed() > timeout {
            return Err(format!("the profile did not complete within {timeout:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What one run of the profile measured.
struct ProfileRun {
    /// Per phase: (target MiB, RSS − target at its end in MiB, |error| ÷ tolerance).
    ends: Vec<(u64, f64, f64)>,
    /// Per move between phases: (from MiB, to MiB, seconds to within tolerance).
    moves: Vec<(u64, u64, f64)>,
    polls: usize,
}

/// Runs the profile once with `kind` and measures it.
async fn profile_once(ctx: &mut Ctx, kind: pb::Workload, hold: u32) -> Res<ProfileRun> {
    let sampler = Sampler::start(ctx.d.pid, Duration::from_millis(1))?;
    let mut req = request(hold);
    req.workload = kind as i32;
    let started = daemon::start(&mut ctx.d.client, req).await;
    let seen = match started {
        Ok(resp) => {
            let want: Vec<u64> = PROFILE.iter().map(|mb| mb * MIB).collect();
            if resp.phase_target_bytes != want {
                return Err(format!(
                    "StartResponse.phase_target_bytes {:?}, expected {want:?}",
                    resp.phase_target_bytes
                )
                .into());
            }
            watch(&mut ctx.d.client, Duration::from_secs(60)).await
        }
        Err(e) => Err(e),
    };
    let samples = sampler.finish();
    daemon::clear(&mut ctx.d.client).await?;
    let seen = seen?;
    Ok(ProfileRun {
        ends: phase_ends(kind, &seen, &samples)?,
        moves: moves(&seen, &samples)?,
        polls: seen.len(),
    })
}

/// RSS at the end of each phase: the last poll that saw it holding.
fn phase_ends(kind: pb::Workload, seen: &[Seen], samples: &Samples) -> Res<Vec<(u64, f64, f64)>> {
    let mut ends = Vec::new();
    for (i, &mb) in PROFILE.iter().enumerate() {
        let index = i as u32 + 1;
        let holding = |s: &&Seen| s.index == index && s.state == pb::State::Searching;
        let last = seen
            .iter()
            .rev()
            .find(holding)
            .ok_or(format!("phase {index} was never seen holding"))?;
        let first = seen.iter().find(holding).map_or(last.at, |s| s.at);
        let target = mb * MIB;
        let err = last.rss as f64 - target as f64;
        // The RSS range while it held, for the progress line.
        let held = samples
            .points
            .iter()
            .filter(|(t, _)| *t >= first && *t <= last.at)
            .map(|p| p.1);
        let (lo, hi) = held.fold((u64::MAX, 0), |(lo, hi), r| (lo.min(r), hi.max(r)));
        let off = |r: u64| (r as f64 - target as f64) / MIB as f64;
        progress(&format!(
            "[phases] {kind:?} phase {index} ({mb} MiB): RSS − target {:+.3} MiB at its end \
             ({:+.3} … {:+.3} while holding)",
            err / MIB as f64,
            off(lo.min(last.rss)),
            off(hi.max(last.rss)),
        ));
        ends.push((mb, err / MIB as f64, err.abs() / tolerance(target) as f64));
    }
    Ok(ends)
}

/// Moves between phases: from the last poll of the phase before to the first RSS sample
/// within tolerance of the new target.
fn moves(seen: &[Seen], samples: &Samples) -> Res<Vec<(u64, u64, f64)>> {
    let mut out = Vec::new();
    for i in 1..PROFILE.len() {
        let (from, to) = (PROFILE[i - 1] * MIB, PROFILE[i] * MIB);
        let left = seen
            .iter()
            .rev()
            .find(|s| s.index == i as u32)
            .ok_or(format!("phase {i} was never seen"))?;
        let tol = tolerance(to);
        let there = samples
            .points
            .iter()
            .find(|(t, r)| *t >= left.at && r.abs_diff(to) <= tol)
            .ok_or(format!(
                "RSS never came within tolerance of phase {}",
                i + 1
            ))?;
        let secs = there.0.duration_since(left.at).as_secs_f64();
        out.push((from / MIB, to / MIB, secs));
    }
    Ok(out)
}

/// Row 16: the profile once per workload.
pub(crate) async fn run(ctx: &mut Ctx) -> Res<Vec<Row>> {
    let hold = if ctx.quick { 2 } else { 3 };
    let mut runs = Vec::new();
    for (kind, name) in KINDS {
        runs.push((name, profile_once(ctx, kind, hold).await?));
    }
    // (workload, target MiB, error MiB, ÷ tolerance) of the worst phase end.
    let mut worst = ("", 0, 0.0, -1.0);
    // (workload, from, to, seconds, seconds per GiB) of the slowest shrink.
    let mut slowest = ("", 0, 0, 0.0, f64::NAN);
    for (name, r) in &runs {
        for &(mb, err, ratio) in &r.ends {
            if ratio > worst.3 {
                worst = (name, mb, err, ratio);
            }
        }
        for &(from, to, secs) in r.moves.iter().filter(|m| m.1 < m.0) {
            let per_gib = secs / ((from - to) as f64 / 1024.0);
            if slowest.4.is_nan() || per_gib > slowest.4 {
                slowest = (name, from, to, secs, per_gib);
            }
        }
    }
    progress(&format!(
        "[phases] slowest shrink: {} {} → {} MiB in {:.3} s",
        slowest.0, slowest.1, slowest.2, slowest.3
    ));
    Ok(rows(hold, &runs, worst, slowest))
}

/// Rows 16a and 16b from the runs, their worst phase end and their slowest shrink.
fn rows(
    hold: u32,
    runs: &[(&str, ProfileRun)],
    worst: (&str, u64, f64, f64),
    slowest: (&str, u64, u64, f64, f64),
) -> Vec<Row> {
    let profile = PROFILE.map(|mb| mb.to_string()).join(" → ");
    let details = json!({
        "profile_mib": PROFILE,
        "hold_seconds": hold,
        "runs": runs.iter().map(|(name, r)| json!({
            "workload": name,
            "phase_end_error_mib": r.ends.iter().map(|e| e.1).collect::<Vec<_>>(),
            "moves_mib_mib_seconds": r.moves,
            "status_polls": r.polls,
        })).collect::<Vec<_>>(),
    });
    let all_ends: Vec<f64> = runs
        .iter()
        .flat_map(|(_, r)| r.ends.iter().map(|e| e.1))
        .collect();
    let shrink_secs: Vec<f64> = runs
        .iter()
        .flat_map(|(_, r)| r.moves.iter().filter(|m| m.1 < m.0).map(|m| m.2))
        .collect();
    vec![
        Row::new(
            "16a",
            format!(
                "phases {profile} MiB × 4 workloads: RSS − target at each phase's end, worst (÷ bound)"
            ),
            worst.3,
            "× bound",
        )
        .bound(
            Bound::AtMost { value: 1.0 },
            "within ±max(0.5 %, 2 MiB) at every phase",
        )
        .shown(format!(
            "worst {:+.3} MiB: {}, {} MiB phase ({:.2} of its bound)",
            worst.2, worst.0, worst.1, worst.3
        ))
        .samples(all_ends)
        .details(details.clone()),
        Row::new(
            "16b",
            "phases × 4 workloads: shrink to the lower target, seconds per GiB released (worst)",
            slowest.4,
            "s/GiB",
        )
        .bound(Bound::AtMost { value: 1.0 }, "≤ 1 s per GiB")
        .shown(format!(
            "{}: {} → {} MiB in {}",
            slowest.0,
            slowest.1,
            slowest.2,
            fmt_num(slowest.3 * 1e3, "ms")
        ))
        .samples(shrink_secs)
        .details(details),
    ]
}
