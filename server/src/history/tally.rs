//! Counts of finished runs by outcome and the time-to-target distribution of this process,
//! including the runs recovered from the store at startup. Monotonic, so Prometheus can read
//! them as counters and a histogram.

use super::model::Outcome;
use std::sync::{Mutex, PoisonError};

/// Upper bounds of the time-to-target buckets, seconds: a full-speed fill of a few GiB lands
/// under one second, a ramped one takes minutes.
pub const TIME_TO_TARGET_BUCKETS: [f64; 13] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// A histogram as read: cumulative counts per upper bound (the last bound is +Inf).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistogramSnapshot {
    /// `(upper bound, observations <= bound)`, ending with `(f64::INFINITY, count)`.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// The tally as read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TallySnapshot {
    /// Finished runs per outcome (every outcome but `Running` is listed, zeros included).
    pub runs: Vec<(Outcome, u64)>,
    /// Build time to target, seconds.
    pub time_to_target: HistogramSnapshot,
}

#[derive(Debug, Default)]
struct Inner {
    runs: [u64; Outcome::ALL.len()],
    buckets: [u64; TIME_TO_TARGET_BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Counts, behind a short lock (a few updates per run).
#[derive(Debug, Default)]
pub struct RunTally {
    inner: Mutex<Inner>,
}

impl RunTally {
    /// Counts one finished (or recovered) run.
    pub fn count_run(&self, outcome: Outcome) {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = Outcome::ALL.iter().position(|o| *o == outcome) {
            g.runs[i] += 1;
        }
    }

    /// Records one build's time to target.
    pub fn observe_time_to_target(&self, seconds: f64) {
        if !seconds.is_finite() || seconds < 0.0 {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = TIME_TO_TARGET_BUCKETS.iter().position(|b| seconds <= *b) {
            g.buckets[i] += 1;
        }
        g.sum += seconds;
        g.count += 1;
    }

    /// The counts now.
    pub fn snapshot(&self) -> TallySnapshot {
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut cumulative = 0;
        let mut buckets: Vec<(f64, u64)> = TIME_TO_TARGET_BUCKETS
            .iter()
            .zip(g.buckets)
            .map(|(b, n)| {
                cumulative += n;
                (*b, cumulative)
            })
            .collect();
        buckets.push((f64::INFINITY, g.count));
        TallySnapshot {
            runs: Outcome::ALL
                .iter()
                .zip(g.runs)
                .filter(|(o, _)| **o != Outcome::Running)
                .map(|(o, n)| (*o, n))
                .collect(),
            time_to_target: HistogramSnapshot {
                buckets,
                sum: g.sum,
                count: g.count,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_end_in_inf() {
        let t = RunTally::default();
        t.observe_time_to_target(0.05);
        t.observe_time_to_target(0.3);
        t.observe_time_to_target(5000.0);
        t.observe_time_to_target(f64::NAN);
        let s = t.snapshot().time_to_target;
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets.first(), Some(&(0.1, 1)));
        assert_eq!(s.buckets.get(2), Some(&(0.5, 2)));
        assert_eq!(s.buckets.get(12), Some(&(1800.0, 2)));
        assert_eq!(s.buckets.last(), Some(&(f64::INFINITY, 3)));
        assert!((s.sum - 5000.35).abs() < 1e-9);
    }

    #[test]
    fn runs_by_outcome_skip_running() {
        let t = RunTally::default();
        t.count_run(Outcome::OomKilled);
        t.count_run(Outcome::OomKilled);
        t.count_run(Outcome::Completed);
        let s = t.snapshot();
        assert_eq!(s.runs.len(), 5);
        assert!(s.runs.contains(&(Outcome::OomKilled, 2)));
        assert!(s.runs.contains(&(Outcome::Completed, 1)));
        assert!(s.runs.contains(&(Outcome::Killed, 0)));
    }
}
