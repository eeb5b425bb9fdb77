//! The data behind `stressctl top`: every poll, Status of every endpoint in parallel and the
//! log entries each logged since the last poll; `dns:///` names resolved again every few
//! seconds so pods join and leave the view.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::stream;
use memstress_proto::v1::LogEntry;

use super::call::CONCURRENCY;
use super::logs::kept_entries;
use super::resolve::{self, display_addr};
use crate::app::{Ctx, Settings};
use crate::top::{Sample, Source};

/// How often names are resolved again.
const RESOLVE_EVERY: Duration = Duration::from_secs(5);
/// Entries handed to the view on the first poll of an endpoint (it shows only the newest).
pub(crate) const FIRST_POLL_ENTRIES: usize = 20;

/// What the source remembers about one endpoint between polls.
#[derive(Default, Clone)]
struct Track {
    /// The connection, kept across polls (dropped after a failure, so the next poll reconnects).
    ctx: Option<Ctx>,
    /// Next sequence number wanted; 0 = not read yet (first poll, or a restarted process).
    next: u64,
    /// The instance id last seen.
    instance_id: String,
}

/// A [`Source`] over the endpoints the `--addr` values stand for.
pub(crate) struct FleetSource {
    addrs: Vec<String>,
    settings: Settings,
    tracks: BTreeMap<String, Track>,
    resolved_at: Option<Instant>,
}

impl FleetSource {
    /// A source over `addrs` (plain addresses and `dns:///` names).
    pub(crate) fn new(addrs: Vec<String>, settings: Settings) -> Self {
        FleetSource {
            addrs,
            settings,
            tracks: BTreeMap::new(),
            resolved_at: None,
        }
    }

    /// Resolves the names when due, adding new endpoints and dropping gone ones.
    async fn refresh_endpoints(&mut self) {
        let due = self
            .resolved_at
            .is_none_or(|t| t.elapsed() >= RESOLVE_EVERY);
        if !due {
            return;
        }
        let resolved = resolve::resolve(&self.addrs).await;
        // A failed lookup keeps the endpoints known so far instead of emptying the view.
        if resolved.endpoints.is_empty() && !resolved.failures.is_empty() && !self.tracks.is_empty()
        {
            return;
        }
        self.tracks
            .retain(|addr, _| resolved.endpoints.contains(addr));
        for addr in resolved.endpoints {
            self.tracks.entry(addr).or_default();
        }
        self.resolved_at = Some(Instant::now());
    }
}

/// The newest `n` entries of `entries`.
pub(crate) fn newest(mut entries: Vec<LogEntry>, n: usize) -> Vec<LogEntry> {
    let cut = entries.len().saturating_sub(n);
    entries.drain(..cut);
    entries
}

/// One endpoint's poll: Status, then the entries since the last poll.
async fn poll_one(addr: String, mut track: Track, settings: Settings) -> (String, Track, Sample) {
    let endpoint = display_addr(&addr).to_owned();
    let ctx = match track.ctx.take() {
        Some(ctx) => ctx,
        None => match Ctx::connect(&addr, &settings).await {
            Ok(ctx) => ctx,
            Err(e) => {
                let sample = Sample {
                    endpoint,
                    status: Err(e.to_string()),
                    logs: Vec::new(),
                };
                return (addr, track, sample);
            }
        },
    };
    let status = match ctx.status_call().await {
        Ok(s) => s,
        Err(e) => {
            let sample = Sample {
                endpoint,
                status: Err(e.to_string()),
                logs: Vec::new(),
            };
            return (addr, track, sample);
        }
    };
    let id = status
        .instance
        .as_ref()
        .map(|i| i.instance_id.clone())
        .unwrap_or_default();
    if id != track.instance_id {
        track.next = 0;
        track.instance_id = id;
    }
    let first = track.next == 0;
    let logs = match kept_entries(&ctx, track.next).await {
        Ok(entries) => {
            if let Some(last) = entries.iter().rev().find(|e| e.sequence > 0) {
                track.next = last.sequence + 1;
            }
            if first {
                newest(entries, FIRST_POLL_ENTRIES)
            } else {
                entries
            }
        }
        Err(_) => Vec::new(),
    };
    track.ctx = Some(ctx);
    (
        addr,
        track,
        Sample {
            endpoint,
            status: Ok(status),
            logs,
        },
    )
}

impl Source for FleetSource {
    fn poll(&mut self) -> Pin<Box<dyn Future<Output = Vec<Sample>> + Send + '_>> {
        Box::pin(async move {
            self.refresh_endpoints().await;
            let settings = self.settings.clone();
            let tracks = std::mem::take(&mut self.tracks);
            let timeout = settings.timeout;
            let results: Vec<(String, Track, Sample)> = stream::iter(tracks)
                .map(|(addr, track)| {
                    let settings = settings.clone();
                    // What survives a poll that timed out: the place in the log, not the
                    // connection.
                    let kept = Track {
                        ctx: None,
                        ..track.clone()
                    };
                    async move {
                        let endpoint = display_addr(&addr).to_owned();
                        // The whole poll of one endpoint within --timeout (each call has it too).
                        match tokio::time::timeout(timeout, poll_one(addr.clone(), track, settings))
                            .await
                        {
                            Ok(r) => r,
                            Err(_) => {
                                let why =
                                    format!("no answer within {}", crate::human::duration(timeout));
                                (
                                    addr,
                                    kept,
                                    Sample {
                                        endpoint,
                                        status: Err(why),
                                        logs: Vec::new(),
                                    },
                                )
                            }
                        }
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            let mut samples = Vec::with_capacity(results.len());
            for (addr, track, sample) in results {
                self.tracks.insert(addr, track);
                samples.push(sample);
            }
            samples.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
            samples
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_poll_keeps_the_newest_entries() {
        let entries: Vec<LogEntry> = (1..=50)
            .map(|s| LogEntry {
                sequence: s,
                ..LogEntry::default()
            })
            .collect();
        let kept = newest(entries, FIRST_POLL_ENTRIES);
        assert_eq!(kept.len(), 20);
        assert_eq!(kept[0].sequence, 31);
        assert_eq!(kept[19].sequence, 50);
        assert_eq!(newest(Vec::new(), 20).len(), 0);
    }
}
