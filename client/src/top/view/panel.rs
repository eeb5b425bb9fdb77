//! The numbers: one block of labelled lines for a single endpoint, one row per endpoint for
//! many. Plain strings built by pure functions so tests can pin them.

use super::super::model::Endpoint;
use crate::human;
use memstress_proto::v1::{State, StatusResponse, Workload};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

/// Width of the name column in the many-endpoint table.
pub(crate) const NAME_WIDTH: usize = 18;

/// A state without its `STATE_` prefix ("SEARCHING"); "-" before the first answer.
pub(crate) fn state(s: Option<&StatusResponse>) -> String {
    let Some(s) = s else { return "-".to_owned() };
    match State::try_from(s.state) {
        Ok(st) => st.as_str_name().trim_start_matches("STATE_").to_owned(),
        Err(_) => format!("UNKNOWN({})", s.state),
    }
}

/// The workload in lower case ("tree"); unspecified is what stressd treats it as.
pub(crate) fn workload(v: i32) -> String {
    match Workload::try_from(v) {
        Ok(Workload::Unspecified) => "tree".to_owned(),
        Ok(w) => w
            .as_str_name()
            .trim_start_matches("WORKLOAD_")
            .to_lowercase(),
        Err(_) => format!("workload {v}"),
    }
}

/// "phase 2/3 rep 1/3" for a target profile ("rep 1/∞" when repeating until stopped); empty
/// for a single-target run.
pub(crate) fn phase(s: &StatusResponse) -> String {
    match &s.phase {
        Some(p) if p.count > 0 => {
            let repeat = if p.repeat == 0 {
                "∞".to_owned()
            } else {
                p.repeat.to_string()
            };
            format!(
                "phase {}/{} rep {}/{repeat}",
                p.index, p.count, p.repetition
            )
        }
        _ => String::new(),
    }
}

/// An activity rate in the run's own unit, whole numbers with separators
/// ("1,000 searches/s", "52,311 lookups/s").
pub(crate) fn activity_rate(per_second: f64, unit: &str) -> String {
    let n = if per_second.is_finite() && per_second > 0.0 {
        per_second.round() as u64
    } else {
        0
    };
    let unit = if unit.is_empty() { "searches" } else { unit };
    format!("{} {unit}/s", human::thousands(n))
}

/// What the run is doing per second: the fill rate while building, the activity rate while
/// holding, nothing otherwise.
pub(crate) fn rate(s: &StatusResponse) -> String {
    match State::try_from(s.state) {
        Ok(State::Building) => format!(
            "fill {}",
            human::mib_rate(s.current_fill_rate_mb_per_second)
        ),
        Ok(State::Searching) => activity_rate(s.searches_per_second, &s.activity_unit),
        _ => String::new(),
    }
}

/// The target the chart draws: the current phase's for a profile, else the run's (None before
/// any run).
pub(crate) fn target(s: &StatusResponse) -> Option<u64> {
    let phase = s
        .phase
        .as_ref()
        .filter(|p| p.count > 0)
        .map(|p| p.target_bytes);
    phase
        .filter(|&t| t > 0)
        .or(Some(s.target_bytes))
        .filter(|&t| t > 0)
}

/// The memory limit: the basis stressd sizes targets against (the cgroup's limit when there
/// is one, else `--memory-limit`, else the host's memory), or the container's if no basis came.
pub(crate) fn limit(s: &StatusResponse) -> Option<u64> {
    let basis = s.basis.as_ref().map(|b| b.limit_bytes).filter(|&l| l > 0);
    basis.or_else(|| s.container.as_ref().and_then(|c| c.limit_bytes))
}

fn working_set(s: &StatusResponse) -> Option<u64> {
    s.container.as_ref().and_then(|c| c.working_set_bytes)
}

fn oom_kills(s: &StatusResponse) -> String {
    s.container
        .as_ref()
        .and_then(|c| c.oom_kills)
        .map_or_else(|| "-".to_owned(), |n| n.to_string())
}

fn opt_size(v: Option<u64>) -> String {
    human::opt_bytes(v)
}

/// `label value` pairs on one line, values bold.
fn pairs(items: &[(&str, String)]) -> Line<'static> {
    let mut spans = Vec::with_capacity(items.len() * 2);
    for (i, (label, value)) in items.iter().enumerate() {
        let gap = if i == 0 { "" } else { "   " };
        spans.push(Span::raw(format!("{gap}{label} ")));
        spans.push(Span::styled(
            value.clone(),
            Style::default().add_modifier(Modifier::BOLD),
        ));
    }
    Line::from(spans)
}

/// The lines for a single endpoint: identity and state, memory, rates and time, then the
/// error of the last poll when it failed.
pub(crate) fn single(ep: &Endpoint) -> Vec<Line<'static>> {
    let mut head = vec![
        Span::styled(
            ep.name.clone(),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw("  "),
        Span::styled(state(ep.status.as_ref()), Style::default().fg(Color::Cyan)),
    ];
    if ep.name != ep.address {
        head.push(Span::raw(format!("  ({})", ep.address)));
    }
    let mut lines = Vec::with_capacity(4);
    if let Some(s) = &ep.status {
        head.push(Span::raw(format!("  {}", workload(s.workload))));
        let phase = phase(s);
        if !phase.is_empty() {
            head.push(Span::raw(format!("  {phase}")));
        }
        if ep.restarts > 0 {
            head.push(Span::raw(format!("  restarts {}", ep.restarts)));
        }
        lines.push(Line::from(head));
        lines.push(pairs(&[
            ("RSS", human::bytes(s.rss_bytes)),
            ("working set", opt_size(working_set(s))),
            ("target", opt_size(target(s))),
            ("limit", opt_size(limit(s))),
        ]));
        let mut third = vec![("OOM kills", oom_kills(s))];
        let rate = rate(s);
        if !rate.is_empty() {
            third.push(("rate", rate));
        }
        if s.started_at_unix_ms > 0 {
            third.push(("elapsed", human::duration_ms(s.elapsed_ms)));
        }
        if let Some(left) = s.remaining_ms {
            third.push(("left", human::duration_ms(left)));
        }
        lines.push(pairs(&third));
    } else {
        lines.push(Line::from(head));
    }
    if let Some(e) = &ep.error {
        lines.push(error_line(e));
    }
    lines
}

fn error_line(e: &str) -> Line<'static> {
    Line::styled(format!("error: {e}"), Style::default().fg(Color::Red))
}

/// The header row of the many-endpoint table.
pub(crate) fn table_header() -> Line<'static> {
    Line::styled(
        format!(
            "{:<NAME_WIDTH$} {:<9} {:>10} {:>11} {:>10} {:>10} {:>3}",
            "NAME", "STATE", "RSS", "WORKING SET", "TARGET", "LIMIT", "OOM"
        ),
        Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED),
    )
}

/// A name cut to `width` columns keeping its end (where pod names and ports differ), padded.
pub(crate) fn fit_name(name: &str, width: usize) -> String {
    let n = name.chars().count();
    if n <= width {
        return format!("{name:<width$}");
    }
    let tail: String = name.chars().skip(n + 1 - width).collect();
    format!("…{tail}")
}

/// One endpoint's row, its name in its chart colour, with the rate, workload and phase at its
/// end, or on a second line when `width` is too narrow for them; an endpoint that failed shows
/// the error in place of the numbers it no longer has fresh.
pub(crate) fn table_row(ep: &Endpoint, colour: Color, width: usize) -> Vec<Line<'static>> {
    let name = Span::styled(
        format!("{} ", fit_name(&ep.name, NAME_WIDTH)),
        Style::default().fg(colour).add_modifier(Modifier::BOLD),
    );
    if let Some(e) = &ep.error {
        let error = Span::styled(format!("error: {e}"), Style::default().fg(Color::Red));
        return vec![Line::from(vec![name, error])];
    }
    let Some(s) = &ep.status else {
        return vec![Line::from(vec![
            name,
            Span::raw("waiting for the first answer"),
        ])];
    };
    let restarts = match ep.restarts {
        0 => String::new(),
        n => format!("restarts {n}"),
    };
    let extra = [rate(s), workload(s.workload), phase(s), restarts]
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("  ");
    let numbers = format!(
        "{:<9} {:>10} {:>11} {:>10} {:>10} {:>3}",
        state(Some(s)),
        human::bytes(s.rss_bytes),
        opt_size(working_set(s)),
        opt_size(target(s)),
        opt_size(limit(s)),
        oom_kills(s),
    );
    let used = NAME_WIDTH + 1 + numbers.chars().count();
    if used + 2 + extra.chars().count() <= width {
        vec![Line::from(vec![
            name,
            Span::raw(format!("{numbers}  {extra}")),
        ])]
    } else {
        let indent = " ".repeat(NAME_WIDTH + 1);
        vec![
            Line::from(vec![name, Span::raw(numbers)]),
            Line::raw(format!("{indent}{extra}")),
        ]
    }
}
