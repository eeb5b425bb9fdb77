//! Prometheus `/metrics` in the OpenMetrics text format.
//!
//! Nothing is counted here: every value is computed at scrape time from one
//! [`Engine::status`] snapshot (the one the gRPC Status answers from), the log hub's two
//! counters and a few `/proc` facts. So /metrics and Status can never disagree by more than
//! the time between two reads, and there is no second bookkeeping to keep in step with the
//! engine.

mod encode;
pub(crate) mod process;

use crate::engine::{Engine, StatusSnapshot};
use process::{ProcessFacts, ProcessReader};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::sync::Arc;

/// The media type of [`Exporter::render`]'s output, for the HTTP `Content-Type`.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Renders the metrics of one stressd. Cheap to share (`Arc`); each render takes its own
/// snapshot, so concurrent scrapes never block each other or the workload.
#[derive(Debug)]
pub(crate) struct Exporter {
    registry: Registry,
}

impl Exporter {
    /// An exporter over `engine`, reading process facts under `fs_root` ("/" in production,
    /// a fixture tree in tests, like [`crate::engine::EngineConfig::fs_root`]).
    pub(crate) fn new(engine: Arc<Engine>, fs_root: PathBuf) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(StressCollector {
            engine,
            process: ProcessReader::new(&fs_root),
        }));
        Self { registry }
    }

    /// One scrape: the OpenMetrics text, ending with `# EOF`. Reads `/proc` and cgroup files,
    /// so async callers should run it on a blocking thread.
    pub(crate) fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(8 << 10);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Everything one scrape reports, read once at its start.
#[derive(Debug, Clone)]
pub(crate) struct Scrape {
    /// The same snapshot Status answers from.
    pub status: StatusSnapshot,
    /// Log entries published so far.
    pub log_entries: u64,
    /// WatchLogs streams being served.
    pub log_watchers: u64,
    /// Start time and open descriptors.
    pub process: ProcessFacts,
}

impl Scrape {
    /// Reads the engine, its log hub and the process now.
    pub(crate) fn take(engine: &Engine, process: &ProcessReader) -> Self {
        let logs = engine.logs();
        Self {
            status: engine.status(),
            log_entries: logs.entries_total(),
            log_watchers: u64::try_from(logs.watchers()).unwrap_or(u64::MAX),
            process: process.read(),
        }
    }

    /// Writes every metric family of this scrape (without the `# EOF` trailer).
    pub(crate) fn encode(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        encode::all(self, encoder)
    }
}

/// The one collector: a snapshot per scrape.
#[derive(Debug)]
struct StressCollector {
    engine: Arc<Engine>,
    process: ProcessReader,
}

impl Collector for StressCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        Scrape::take(&self.engine, &self.process).encode(&mut encoder)
    }
}

#[cfg(test)]
mod tests;
