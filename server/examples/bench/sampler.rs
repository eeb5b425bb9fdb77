//! Tight RSS sampling of another process on its own OS thread.

use crate::daemon::RssReader;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Samples `/proc/<pid>/statm` every `period` until finished.
pub(crate) struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<(Instant, u64)>>,
}

/// Time-stamped RSS samples.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    /// (when, RSS bytes), in time order.
    pub(crate) points: Vec<(Instant, u64)>,
}

impl Sampler {
    /// Starts sampling `pid` at once (the first sample is taken before this returns).
    pub(crate) fn start(pid: u32, period: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let reader = RssReader::new(pid);
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("rss-sampler".into())
            .spawn(move || {
                let mut points = Vec::with_capacity(16_384);
                let mut first = Some(first_tx);
                while !flag.load(Ordering::Acquire) {
                    let Some(rss) = reader.read() else { break };
                    points.push((Instant::now(), rss));
                    if let Some(tx) = first.take() {
                        let _ = tx.send(());
                    }
                    std::thread::sleep(period);
                }
                points
            })?;
        let _ = first_rx.recv_timeout(Duration::from_secs(1));
        Ok(Self { stop, handle })
    }

    /// Stops sampling and returns what was seen.
    pub(crate) fn finish(self) -> Samples {
        self.stop.store(true, Ordering::Release);
        Samples {
            points: self.handle.join().unwrap_or_default(),
        }
    }
}

impl Samples {
    /// First sample at or after `from` whose RSS is at least `bytes`.
    pub(crate) fn first_at_least(&self, from: Instant, bytes: u64) -> Option<(Instant, u64)> {
        self.points
            .iter()
            .copied()
            .find(|(t, r)| *t >= from && *r >= bytes)
    }

    /// Highest RSS seen.
    pub(crate) fn max(&self) -> u64 {
        self.points.iter().map(|p| p.1).max().unwrap_or(0)
    }
}
