//! Row 16: a 4-phase target profile (512 → 1024 → 256 → 768 MiB, each held a few seconds):
//! RSS within tolerance at the end of every phase, and the shrink to a lower phase in ≤ 1 s per
//! GiB released.

use crate::daemon::{self, MIB, state_of};
use crate::report::{Bound, Row, fmt_num};
use crate::sampler::Sampler;
use crate::{Ctx, Res, progress};
use memstress_proto::v1 as pb;
use serde_json::json;
use std::time::{Duration, Instant};

/// The profile, MiB.
const PROFILE: [u64; 4] = [512, 1024, 256, 768];

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

/// Row 16.
pub async fn run(ctx: &mut Ctx) -> Res<Vec<Row>> {
    let hold = if ctx.quick { 2 } else { 3 };
    let sampler = Sampler::start(ctx.d.pid, Duration::from_millis(1))?;
    let started = daemon::start(&mut ctx.d.client, request(hold)).await;
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

    // RSS at the end of each phase: the last poll that saw it holding.
    let mut ends = Vec::new();
    for (i, &mb) in PROFILE.iter().enumerate() {
        let index = i as u32 + 1;
        let last = seen
            .iter()
            .rev()
            .find(|s| s.index == index && s.state == pb::State::Searching)
            .ok_or(format!("phase {index} was never seen holding"))?;
        let target = mb * MIB;
        let err = last.rss as f64 - target as f64;
        // The RSS while it held: from the first poll that saw this phase holding to its last.
        let first = seen
            .iter()
            .find(|s| s.index == index && s.state == pb::State::Searching)
            .map_or(last.at, |s| s.at);
        let held: Vec<u64> = samples
            .points
            .iter()
            .filter(|(t, _)| *t >= first && *t <= last.at)
            .map(|p| p.1)
            .collect();
        let lo = held.iter().min().copied().unwrap_or(0) as f64 - target as f64;
        let hi = held.iter().max().copied().unwrap_or(0) as f64 - target as f64;
        progress(&format!(
            "[phases] phase {index}: while holding RSS − target {:+.3} … {:+.3} MiB",
            lo / MIB as f64,
            hi / MIB as f64
        ));
        let ratio = err.abs() / tolerance(target) as f64;
        progress(&format!(
            "[phases] phase {index} ({mb} MiB): RSS − target {:+.3} MiB at its end",
            err / MIB as f64
        ));
        ends.push((mb, err / MIB as f64, ratio));
    }
    let worst = ends
        .iter()
        .copied()
        .fold((0, 0.0, -1.0), |a, b| if b.2 > a.2 { b } else { a });

    // Moves between phases: from the last poll of the phase before to the first RSS sample
    // within tolerance of the new target.
    let mut moves = Vec::new();
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
        moves.push((from / MIB, to / MIB, secs));
    }
    let shrinks: Vec<(u64, u64, f64)> = moves.iter().copied().filter(|m| m.1 < m.0).collect();
    // Seconds per GiB released, the worst shrink.
    let per_gib = shrinks
        .iter()
        .map(|&(from, to, secs)| secs / ((from - to) as f64 / 1024.0))
        .fold(f64::NAN, f64::max);
    progress(&format!(
        "[phases] moves {moves:?}; worst shrink {per_gib:.3} s per GiB"
    ));
    let profile = PROFILE.map(|mb| mb.to_string()).join(" → ");
    let details = json!({
        "profile_mib": PROFILE,
        "hold_seconds": hold,
        "phase_end_error_mib": ends.iter().map(|e| e.1).collect::<Vec<_>>(),
        "moves_mib_mib_seconds": moves,
        "status_polls": seen.len(),
    });
    Ok(vec![
        Row::new(
            "16a",
            format!("phases {profile} MiB: RSS − target at each phase's end, worst (÷ bound)"),
            worst.2,
            "× bound",
        )
        .bound(
            Bound::AtMost { value: 1.0 },
            "within ±max(0.5 %, 2 MiB) at every phase",
        )
        .shown(format!(
            "worst {:+.3} MiB at the {} MiB phase ({:.2} of its bound)",
            worst.1, worst.0, worst.2
        ))
        .samples(ends.iter().map(|e| e.1).collect())
        .details(details.clone()),
        Row::new(
            "16b",
            "phases: shrink to the lower target, seconds per GiB released (worst)",
            per_gib,
            "s/GiB",
        )
        .bound(Bound::AtMost { value: 1.0 }, "≤ 1 s per GiB")
        .shown(
            shrinks
                .iter()
                .map(|(f, t, s)| format!("{f} → {t} MiB in {}", fmt_num(s * 1e3, "ms")))
                .collect::<Vec<_>>()
                .join("; "),
        )
        .samples(shrinks.iter().map(|m| m.2).collect())
        .details(details),
    ])
}
