//! Holding a phase's target: the workload's hold operations at the asked rate, progress at
//! the log interval, keep hot, and in CONTAINER scope the working set kept on target.

use super::messages;
use super::run_state::{State, store_f64};
use super::worker::{Interrupt, Worker};
use crate::logs::Operation;
use crate::params::{PlannedPhase, Scope};
use crate::workload::PAGE;
use crate::workload::Workload;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// CONTAINER scope re-reads the working set this often while holding.
const HOLD_ADJUST_PERIOD: Duration = Duration::from_millis(100);
/// Most hold operations between clock reads.
const MAX_CHUNK: u64 = 4096;

/// Hold operations per batch, adapted so a batch takes about 2–20 ms whatever one operation
/// costs (a tree search is ~100 ns, a block product can be milliseconds): Stop and the clock
/// are checked between batches.
struct Chunk(u64);

impl Chunk {
    fn adapt(&mut self, took: Duration) {
        if took < Duration::from_millis(2) {
            self.0 = (self.0 * 2).min(MAX_CHUNK);
        } else if took > Duration::from_millis(20) {
            self.0 = (self.0 / 2).max(1);
        }
    }
}

/// What one hold has done so far.
struct Tally {
    ops: u64,
    activity: u64,
    hits: u64,
}

/// Holds `phase`'s target for its hold time (until Stop when it has none).
pub(crate) fn hold(
    wk: &Worker,
    w: &mut dyn Workload,
    phase: &PlannedPhase,
) -> Result<(), Interrupt> {
    let s = &wk.shared;
    let p = &s.params;
    let t0 = Instant::now();
    let deadline = phase.hold.map(|d| t0 + d);
    // SEARCHING becomes visible together with its SEARCH_TREE_START entry.
    let msg = messages::hold_start(p, phase.target_bytes, phase.hold);
    wk.log_then(Operation::SearchTreeStart, msg, || {
        s.transition(State::Searching);
    });
    wk.checkpointer.poke();
    let interval = Duration::from_secs(u64::from(p.log_interval_seconds));
    let mut tally = Tally {
        ops: 0,
        activity: 0,
        hits: 0,
    };
    let mut chunk = Chunk(1);
    let mut rate_start = (t0, s.counters.activity.load(Ordering::Relaxed));
    let (mut next_log, mut next_adjust) = (t0 + interval, t0 + HOLD_ADJUST_PERIOD);
    let mut oom_seen = None;
    loop {
        wk.check_stop()?;
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        let batch = batch_size(p.search_rate, chunk.0);
        let due = due_ops(p.search_rate, t0, now, tally.ops).min(batch);
        if due > 0 {
            let step = w.hold_step(due);
            chunk.adapt(now.elapsed());
            tally.ops += due;
            tally.activity += step.activity;
            tally.hits += step.hits;
            s.counters
                .activity
                .fetch_add(step.activity, Ordering::Relaxed);
            wk.activity_total
                .fetch_add(step.activity, Ordering::Relaxed);
        }
        if p.scope == Scope::Container && now >= next_adjust {
            next_adjust = now + HOLD_ADJUST_PERIOD;
            adjust(wk, w, phase.target_bytes)?;
        }
        if now >= next_log {
            next_log = now + interval;
            progress(wk, w, &mut rate_start, deadline, &mut oom_seen);
        }
        if p.search_rate > 0 {
            let mut wake = next_log.min(next_op(p.search_rate, t0, tally.ops + batch));
            if let Some(d) = deadline {
                wake = wake.min(d);
            }
            if p.scope == Scope::Container {
                wake = wake.min(next_adjust);
            }
            wk.nap(wake.saturating_duration_since(Instant::now()));
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let msg = messages::hold_complete(tally.activity, tally.hits, secs, w.kind());
    wk.log(Operation::SearchTreeComplete, msg);
    Ok(())
}

/// Operations due by `now` at `rate` per second (unthrottled: as many as a batch takes).
fn due_ops(rate: u64, t0: Instant, now: Instant, done: u64) -> u64 {
    if rate == 0 {
        return MAX_CHUNK;
    }
    let allowed = (rate as f64 * now.duration_since(t0).as_secs_f64()) as u64;
    allowed.saturating_sub(done)
}

/// Operations per batch: what the adaptive chunk allows, and when throttled at most a
/// twentieth of a second's worth, so a rate-limited hold spreads its work over the second.
fn batch_size(rate: u64, chunk: u64) -> u64 {
    match rate {
        0 => chunk,
        r => chunk.min((r / 20).max(1)),
    }
}

/// When the operation after the first `ops` is due at `rate` per second.
fn next_op(rate: u64, t0: Instant, ops: u64) -> Instant {
    t0 + Duration::from_secs_f64(ops as f64 / rate.max(1) as f64)
}

/// The log-interval work: the activity rate, keep hot, huge pages, OOM kills, progress.
fn progress(
    wk: &Worker,
    w: &dyn Workload,
    rate_start: &mut (Instant, u64),
    deadline: Option<Instant>,
    oom_seen: &mut Option<u64>,
) {
    let s = &wk.shared;
    let now = Instant::now();
    let total = s.counters.activity.load(Ordering::Relaxed);
    let secs = now.duration_since(rate_start.0).as_secs_f64();
    let rate = total.saturating_sub(rate_start.1) as f64 / secs.max(1e-9);
    store_f64(&s.counters.activity_per_second, rate);
    *rate_start = (now, total);
    if s.params.keep_hot {
        let stop = || s.stopping();
        std::hint::black_box(w.touch_all(&stop));
    }
    wk.sample_huge(w);
    wk.check_oom(oom_seen);
    let left = deadline.map(|d| d.saturating_duration_since(now));
    let msg = messages::hold_progress(total, rate, w.kind(), left);
    wk.log(Operation::SearchTreeProgress, msg);
}

/// CONTAINER scope: grows or shrinks the workload when the working set left the band.
fn adjust(wk: &Worker, w: &mut dyn Workload, target: u64) -> Result<(), Interrupt> {
    let ws = wk.measure()?;
    let band = Worker::band(target);
    if ws + band < target {
        let want = target - ws;
        let mut added = 0u64;
        let stop = || wk.shared.stopping();
        while added + (PAGE as u64) < want && !stop() {
            let budget = usize::try_from(want - added).unwrap_or(usize::MAX);
            let got = w.grow(budget, &stop)?;
            if got == 0 {
                break;
            }
            added += got;
        }
        wk.publish_counts(w);
        wk.log(
            Operation::Notice,
            messages::container_grew(ws, target, added),
        );
    } else if ws > target + band {
        let freed = w.shrink(ws - target);
        wk.publish_counts(w);
        if freed > 0 {
            wk.log(
                Operation::Notice,
                messages::container_shrank(ws, target, freed),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_batches_spread_over_the_second() {
        assert_eq!(batch_size(1000, 4096), 50);
        assert_eq!(
            batch_size(1000, 8),
            8,
            "the chunk still caps a slow operation"
        );
        assert_eq!(batch_size(5, 4096), 1);
        assert_eq!(batch_size(0, 4096), 4096, "unthrottled: the chunk alone");
    }

    #[test]
    fn operations_come_due_at_the_rate() {
        let t0 = Instant::now();
        let at = |secs: f64| t0 + Duration::from_secs_f64(secs);
        assert_eq!(due_ops(1000, t0, at(0.5), 0), 500);
        assert_eq!(due_ops(1000, t0, at(0.5), 450), 50);
        assert_eq!(
            due_ops(1000, t0, at(0.5), 600),
            0,
            "ahead of the rate: nothing due"
        );
        assert_eq!(due_ops(0, t0, at(0.0), 10), MAX_CHUNK);
        assert_eq!(next_op(1000, t0, 50), at(0.05));
    }

    #[test]
    fn the_chunk_doubles_when_quick_and_halves_when_slow() {
        let mut c = Chunk(1);
        c.adapt(Duration::from_micros(10));
        assert_eq!(c.0, 2);
        c.adapt(Duration::from_millis(5));
        assert_eq!(c.0, 2, "2-20 ms is right");
        c.adapt(Duration::from_millis(50));
        c.adapt(Duration::from_millis(50));
        assert_eq!(c.0, 1, "never below one");
        for _ in 0..20 {
            c.adapt(Duration::ZERO);
        }
        assert_eq!(c.0, MAX_CHUNK);
    }
}
