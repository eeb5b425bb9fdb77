//! The chart: RSS and working set over the window against the target and limit lines; for
//! many endpoints, one RSS line per endpoint in its own colour.

use super::super::model::{Endpoint, Model};
use super::panel;
use crate::human;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, LegendPosition};
use std::time::Duration;

const MIB: f64 = 1024.0 * 1024.0;
/// A limit more than this many times above everything else is left off the scale (a host's
/// 24 GiB would flatten a 64 MiB run into the x axis); the title still names it.
const LIMIT_ON_SCALE: f64 = 2.5;

/// Colours of the endpoints' lines in the many-endpoint chart (and their names in the table);
/// green and red stay free for target and limit.
pub(crate) const PALETTE: [Color; 8] = [
    Color::Cyan,
    Color::Yellow,
    Color::Magenta,
    Color::Blue,
    Color::LightGreen,
    Color::LightCyan,
    Color::LightMagenta,
    Color::LightBlue,
];

/// The colour of the `i`-th endpoint.
pub(crate) fn colour(i: usize) -> Color {
    PALETTE[i % PALETTE.len()]
}

/// One line to draw, in MiB over seconds.
struct Series {
    name: String,
    colour: Color,
    points: Vec<(f64, f64)>,
}

/// A horizontal line across the window at `bytes`.
fn level(name: String, colour: Color, bytes: u64, x: [f64; 2]) -> Series {
    let y = bytes as f64 / MIB;
    Series {
        name,
        colour,
        points: vec![(x[0], y), (x[1], y)],
    }
}

fn rss_points(ep: &Endpoint) -> Vec<(f64, f64)> {
    ep.points
        .iter()
        .map(|p| (p.t, p.rss as f64 / MIB))
        .collect()
}

/// The lines of the chart and the limit left off the scale, if any.
fn series(model: &Model) -> (Vec<Series>, Option<u64>) {
    let x = model.x_bounds();
    let mut out = Vec::new();
    let mut levels: Vec<(String, u64)> = Vec::new();
    let mut limits: Vec<u64> = Vec::new();
    let single = model.len() == 1;
    for (i, ep) in model.endpoints().enumerate() {
        if single {
            out.push(Series {
                name: "RSS".into(),
                colour: Color::Cyan,
                points: rss_points(ep),
            });
            let ws: Vec<(f64, f64)> = ep
                .points
                .iter()
                .filter_map(|p| Some((p.t, p.ws? as f64 / MIB)))
                .collect();
            if !ws.is_empty() {
                out.push(Series {
                    name: "working set".into(),
                    colour: Color::Yellow,
                    points: ws,
                });
            }
        } else {
            out.push(Series {
                name: ep.name.clone(),
                colour: colour(i),
                points: rss_points(ep),
            });
        }
        if let Some(s) = &ep.status {
            if let Some(t) = panel::target(s).filter(|t| !levels.iter().any(|(_, v)| v == t)) {
                levels.push((format!("target {}", human::bytes(t)), t));
            }
            if let Some(l) = panel::limit(s).filter(|l| !limits.contains(l)) {
                limits.push(l);
            }
        }
    }
    let top = out
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(levels.iter().map(|(_, v)| *v as f64 / MIB))
        .fold(0.0_f64, f64::max);
    let mut off_scale = None;
    for l in limits {
        if l as f64 / MIB <= top * LIMIT_ON_SCALE || top == 0.0 {
            levels.push((format!("limit {}", human::bytes(l)), l));
        } else {
            off_scale = Some(off_scale.map_or(l, |o: u64| o.max(l)));
        }
    }
    // Target and limit first: a line drawn later covers an earlier one where they meet, and
    // the measured memory is what must stay visible when it sits on its target.
    let mut lines: Vec<Series> = levels
        .into_iter()
        .map(|(name, v)| {
            let colour = if name.starts_with("limit") {
                Color::Red
            } else {
                Color::Green
            };
            level(name, colour, v, x)
        })
        .collect();
    lines.extend(out);
    (lines, off_scale)
}

/// Draws the chart into `area`.
pub(crate) fn draw(frame: &mut Frame<'_>, model: &Model, area: Rect) {
    let (series, off_scale) = series(model);
    let top = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.0_f64, f64::max)
        * 1.05;
    let datasets: Vec<Dataset<'_>> = series
        .iter()
        .map(|s| {
            Dataset::default()
                .name(s.name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(s.colour))
                .data(&s.points)
        })
        .collect();
    // One endpoint: a legend names its four lines. Many: the table already shows each name in
    // its line's colour, and a legend of every endpoint and target would cover the chart.
    let single = model.len() == 1;
    let mut notes: Vec<String> = Vec::new();
    if !single {
        notes.push("colours as in the table".into());
        notes.push("targets green".into());
        if series.iter().any(|s| s.name.starts_with("limit")) {
            notes.push("limits red".into());
        }
    }
    if let Some(l) = off_scale {
        notes.push(format!("limit {} off scale", human::bytes(l)));
    }
    let what = if single {
        "RSS and working set"
    } else {
        "RSS per endpoint"
    };
    // Whole seconds: a span that changes by a tenth at every poll only flickers.
    let span = human::duration(Duration::from_secs(
        model.span().as_secs_f64().round() as u64
    ));
    let title = if notes.is_empty() {
        format!(" {what}, last {span} ")
    } else {
        format!(" {what}, last {span} ({}) ", notes.join(", "))
    };
    let legend = single.then_some(LegendPosition::TopLeft);
    let y_label = |mib: f64| Line::from(human::bytes((mib * MIB) as u64));
    let x = model.x_bounds();
    let chart = Chart::new(datasets)
        .block(Block::default().borders(Borders::TOP).title(title))
        .x_axis(
            Axis::default()
                .bounds(x)
                .labels([format!("-{span}"), "now".to_owned()]),
        )
        .y_axis(Axis::default().bounds([0.0, top]).labels([
            y_label(0.0),
            y_label(top / 2.0),
            y_label(top),
        ]))
        .legend_position(legend)
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(3, 4)));
    frame.render_widget(chart, area);
}
