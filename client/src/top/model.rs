//! What the view shows, kept between polls: per endpoint a ring of (time, RSS, working set)
//! over the chart window, the newest Status or the error of the last poll, and one merged log
//! tail. Pure: time comes in as an argument, so tests drive it without a clock.

use super::Sample;
use memstress_proto::v1::{LogEntry, StatusResponse};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Log lines kept for the tail (more than any terminal shows).
const LOG_LINES: usize = 200;
/// Points kept per endpoint whatever the window, so a tiny refresh cannot grow memory without
/// bound (an hour at 1 s is 3,600).
const MAX_POINTS: usize = 4096;
/// The shortest time the chart's x axis spans (a fresh view's first seconds).
const MIN_SPAN: Duration = Duration::from_secs(10);

/// One measurement of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    /// Seconds since the model was created (the chart's x axis).
    pub(crate) t: f64,
    /// stressd's RSS, bytes.
    pub(crate) rss: u64,
    /// The container's working set, bytes (when stressd could read it).
    pub(crate) ws: Option<u64>,
}

/// Everything known about one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The address it is polled at (the key).
    pub(crate) address: String,
    /// Its pod name when stressd knows one, else its address.
    pub(crate) name: String,
    /// The newest Status it answered (kept while it fails, so the chart and numbers stay).
    pub(crate) status: Option<StatusResponse>,
    /// Why the last poll failed (None when it answered).
    pub(crate) error: Option<String>,
    /// Measurements within the window, oldest first.
    pub(crate) points: VecDeque<Point>,
    /// Restarts seen (the instance id changed between two answers).
    pub(crate) restarts: u32,
    /// The instance id of the newest answer.
    instance_id: String,
}

impl Endpoint {
    fn new(address: &str) -> Self {
        Self {
            address: address.to_owned(),
            name: address.to_owned(),
            status: None,
            error: None,
            points: VecDeque::new(),
            restarts: 0,
            instance_id: String::new(),
        }
    }
}

/// One line of the merged log tail.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogLine {
    /// The endpoint's display name.
    pub(crate) source: String,
    /// The text without the source prefix.
    pub(crate) text: String,
}

/// The whole state of the view.
#[derive(Debug)]
pub(crate) struct Model {
    epoch: Instant,
    window: Duration,
    /// Seconds since the epoch of the newest poll.
    now: f64,
    /// Endpoints by address (stable order for the panels and chart colours).
    endpoints: BTreeMap<String, Endpoint>,
    logs: VecDeque<LogLine>,
    polls: u64,
}

impl Model {
    /// An empty model whose time axis starts at `epoch` and keeps `window` of history.
    pub(crate) fn new(window: Duration, epoch: Instant) -> Self {
        Self {
            epoch,
            window,
            now: 0.0,
            endpoints: BTreeMap::new(),
            logs: VecDeque::new(),
            polls: 0,
        }
    }

    /// Takes in one poll made at `now`: endpoints missing from it have gone away and are
    /// dropped, new ones appear, every answer adds a point and trims those older than the
    /// window.
    pub(crate) fn apply(&mut self, samples: Vec<Sample>, now: Instant) {
        self.polls += 1;
        self.now = now.saturating_duration_since(self.epoch).as_secs_f64();
        self.endpoints
            .retain(|address, _| samples.iter().any(|s| &s.endpoint == address));
        for sample in samples {
            self.apply_one(sample);
        }
        let oldest = self.now - self.window.as_secs_f64();
        for ep in self.endpoints.values_mut() {
            while ep.points.front().is_some_and(|p| p.t < oldest) || ep.points.len() > MAX_POINTS {
                ep.points.pop_front();
            }
        }
    }

    fn apply_one(&mut self, sample: Sample) {
        let now = self.now;
        let ep = self
            .endpoints
            .entry(sample.endpoint.clone())
            .or_insert_with(|| Endpoint::new(&sample.endpoint));
        match sample.status {
            Ok(status) => {
                let instance = status.instance.clone().unwrap_or_default();
                let restarted = !ep.instance_id.is_empty()
                    && !instance.instance_id.is_empty()
                    && ep.instance_id != instance.instance_id;
                if !instance.instance_id.is_empty() {
                    ep.instance_id = instance.instance_id;
                }
                if !instance.pod_name.is_empty() {
                    ep.name = instance.pod_name;
                }
                ep.points.push_back(Point {
                    t: now,
                    rss: status.rss_bytes,
                    ws: status.container.as_ref().and_then(|c| c.working_set_bytes),
                });
                ep.status = Some(status);
                ep.error = None;
                if restarted {
                    ep.restarts += 1;
                    let line = LogLine {
                        source: ep.name.clone(),
                        text: "stressd restarted (new instance id)".to_owned(),
                    };
                    push_log(&mut self.logs, line);
                }
            }
            Err(error) => ep.error = Some(error),
        }
        let source = ep.name.clone();
        for entry in &sample.logs {
            let text = log_text(entry);
            push_log(
                &mut self.logs,
                LogLine {
                    source: source.clone(),
                    text,
                },
            );
        }
    }

    /// Endpoints in display order.
    pub(crate) fn endpoints(&self) -> impl ExactSizeIterator<Item = &Endpoint> {
        self.endpoints.values()
    }

    /// How many endpoints are shown.
    pub(crate) fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// The newest `n` log lines, oldest first.
    pub(crate) fn log_tail(&self, n: usize) -> impl Iterator<Item = &LogLine> {
        self.logs.iter().skip(self.logs.len().saturating_sub(n))
    }

    /// The chart's x range, ending at the newest poll: the window, or less while the oldest
    /// point is younger than it (so a fresh view fills its width instead of a sliver at the
    /// right edge), but never under [`MIN_SPAN`].
    pub(crate) fn x_bounds(&self) -> [f64; 2] {
        let oldest = self
            .endpoints
            .values()
            .filter_map(|e| e.points.front().map(|p| p.t))
            .fold(self.now, f64::min);
        let span = (self.now - oldest)
            .max(MIN_SPAN.as_secs_f64())
            .min(self.window.as_secs_f64());
        [self.now - span, self.now]
    }

    /// How much time the chart's x axis spans now (see [`Model::x_bounds`]).
    pub(crate) fn span(&self) -> Duration {
        let [from, to] = self.x_bounds();
        Duration::from_secs_f64((to - from).max(0.0))
    }

    /// Polls taken in so far (0: still waiting for the first answer).
    pub(crate) fn polls(&self) -> u64 {
        self.polls
    }
}

fn push_log(logs: &mut VecDeque<LogLine>, line: LogLine) {
    if logs.len() == LOG_LINES {
        logs.pop_front();
    }
    logs.push_back(line);
}

/// A log entry in a line short enough for a terminal: "15:47:14 BUILDING message", with the
/// operation's short label as in `stressctl logs`.
fn log_text(e: &LogEntry) -> String {
    format!(
        "{} {} {}",
        crate::text::time_of_day(e.timestamp_unix_ms),
        crate::text::operation_label(e.operation),
        e.message
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use memstress_proto::v1::{ContainerMemory, Instance, Operation};

    const MIB: u64 = 1 << 20;

    fn ok(endpoint: &str, rss_mib: u64, instance_id: &str) -> Sample {
        Sample {
            endpoint: endpoint.to_owned(),
            status: Ok(StatusResponse {
                rss_bytes: rss_mib * MIB,
                container: Some(ContainerMemory {
                    working_set_bytes: Some(rss_mib * MIB + MIB),
                    ..Default::default()
                }),
                instance: Some(Instance {
                    instance_id: instance_id.to_owned(),
                    pod_name: String::new(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            logs: Vec::new(),
        }
    }

    #[test]
    fn points_older_than_the_window_are_trimmed() {
        let t0 = Instant::now();
        let mut m = Model::new(Duration::from_secs(10), t0);
        for s in 0..=25u64 {
            m.apply(vec![ok("a:1", s, "i")], t0 + Duration::from_secs(s));
        }
        let ep = m.endpoints().next().unwrap();
        let ts: Vec<f64> = ep.points.iter().map(|p| p.t).collect();
        assert_eq!(ts.first(), Some(&15.0));
        assert_eq!(ts.last(), Some(&25.0));
        assert_eq!(ep.points.len(), 11);
        assert_eq!(ep.points.back().unwrap().rss, 25 * MIB);
        assert_eq!(ep.points.back().unwrap().ws, Some(26 * MIB));
        assert_eq!(m.x_bounds(), [15.0, 25.0]);
    }

    #[test]
    fn a_young_view_spans_its_history_not_the_whole_window() {
        let t0 = Instant::now();
        let mut m = Model::new(Duration::from_secs(300), t0);
        m.apply(vec![ok("a:1", 1, "i")], t0 + Duration::from_secs(2));
        assert_eq!(m.x_bounds(), [-8.0, 2.0], "at least ten seconds");
        m.apply(vec![ok("a:1", 1, "i")], t0 + Duration::from_secs(62));
        assert_eq!(m.x_bounds(), [2.0, 62.0]);
        assert_eq!(m.span(), Duration::from_secs(60));
        for t in [650, 800, 1000] {
            m.apply(vec![ok("a:1", 1, "i")], t0 + Duration::from_secs(t));
        }
        assert_eq!(m.x_bounds(), [800.0, 1000.0], "points before 700 are gone");
    }

    #[test]
    fn an_error_keeps_the_last_status_and_points() {
        let t0 = Instant::now();
        let mut m = Model::new(Duration::from_secs(60), t0);
        m.apply(vec![ok("a:1", 64, "i")], t0);
        let failed = Sample {
            endpoint: "a:1".into(),
            status: Err("connection refused".into()),
            logs: Vec::new(),
        };
        m.apply(vec![failed], t0 + Duration::from_secs(1));
        let ep = m.endpoints().next().unwrap();
        assert_eq!(ep.error.as_deref(), Some("connection refused"));
        assert_eq!(ep.status.as_ref().unwrap().rss_bytes, 64 * MIB);
        assert_eq!(ep.points.len(), 1);
        m.apply(vec![ok("a:1", 65, "i")], t0 + Duration::from_secs(2));
        assert_eq!(m.endpoints().next().unwrap().error, None);
    }

    #[test]
    fn endpoints_come_and_go_with_the_poll() {
        let t0 = Instant::now();
        let mut m = Model::new(Duration::from_secs(60), t0);
        m.apply(vec![ok("b:1", 1, "x"), ok("a:1", 1, "y")], t0);
        let names: Vec<&str> = m.endpoints().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a:1", "b:1"]);
        m.apply(vec![ok("b:1", 1, "x"), ok("c:1", 1, "z")], t0);
        let names: Vec<&str> = m.endpoints().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["b:1", "c:1"]);
        assert_eq!(m.len(), 2);
        assert_eq!(m.polls(), 2);
    }

    #[test]
    fn a_new_instance_id_counts_as_a_restart_and_is_logged() {
        let t0 = Instant::now();
        let mut m = Model::new(Duration::from_secs(60), t0);
        m.apply(vec![ok("a:1", 1, "first")], t0);
        m.apply(vec![ok("a:1", 1, "first")], t0);
        assert_eq!(m.endpoints().next().unwrap().restarts, 0);
        m.apply(vec![ok("a:1", 1, "second")], t0);
        assert_eq!(m.endpoints().next().unwrap().restarts, 1);
        let tail: Vec<&LogLine> = m.log_tail(5).collect();
        assert_eq!(tail.len(), 1);
        assert_eq!(tail[0].text, "stressd restarted (new instance id)");
        assert_eq!(tail[0].source, "a:1");
    }

    #[test]
    fn pod_name_replaces_the_address_and_logs_are_kept_newest_last() {
        let t0 = Instant::now();
        let mut m = Model::new(Duration::from_secs(60), t0);
        let mut s = ok("10.0.0.7:50051", 1, "i");
        if let Ok(st) = s.status.as_mut() {
            st.instance.as_mut().unwrap().pod_name = "memory-stress-0".into();
        }
        s.logs = (1..=(LOG_LINES as u64 + 5))
            .map(|n| LogEntry {
                sequence: n,
                timestamp_unix_ms: 3_723_000 + 86_400_000,
                operation: Operation::Notice as i32,
                message: format!("entry {n}"),
                ..Default::default()
            })
            .collect();
        m.apply(vec![s], t0);
        let ep = m.endpoints().next().unwrap();
        assert_eq!(ep.name, "memory-stress-0");
        assert_eq!(ep.address, "10.0.0.7:50051");
        let tail: Vec<&LogLine> = m.log_tail(2).collect();
        assert_eq!(tail[0].text, "01:02:03 NOTICE entry 204");
        assert_eq!(tail[1].text, "01:02:03 NOTICE entry 205");
        assert_eq!(tail[1].source, "memory-stress-0");
        assert_eq!(m.log_tail(usize::MAX).count(), LOG_LINES);
    }
}
