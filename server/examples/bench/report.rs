//! Result rows, statistics, the machine description, the printed table and the JSON file.

use serde::Serialize;
use serde_json::Value;

/// A bound a measured value is checked against.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Bound {
    /// measured ≤ value.
    AtMost {
        /// Limit.
        value: f64,
    },
    /// measured ≥ value.
    AtLeast {
        /// Limit.
        value: f64,
    },
    /// measured < value.
    Below {
        /// Limit.
        value: f64,
    },
    /// |measured| ≤ value.
    AbsAtMost {
        /// Limit.
        value: f64,
    },
    /// |measured − target| ≤ percent % of target.
    WithinPercent {
        /// The asked-for value.
        target: f64,
        /// Allowed deviation in percent.
        percent: f64,
    },
}

impl Bound {
    fn check(&self, m: f64) -> bool {
        if !m.is_finite() {
            return false;
        }
        match *self {
            Self::AtMost { value } => m <= value,
            Self::AtLeast { value } => m >= value,
            Self::Below { value } => m < value,
            Self::AbsAtMost { value } => m.abs() <= value,
            Self::WithinPercent { target, percent } => {
                (m - target).abs() <= target * percent / 100.0
            }
        }
    }
}

/// One line of the result table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// Row id, e.g. "2b".
    pub(crate) id: String,
    /// What is measured.
    pub(crate) name: String,
    /// The number the bound applies to (a median or percentile unless `name` says otherwise);
    /// null when it could not be measured.
    pub(crate) measured: f64,
    /// Unit of `measured`, `bound` and `samples`.
    pub(crate) unit: String,
    /// Machine-readable bound (null: reported, no bound).
    pub(crate) bound: Option<Bound>,
    /// The bound as printed, with where it comes from.
    pub(crate) bound_text: String,
    /// Whether the bound holds (null when there is no bound).
    pub(crate) pass: Option<bool>,
    /// The measured column as printed.
    pub(crate) shown: String,
    /// Every sample `measured` was computed from, in `unit`.
    pub(crate) samples: Vec<f64>,
    /// Anything else measured alongside (per-run breakdowns, Status fields).
    pub(crate) details: Value,
}

impl Row {
    /// A row without a bound.
    pub(crate) fn new(id: &str, name: impl Into<String>, measured: f64, unit: &str) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            measured,
            unit: unit.into(),
            bound: None,
            bound_text: "— (report)".into(),
            pass: None,
            shown: fmt_num(measured, unit),
            samples: Vec::new(),
            details: Value::Null,
        }
    }

    /// A row that could not be measured.
    pub(crate) fn error(id: &str, name: impl Into<String>, err: &str) -> Self {
        let mut r = Self::new(id, name, f64::NAN, "");
        r.shown = format!("ERROR: {err}");
        r.pass = Some(false);
        r.bound_text = "—".into();
        r
    }

    /// Sets the bound and evaluates it.
    pub(crate) fn bound(mut self, bound: Bound, text: impl Into<String>) -> Self {
        self.pass = Some(bound.check(self.measured));
        self.bound = Some(bound);
        self.bound_text = text.into();
        self
    }

    /// Overrides the printed measured column.
    pub(crate) fn shown(mut self, s: impl Into<String>) -> Self {
        self.shown = s.into();
        self
    }

    /// Attaches the samples and shows the largest beside the measured value, e.g.
    /// "276 ms (worst 340 ms)"; `word` is "max" or "worst".
    pub(crate) fn samples_with_max(self, word: &str, s: Vec<f64>) -> Self {
        let shown = format!(
            "{} ({word} {})",
            fmt_num(self.measured, &self.unit),
            fmt_num(max(&s), &self.unit)
        );
        self.shown(shown).samples(s)
    }

    /// Attaches the samples.
    pub(crate) fn samples(mut self, s: Vec<f64>) -> Self {
        self.samples = s;
        self
    }

    /// Attaches details.
    pub(crate) fn details(mut self, d: Value) -> Self {
        self.details = d;
        self
    }

    /// "PASS", "FAIL" or "—".
    pub(crate) fn verdict(&self) -> &'static str {
        match self.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "—",
        }
    }
}

/// Formats a number with precision suited to its size.
pub(crate) fn fmt_num(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let a = v.abs();
    let n = if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if unit.is_empty() {
        n
    } else {
        format!("{n} {unit}")
    }
}

/// "4 GiB" / "64 MiB".
pub(crate) fn size_name(mb: u64) -> String {
    if mb >= 1024 && mb.is_multiple_of(1024) {
        format!("{} GiB", mb / 1024)
    } else {
        format!("{mb} MiB")
    }
}

/// Median (mean of the middle two for an even count); NaN when empty.
pub(crate) fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Nearest-rank percentile (p in 0..=100); NaN when empty.
pub(crate) fn percentile(xs: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Largest value; NaN when empty.
pub(crate) fn max(xs: &[f64]) -> f64 {
    xs.iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(f64::NAN, f64::max)
}

/// The machine the run happened on.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// Online CPUs.
    pub(crate) nproc: usize,
    /// CPU model.
    pub(crate) cpu: String,
    /// MemTotal, bytes.
    pub(crate) mem_total_bytes: u64,
    /// Kernel release.
    pub(crate) kernel: String,
    /// Selected transparent-huge-page mode.
    pub(crate) thp: String,
    /// Whether a virtio-balloon reports free pages to the hypervisor (freed memory then comes
    /// back cold: the host must fault it in again on the next touch).
    pub(crate) free_page_reporting: bool,
}

impl Machine {
    /// Reads /proc and /sys.
    pub(crate) fn probe() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let meminfo = read("/proc/meminfo");
        let mem_total_bytes = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024);
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
            .unwrap_or_default();
        let thp_raw = read("/sys/kernel/mm/transparent_hugepage/enabled");
        let thp = thp_raw
            .split_whitespace()
            .find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))
            .unwrap_or("unavailable")
            .to_string();
        Self {
            free_page_reporting: balloon_reports_free_pages(),
            nproc: std::thread::available_parallelism().map_or(0, usize::from),
            cpu,
            mem_total_bytes,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            thp,
        }
    }

    /// One-line description.
    pub(crate) fn line(&self) -> String {
        format!(
            "{} CPUs ({}), MemTotal {:.1} GiB, kernel {}, THP {}{}",
            self.nproc,
            self.cpu,
            self.mem_total_bytes as f64 / f64::from(1u32 << 30),
            self.kernel,
            self.thp,
            if self.free_page_reporting {
                ", virtio-balloon free page reporting on"
            } else {
                ""
            }
        )
    }
}

/// A virtio-balloon device bound to its driver with VIRTIO_BALLOON_F_REPORTING (bit 5).
fn balloon_reports_free_pages() -> bool {
    let Ok(devices) = std::fs::read_dir("/sys/bus/virtio/devices") else {
        return false;
    };
    devices.filter_map(Result::ok).any(|d| {
        let p = d.path();
        let driver = std::fs::read_link(p.join("driver")).ok();
        let is_balloon = driver
            .as_deref()
            .and_then(std::path::Path::file_name)
            .is_some_and(|n| n == "virtio_balloon");
        let features = std::fs::read_to_string(p.join("features")).unwrap_or_default();
        is_balloon && features.as_bytes().get(5) == Some(&b'1')
    })
}

/// UTC time now, RFC 3339 with milliseconds.
pub(crate) fn utc_now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    memstress_proto::time::format_unix_ms(ms)
}

/// The table as Markdown (printed and pasted into BENCHMARKS.md).
pub(crate) fn table(rows: &[Row]) -> String {
    let head = ["#", "what", "measured", "bound", "result"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.name.clone(),
                r.shown.clone(),
                r.bound_text.clone(),
                r.verdict().to_string(),
            ]
        })
        .collect();
    let mut width = head.map(|h| h.chars().count());
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c.iter()) {
            *w = (*w).max(s.chars().count());
        }
    }
    let line = |c: &[String; 5]| {
        let mut s = String::from("|");
        for (cell, w) in c.iter().zip(width) {
            let pad = w - cell.chars().count();
            s.push(' ');
            s.push_str(cell);
            s.push_str(&" ".repeat(pad));
            s.push_str(" |");
        }
        s
    };
    let mut out = line(&head.map(String::from));
    out.push('\n');
    out.push('|');
    for w in width {
        out.push_str(&"-".repeat(w + 2));
        out.push('|');
    }
    out.push('\n');
    for c in &cells {
        out.push_str(&line(c));
        out.push('\n');
    }
    out
}

/// The whole JSON document.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// What produced it.
    pub(crate) benchmark: &'static str,
    /// How to read it.
    pub(crate) about: &'static str,
    /// UTC start time.
    pub(crate) started_at_utc: String,
    /// Whether `--quick` was used.
    pub(crate) quick: bool,
    /// Wall time of the whole run, seconds.
    pub(crate) total_seconds: f64,
    /// The stressd binary measured.
    pub(crate) stressd: String,
    /// The machine.
    pub(crate) machine: Machine,
    /// Rows with a bound that failed.
    pub(crate) failed: Vec<String>,
    /// Every row.
    pub(crate) rows: Vec<Row>,
}
