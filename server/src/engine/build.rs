//! Moving to a phase's target: grow (batches, ramp, checkpoints, rates, progress logs) or
//! shrink (newest first, at full speed) until the measure is on target.

use super::messages;
use super::run_state::store_f64;
use super::worker::{Interrupt, Worker};
use crate::logs::Operation;
use crate::params::{MIB, PlannedPhase};
use crate::workload::PAGE;
use crate::workload::Workload;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Ramp mode grows in steps of this period.
const RAMP_STEP: Duration = Duration::from_millis(10);
/// Window of the "current" fill rate.
const RATE_WINDOW: Duration = Duration::from_millis(500);

/// Rate over a sliding window of (time, bytes) samples.
struct RateMeter {
    samples: VecDeque<(Instant, u64)>,
}

impl RateMeter {
    fn new(t: Instant) -> Self {
        let mut samples = VecDeque::with_capacity(64);
        samples.push_back((t, 0));
        Self { samples }
    }

    fn push(&mut self, t: Instant, total: u64) -> f64 {
        while self.samples.len() > 1
            && self
                .samples
                .get(1)
                .is_some_and(|(t1, _)| t.duration_since(*t1) >= RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        if self.samples.len() >= 64 {
            self.samples.pop_front();
        }
        self.samples.push_back((t, total));
        match (self.samples.front(), self.samples.back()) {
            (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => {
                super::mib(b1.saturating_sub(*b0)) / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// Grows or shrinks `w` until the measure is on `phase`'s target. `first`: the run's first
/// build, whose time and rate are the run's time to target and fill rate.
pub(crate) fn move_to(
    wk: &Worker,
    w: &mut dyn Workload,
    phase: &PlannedPhase,
    first: bool,
) -> Result<(), Interrupt> {
    let target = phase.target_bytes;
    let t0 = Instant::now();
    let from = wk.measure()?;
    wk.log(
        Operation::BuildTreeStart,
        messages::build_start(target, from),
    );
    let shrinking = from > target + Worker::band(target);
    let grown = if shrinking {
        shrink_to(wk, w, target)?;
        None
    } else {
        Some(grow_to(wk, w, phase, t0, from)?)
    };
    let took = t0.elapsed();
    let took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    let rate = grown.map(|g| super::mib(g) / took.as_secs_f64().max(1e-9));
    let c = &wk.shared.counters;
    if first && let Some(rate) = rate {
        store_f64(&c.fill_rate, rate);
        c.time_to_target_ms.store(took_ms, Ordering::Relaxed);
        wk.history
            .tally()
            .observe_time_to_target(took.as_secs_f64());
    }
    wk.publish_counts(w);
    wk.sample_huge(w);
    let reached = wk.measure()?;
    let msg = messages::target_reached(reached, took_ms, rate, &w.counters(), w.kind(), &w.shape());
    wk.log(Operation::BuildTreeComplete, msg);
    Ok(())
}

/// Gives back the newest payload until the measure is within the band above `target` (or
/// nothing is left to give). The pages are back with the OS when `shrink` returns.
fn shrink_to(wk: &Worker, w: &mut dyn Workload, target: u64) -> Result<(), Interrupt> {
    let band = Worker::band(target);
    loop {
        wk.check_stop()?;
        let now = wk.measure()?;
        if now <= target + band {
            return Ok(());
        }
        let freed = w.shrink(now - target);
        wk.publish_counts(w);
        wk.checkpointer.poke();
        if freed == 0 {
            return Ok(());
        }
    }
}

/// Grows until the measure is within a page of `phase`'s target; returns the bytes grown.
fn grow_to(
    wk: &Worker,
    w: &mut dyn Workload,
    phase: &PlannedPhase,
    t0: Instant,
    from: u64,
) -> Result<u64, Interrupt> {
    let s = &wk.shared;
    let interval = Duration::from_secs(u64::from(s.params.log_interval_seconds));
    let mut grown: u64 = 0;
    let mut meter = RateMeter::new(t0);
    let mut next_log = t0 + interval;
    let mut oom_seen = None;
    let ramp = Ramp::new(phase.ramp_mb_per_second, t0);
    // A checkpoint after every 1 % of the limit grown: where an OOM kill lands is then known
    // to within 1 % even at full speed.
    let checkpoint_step = (s.basis.limit_bytes / 100).max(PAGE as u64);
    let mut next_checkpoint = from + checkpoint_step;
    let stop = || s.stopping();
    loop {
        wk.check_stop()?;
        let now_value = wk.measure()?;
        if now_value >= next_checkpoint {
            wk.checkpointer.poke();
            next_checkpoint = now_value + checkpoint_step;
        }
        let deficit = phase.target_bytes.saturating_sub(now_value);
        if deficit < PAGE as u64 {
            return Ok(grown);
        }
        let budget = usize::try_from(deficit).unwrap_or(usize::MAX);
        let Some(budget) = ramp.allowance(wk, budget, grown) else {
            continue;
        };
        grown += w.grow(budget, &stop)?;
        let now = Instant::now();
        let elapsed = now.duration_since(t0).as_secs_f64();
        store_f64(&s.counters.current_fill_rate, meter.push(now, grown));
        wk.publish_counts(w);
        if now >= next_log {
            next_log = now + interval;
            wk.check_oom(&mut oom_seen);
            let rate = super::mib(grown) / elapsed.max(1e-9);
            let msg = messages::build_progress(
                now_value,
                phase.target_bytes,
                w.counters().items,
                w.kind(),
                rate,
            );
            wk.log(Operation::BuildTreeTarget, msg);
        }
    }
}

/// Ramp mode: growth capped by rate × elapsed.
struct Ramp {
    bytes_per_second: f64,
    step: usize,
    t0: Instant,
}

impl Ramp {
    fn new(mb_per_second: f64, t0: Instant) -> Self {
        let bytes_per_second = mb_per_second * MIB as f64;
        Self {
            bytes_per_second,
            step: ((bytes_per_second * RAMP_STEP.as_secs_f64()) as usize).max(PAGE),
            t0,
        }
    }

    /// The budget allowed now, or None after napping until the next step is due.
    fn allowance(&self, wk: &Worker, budget: usize, grown: u64) -> Option<usize> {
        if self.bytes_per_second <= 0.0 {
            return Some(budget);
        }
        let elapsed = self.t0.elapsed().as_secs_f64();
        let allowed = (self.bytes_per_second * elapsed) as u64;
        let allowance = allowed.saturating_sub(grown) as usize;
        let step = self.step.min(budget);
        if allowance < step {
            let wait = (grown as f64 + step as f64) / self.bytes_per_second - elapsed;
            wk.nap(Duration::from_secs_f64(wait.clamp(0.0, 0.05)));
            return None;
        }
        Some(budget.min(allowance))
    }
}
