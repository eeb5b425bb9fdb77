//! Per-client rate limit of the mutating RPCs (Start, Stop, Clear): one token bucket per peer
//! IP. Each Stop or Clear takes the control lock and may join a worker, so a client looping on
//! them must not starve everyone else; reads are cheap and are not limited.
//!
//! Memory is bounded: at most [`MAX_PEERS`] buckets. A bucket idle long enough to have refilled
//! is the same as no bucket, so it is swept first; only if every bucket is still refilling is
//! the longest-idle one evicted (that client gets a fresh, full bucket: lenient, never stuck).

use crate::error::EngineError;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Most peers tracked at once.
pub const MAX_PEERS: usize = 10_000;

/// `--rate-limit` / `--rate-burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateConfig {
    /// Mutating calls per second per client, refilled continuously; 0 turns the limit off.
    pub per_second: u32,
    /// Calls a client may make at once after being idle; 0 turns the limit off.
    pub burst: u32,
}

impl RateConfig {
    /// Whether any limit applies.
    pub fn enabled(self) -> bool {
        self.per_second > 0 && self.burst > 0
    }

    /// How long an untouched bucket takes to refill completely.
    fn refill_time(self) -> Duration {
        Duration::from_secs_f64(f64::from(self.burst) / f64::from(self.per_second.max(1)))
    }
}

/// One client's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(config: RateConfig, now: Instant) -> Self {
        Self {
            tokens: f64::from(config.burst),
            last: now,
        }
    }

    /// Takes one call's token at `now`, or says how long until one is there.
    pub fn take(&mut self, config: RateConfig, now: Instant) -> Result<(), Duration> {
        let rate = f64::from(config.per_second);
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(config.burst));
        self.last = now.max(self.last);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

/// The buckets of every recent client.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateConfig,
    max_peers: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// A limiter; `None` when `config` turns limiting off.
    pub fn new(config: RateConfig) -> Option<Self> {
        Self::with_capacity(config, MAX_PEERS)
    }

    fn with_capacity(config: RateConfig, max_peers: usize) -> Option<Self> {
        config.enabled().then(|| Self {
            config,
            max_peers: max_peers.max(1),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Admits one mutating call from `ip` at `now`, or refuses it with the time to wait.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), EngineError> {
        let config = self.config;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if !buckets.contains_key(&ip) && buckets.len() >= self.max_peers {
            evict(&mut buckets, config, now);
        }
        let bucket = buckets
            .entry(ip)
            .or_insert_with(|| Bucket::full(config, now));
        bucket
            .take(config, now)
            .map_err(|wait| EngineError::RateLimited {
                per_second: config.per_second,
                burst: config.burst,
                // Rounded up, so a client that waits exactly this long is admitted.
                retry_after_ms: u64::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u64::MAX),
            })
    }

    /// Clients tracked now.
    pub fn peers(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Makes room for one more bucket: drops every refilled bucket, or else the longest-idle one.
fn evict(buckets: &mut HashMap<IpAddr, Bucket>, config: RateConfig, now: Instant) {
    let refill = config.refill_time();
    let before = buckets.len();
    buckets.retain(|_, b| now.saturating_duration_since(b.last) < refill);
    if buckets.len() < before {
        return;
    }
    let oldest = buckets
        .iter()
        .min_by_key(|(_, b)| b.last)
        .map(|(ip, _)| *ip);
    if let Some(ip) = oldest {
        buckets.remove(&ip);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CFG: RateConfig = RateConfig {
        per_second: 50,
        burst: 100,
    };

    #[test]
    fn a_bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::full(CFG, t0);
        for _ in 0..100 {
            b.take(CFG, t0).unwrap();
        }
        let wait = b.take(CFG, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(20));
        // 10 ms later: half a token; 10 ms more to wait.
        let wait = b.take(CFG, t0 + Duration::from_millis(10)).unwrap_err();
        assert!((wait.as_secs_f64() - 0.010).abs() < 1e-9, "{wait:?}");
        b.take(CFG, t0 + Duration::from_millis(20)).unwrap();
        // A long idle refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..100 {
            b.take(CFG, later).unwrap();
        }
        assert!(b.take(CFG, later).is_err());
    }

    #[test]
    fn refusals_say_the_limit_and_the_wait() {
        let lim = RateLimiter::new(RateConfig {
            per_second: 50,
            burst: 2,
        })
        .unwrap();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let t0 = Instant::now();
        lim.check(ip, t0).unwrap();
        lim.check(ip, t0).unwrap();
        let err = lim.check(ip, t0).unwrap_err().to_string();
        assert_eq!(
            err,
            "rate limit: 50 mutating calls/s per client (burst 2); retry in 20 ms"
        );
        // Another client has its own bucket.
        lim.check("10.1.2.4".parse().unwrap(), t0).unwrap();
    }

    #[test]
    fn zero_turns_it_off() {
        for (per_second, burst) in [(0, 100), (50, 0), (0, 0)] {
            assert!(RateLimiter::new(RateConfig { per_second, burst }).is_none());
        }
    }

    #[test]
    fn memory_is_bounded() {
        let lim = RateLimiter::with_capacity(CFG, 3).unwrap();
        let t0 = Instant::now();
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        for n in 0..3 {
            lim.check(ip(n), t0 + Duration::from_millis(u64::from(n)))
                .unwrap();
        }
        // All still refilling: the longest idle (10.0.0.0) goes.
        lim.check(ip(3), t0 + Duration::from_millis(3)).unwrap();
        assert_eq!(lim.peers(), 3);
        // Much later every bucket has refilled: all are swept.
        lim.check(ip(4), t0 + Duration::from_secs(60)).unwrap();
        assert_eq!(lim.peers(), 1);
        for n in 0..=255 {
            lim.check(ip(n), t0 + Duration::from_secs(61)).unwrap();
            assert!(lim.peers() <= 3);
        }
    }
}
