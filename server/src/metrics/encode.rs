//! The metric families, written from one [`Scrape`].
//!
//! Names follow the Prometheus conventions: base units (bytes, seconds) in the name, declared
//! with `# UNIT`; counters end in `_total`; `process_*` as the official clients export them,
//! so stock dashboards work. A value that is unknown (no cgroup, unreadable file) has its
//! family declared without a sample rather than a made-up zero.

use super::Scrape;
use crate::engine::{RunStatus, State};
use crate::history::model::HistoryMode;
use crate::history::tally::HistogramSnapshot;
use crate::params::MIB;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeMetric, MetricEncoder,
    NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

type Res = Result<(), std::fmt::Error>;

/// Every state is exported, the current one as 1.
const STATES: [State; 6] = State::ALL;

/// Writes all families.
pub(super) fn all(s: &Scrape, enc: &mut DescriptorEncoder<'_>) -> Res {
    engine(s, enc)?;
    run(s, enc)?;
    history(s, enc)?;
    logs(s, enc)?;
    container(s, enc)?;
    process(s, enc)
}

fn engine(s: &Scrape, enc: &mut DescriptorEncoder<'_>) -> Res {
    enc.encode_descriptor(
        "memstress_build",
        "Version of stressd; always 1.",
        None,
        MetricType::Info,
    )?
    .encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
    let states: Vec<(&str, u64)> = STATES
        .iter()
        .map(|st| (st.name(), u64::from(*st == s.status.state)))
        .collect();
    labelled_gauge(
        enc,
        "memstress_state",
        "Lifecycle state of stressd: 1 for the current state, 0 for the others.",
        "state",
        &states,
    )?;
    counter(
        enc,
        "memstress_searches",
        "Hold activity of every run of this process, in its workload's unit (searches, walk steps, lookups, multiply-adds).",
        None,
        Some(s.status.searches_total),
    )
}

fn run(s: &Scrape, enc: &mut DescriptorEncoder<'_>) -> Res {
    let run = s.status.run.as_ref();
    let field = |f: fn(&RunStatus) -> u64| Some(run.map_or(0, f));
    gauge(
        enc,
        "memstress_target",
        "Memory target of the current or last run (0 before any run).",
        Some(&Unit::Bytes),
        field(|r| r.target_bytes),
    )?;
    gauge(
        enc,
        "memstress_nodes",
        "Items held by the current or last run: tree or list nodes, hash entries, matrix blocks (0 once cleared).",
        None,
        field(|r| r.nodes),
    )?;
    gauge(
        enc,
        "memstress_payload",
        "Payload bytes held by the current or last run (0 once cleared).",
        Some(&Unit::Bytes),
        field(|r| r.payload_bytes),
    )?;
    gauge(
        enc,
        "memstress_fill_rate",
        "Fill rate over the last half second while building, else 0.",
        Some(&Unit::Other("bytes_per_second".into())),
        Some(fill_rate_bytes_per_second(s)),
    )?;
    gauge(
        enc,
        "memstress_peak_resident_memory",
        "Peak resident memory of stressd during the current or last run (current RSS before any run).",
        Some(&Unit::Bytes),
        Some(s.status.peak_rss_bytes),
    )?;
    gauge(
        enc,
        "memstress_peak_working_set",
        "Peak container working set during the current or last run (current working set before any run); absent when unknown.",
        Some(&Unit::Bytes),
        s.status.peak_working_set_bytes,
    )
}

/// Bytes per second; the engine reports MiB/s (and 0 outside BUILDING already).
fn fill_rate_bytes_per_second(s: &Scrape) -> f64 {
    match &s.status.run {
        Some(r) if s.status.state == State::Building => {
            let rate = r.current_fill_rate_mb_per_second * MIB as f64;
            if rate.is_finite() && rate > 0.0 {
                rate
            } else {
                0.0
            }
        }
        _ => 0.0,
    }
}

fn history(s: &Scrape, enc: &mut DescriptorEncoder<'_>) -> Res {
    let h = &s.status.history;
    let runs: Vec<(&str, u64)> = h.tally.runs.iter().map(|(o, n)| (o.name(), *n)).collect();
    labelled_counter(
        enc,
        "memstress_runs",
        "Finished runs by outcome, including runs of earlier processes recovered from the history at startup.",
        "outcome",
        &runs,
    )?;
    let ttt = TimeToTarget(&h.tally.time_to_target);
    ttt.encode(enc.encode_descriptor(
        "memstress_time_to_target",
        "Build time from start to reaching the target, per run that reached it.",
        Some(&Unit::Seconds),
        ttt.metric_type(),
    )?)?;
    gauge(
        enc,
        "memstress_history_durable",
        "1 when the run history is kept in a file that outlives the process, 0 when it is memory-only.",
        None,
        Some(u64::from(matches!(
            h.status.mode,
            HistoryMode::Durable { .. }
        ))),
    )
}

fn logs(s: &Scrape, enc: &mut DescriptorEncoder<'_>) -> Res {
    counter(
        enc,
        "memstress_log_entries",
        "Log entries published since the process started.",
        None,
        Some(s.log_entries),
    )?;
    gauge(
        enc,
        "memstress_log_watchers",
        "WatchLogs streams being served (replaying or following).",
        None,
        Some(s.log_watchers),
    )
}

fn container(s: &Scrape, enc: &mut DescriptorEncoder<'_>) -> Res {
    let c = &s.status.container;
    gauge(
        enc,
        "memstress_container_memory_limit",
        "Effective memory limit of the container's cgroup; absent when unlimited or unknown.",
        Some(&Unit::Bytes),
        c.limit_bytes,
    )?;
    gauge(
        enc,
        "memstress_container_memory_usage",
        "Memory charged to the container's cgroup; absent when unknown.",
        Some(&Unit::Bytes),
        c.usage_bytes,
    )?;
    gauge(
        enc,
        "memstress_container_memory_working_set",
        "Container working set (usage minus inactive file), what eviction and kubectl top use; absent when unknown.",
        Some(&Unit::Bytes),
        c.working_set_bytes,
    )?;
    counter(
        enc,
        "memstress_container_oom_kills",
        "OOM kills in the container's cgroup; absent when unknown.",
        None,
        c.oom_kills,
    )?;
    let pressure: Vec<(&str, f64)> = c
        .pressure
        .map(|p| {
            vec![
                ("some", micros_to_seconds(p.some_total_us)),
                ("full", micros_to_seconds(p.full_total_us)),
            ]
        })
        .unwrap_or_default();
    let mut m = enc.encode_descriptor(
        "memstress_container_memory_pressure",
        "Time tasks of the container stalled on memory (PSI): some = at least one task, full = all non-idle tasks; absent when unknown.",
        Some(&Unit::Seconds),
        MetricType::Counter,
    )?;
    for (kind, v) in &pressure {
        m.encode_family(&[("kind", *kind)])?
            .encode_counter::<NoLabelSet, _, f64>(v, None)?;
    }
    Ok(())
}

fn micros_to_seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

fn process(s: &Scrape, enc: &mut DescriptorEncoder<'_>) -> Res {
    gauge(
        enc,
        "process_resident_memory",
        "Resident memory size of stressd.",
        Some(&Unit::Bytes),
        Some(s.status.rss_bytes),
    )?;
    counter(
        enc,
        "process_cpu",
        "User and system CPU time spent by stressd.",
        Some(&Unit::Seconds),
        Some(s.status.process_cpu_seconds),
    )?;
    gauge(
        enc,
        "process_start_time",
        "Start time of stressd since the Unix epoch.",
        Some(&Unit::Seconds),
        s.process.start_time_seconds,
    )?;
    gauge(
        enc,
        "process_open_fds",
        "Open file descriptors of stressd.",
        None,
        s.process.open_fds,
    )
}

/// The tally's time-to-target histogram as an [`EncodeMetric`].
struct TimeToTarget<'a>(&'a HistogramSnapshot);

impl EncodeMetric for TimeToTarget<'_> {
    fn encode(&self, mut encoder: MetricEncoder) -> Res {
        let buckets = per_bucket_counts(self.0);
        encoder.encode_histogram::<NoLabelSet>(self.0.sum, self.0.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The tally keeps cumulative counts (`le` semantics); `encode_histogram` wants the count of
/// each bucket on its own and accumulates them itself. Always ends with `+Inf` holding
/// `count`, which OpenMetrics requires even for an empty histogram.
pub(super) fn per_bucket_counts(h: &HistogramSnapshot) -> Vec<(f64, u64)> {
    let mut out = Vec::with_capacity(h.buckets.len() + 1);
    let mut below = 0u64;
    for &(bound, cumulative) in h.buckets.iter().filter(|(b, _)| b.is_finite()) {
        let cumulative = cumulative.max(below).min(h.count);
        out.push((bound, cumulative - below));
        below = cumulative;
    }
    out.push((f64::INFINITY, h.count.saturating_sub(below)));
    out
}

fn gauge<V: EncodeGaugeValue>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: Option<V>,
) -> Res {
    let mut m = enc.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    value.map_or(Ok(()), |v| m.encode_gauge(&v))
}

fn counter<V: EncodeCounterValue>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: Option<V>,
) -> Res {
    let mut m = enc.encode_descriptor(name, help, unit, MetricType::Counter)?;
    value.map_or(Ok(()), |v| m.encode_counter::<NoLabelSet, V, f64>(&v, None))
}

fn labelled_gauge(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    key: &str,
    samples: &[(&str, u64)],
) -> Res {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (label, v) in samples {
        m.encode_family(&[(key, *label)])?.encode_gauge(v)?;
    }
    Ok(())
}

fn labelled_counter(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    key: &str,
    samples: &[(&str, u64)],
) -> Res {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (label, v) in samples {
        m.encode_family(&[(key, *label)])?
            .encode_counter::<NoLabelSet, _, f64>(v, None)?;
    }
    Ok(())
}
