//! The text of `status`.

use memstress_proto::v1::{ContainerMemory, Instance, State, StatusResponse};

use super::{basis, history, line, parameters, phase_progress, state, target, workload};
use crate::human;

/// A PSI percentage or "-".
fn psi(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}%"))
}

/// An optional count with thousands separators, or "-".
pub(super) fn opt_count(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), human::thousands)
}

/// The container section of `status`.
fn container(out: &mut String, c: Option<&ContainerMemory>) {
    let Some(c) = c else {
        line(out, 0, "container", "-");
        return;
    };
    if c.cgroup_version.is_empty() {
        line(out, 0, "container", "no cgroup memory controller readable");
    } else {
        line(
            out,
            0,
            "container",
            format!("cgroup {} {}", c.cgroup_version, c.cgroup_path),
        );
    }
    let limit = match c.limit_bytes {
        Some(b) => human::bytes(b),
        None => "- (unlimited or unknown)".to_owned(),
    };
    line(out, 2, "limit", limit);
    line(out, 2, "usage", human::opt_bytes(c.usage_bytes));
    line(out, 2, "working set", human::opt_bytes(c.working_set_bytes));
    line(
        out,
        2,
        "oom kills",
        format!(
            "{} ({} during run)",
            opt_count(c.oom_kills),
            human::thousands(c.oom_kills_during_run)
        ),
    );
    if c.pressure_some_avg10.is_none()
        && c.pressure_full_avg10.is_none()
        && c.pressure_some_total_us.is_none()
    {
        line(out, 2, "pressure", "-");
    } else {
        let total = c
            .pressure_some_total_us
            .map_or_else(|| "-".to_owned(), |us| human::duration_ms(us / 1000));
        line(
            out,
            2,
            "pressure",
            format!(
                "some {} full {} (avg10), some total {}",
                psi(c.pressure_some_avg10),
                psi(c.pressure_full_avg10),
                total
            ),
        );
    }
}

/// The current or last run's lines of `status`: start, elapsed, target, workload, phase.
fn run_head(out: &mut String, s: &StatusResponse) {
    let started = if s.started_at_unix_ms > 0 {
        memstress_proto::time::format_unix_ms(s.started_at_unix_ms)
    } else {
        "-".to_owned()
    };
    line(out, 0, "started", started);
    let active = matches!(
        State::try_from(s.state),
        Ok(State::Building | State::Searching)
    );
    let holds_until_stopped = s
        .parameters
        .as_ref()
        .is_some_and(|p| p.duration_seconds == 0);
    let remaining = match s.remaining_ms {
        Some(ms) => human::duration_ms(ms),
        None if active && holds_until_stopped => "until stopped".to_owned(),
        None => "-".to_owned(),
    };
    line(
        out,
        0,
        "elapsed",
        format!(
            "{}, remaining {}",
            human::duration_ms(s.elapsed_ms),
            remaining
        ),
    );
    line(
        out,
        0,
        "target",
        target(s.target_bytes, s.parameters.as_ref()),
    );
    let w = match s.activity_unit.as_str() {
        "" => workload(s.workload),
        unit => format!("{} (holds by {unit})", workload(s.workload)),
    };
    line(out, 0, "workload", w);
    if s.parameters.as_ref().is_some_and(|p| !p.phases.is_empty()) {
        let mut phase = phase_progress(s.phase.as_ref());
        if let Some(p) = s.phase.as_ref().filter(|p| p.index > 0) {
            phase.push_str(&format!(", target {}", human::bytes(p.target_bytes)));
        }
        line(out, 0, "phase", phase);
    }
}

/// The run's fill rate and activity lines of `status`.
fn run_rates(out: &mut String, s: &StatusResponse) {
    let ttt = s
        .time_to_target_ms
        .map_or_else(|| "-".to_owned(), human::duration_ms);
    line(
        out,
        0,
        "fill rate",
        format!(
            "{} average, {} current; time to target {}",
            human::mib_rate(s.fill_rate_mb_per_second),
            human::mib_rate(s.current_fill_rate_mb_per_second),
            ttt
        ),
    );
    let unit = activity_unit(&s.activity_unit);
    line(
        out,
        0,
        unit,
        format!(
            "{} ({} {unit}/s)",
            human::thousands(s.searches),
            human::thousands(rate(s.searches_per_second))
        ),
    );
}

/// The result of `status`.
pub(crate) fn status(s: &StatusResponse) -> String {
    let mut out = String::new();
    let has_run = !s.run_id.is_empty();
    line(&mut out, 0, "state", state(s.state));
    line(
        &mut out,
        0,
        "run",
        if has_run { s.run_id.as_str() } else { "-" },
    );
    if has_run {
        run_head(&mut out, s);
    }
    let items = super::items_of(s.parameters.as_ref().map_or(s.workload, |p| p.workload)).1;
    line(&mut out, 0, items, human::thousands(s.nodes));
    line(&mut out, 0, "payload held", human::bytes(s.payload_bytes));
    line(
        &mut out,
        0,
        "rss",
        format!(
            "{} now, {} peak",
            human::bytes(s.rss_bytes),
            human::bytes(s.peak_rss_bytes)
        ),
    );
    line(&mut out, 0, "basis", basis(s.basis.as_ref()));
    if has_run {
        run_rates(&mut out, s);
    }
    line(
        &mut out,
        0,
        "last error",
        if s.last_error.is_empty() {
            "-"
        } else {
            s.last_error.as_str()
        },
    );
    line(&mut out, 0, "huge pages", human::bytes(s.huge_page_bytes));
    line(
        &mut out,
        0,
        "process cpu",
        format!("{:.2} s", s.process_cpu_seconds),
    );
    if has_run && let Some(p) = &s.parameters {
        line(&mut out, 0, "parameters", "");
        parameters(&mut out, 2, p);
    }
    container(&mut out, s.container.as_ref());
    history::status_section(&mut out, s);
    if let Some(i) = &s.instance {
        line(&mut out, 0, "instance", instance(i));
    }
    out
}

/// What the run's activity counter counts ("searches" when stressd does not say).
fn activity_unit(unit: &str) -> &str {
    if unit.is_empty() { "searches" } else { unit }
}

/// A per-second rate rounded to a whole number (0 for nonsense).
fn rate(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round() as u64
    } else {
        0
    }
}

/// Who answered: "pod web-1 in memstress on node n1, host web-1, stressd 0.1.0, up since …".
pub(super) fn instance(i: &Instance) -> String {
    let mut parts = Vec::new();
    if !i.pod_name.is_empty() {
        let mut pod = format!("pod {}", i.pod_name);
        if !i.pod_namespace.is_empty() {
            pod.push_str(&format!(" in {}", i.pod_namespace));
        }
        if !i.node_name.is_empty() {
            pod.push_str(&format!(" on node {}", i.node_name));
        }
        parts.push(pod);
    }
    if !i.hostname.is_empty() {
        parts.push(format!("host {}", i.hostname));
    }
    if !i.version.is_empty() {
        parts.push(format!("stressd {}", i.version));
    }
    if i.started_at_unix_ms > 0 {
        parts.push(format!(
            "up since {}",
            memstress_proto::time::format_unix_ms(i.started_at_unix_ms)
        ));
    }
    if !i.instance_id.is_empty() {
        parts.push(format!("id {}", i.instance_id));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}
