//! Drawing: pure functions from the [`Model`] into a ratatui [`Frame`], so the layout is tested
//! on a `TestBackend` at any size.
//!
//! From the top: a title row, the numbers (a block of lines for one endpoint, a table for
//! many), the chart, and the newest log lines at the bottom.

mod chart;
mod panel;
#[cfg(test)]
mod tests;

use super::model::Model;
use crate::human;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use std::time::Duration;

/// The many-endpoint table never takes more than this share of the rows (the chart and logs
/// need the rest); endpoints beyond it are counted in a last line.
const TABLE_SHARE: u16 = 2;

/// Draws the whole screen.
pub(crate) fn draw(frame: &mut Frame<'_>, model: &Model, refresh: Duration) {
    let area = frame.area();
    let numbers = numbers(model, area);
    let rest = area.height.saturating_sub(1 + numbers.len() as u16);
    let log_rows = (rest / 3).clamp(2, 8).min(rest);
    let [title, panel, chart, logs] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(numbers.len() as u16),
        Constraint::Min(0),
        Constraint::Length(log_rows),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(title_line(model, refresh)), title);
    frame.render_widget(Paragraph::new(numbers), panel);
    chart::draw(frame, model, chart);
    draw_logs(frame, model, logs);
}

fn title_line(model: &Model, refresh: Duration) -> Line<'static> {
    let count = match model.len() {
        1 => "1 endpoint".to_owned(),
        n => format!("{n} endpoints"),
    };
    let waiting = if model.polls() == 0 {
        "  waiting for the first answer…"
    } else {
        ""
    };
    Line::styled(
        format!(
            "stressctl top  {count}  refresh {}  q quits{waiting}",
            human::duration(refresh)
        ),
        Style::default().add_modifier(Modifier::REVERSED),
    )
}

/// The numbers' lines, fitted to the screen: one endpoint's block, or the table with as many
/// rows as fit in its share of the height.
fn numbers(model: &Model, area: Rect) -> Vec<Line<'static>> {
    if model.len() == 1 {
        return model.endpoints().flat_map(panel::single).collect();
    }
    let budget = usize::from((area.height / TABLE_SHARE).max(2));
    let width = usize::from(area.width);
    let mut lines = vec![panel::table_header()];
    let mut shown = 0;
    for (i, ep) in model.endpoints().enumerate() {
        let row = panel::table_row(ep, chart::colour(i), width);
        // Keep one line free for the "more" count unless this is the last endpoint.
        let reserve = usize::from(i + 1 < model.len());
        if lines.len() + row.len() + reserve > budget {
            break;
        }
        lines.extend(row);
        shown += 1;
    }
    if shown < model.len() {
        lines.push(Line::raw(format!(
            "… and {} more endpoints (a taller terminal shows them)",
            model.len() - shown
        )));
    }
    lines
}

fn draw_logs(frame: &mut Frame<'_>, model: &Model, area: Rect) {
    let rows = usize::from(area.height.saturating_sub(1));
    let prefix = model.len() > 1;
    let tail: Vec<Line<'_>> = model
        .log_tail(rows)
        .map(|l| {
            if prefix {
                let name = panel::fit_name(&l.source, panel::NAME_WIDTH);
                Line::raw(format!("{name} {}", l.text))
            } else {
                Line::raw(l.text.as_str())
            }
        })
        .collect();
    // Newest at the bottom, as in `tail -f`, also while there are fewer lines than rows.
    let mut lines = vec![Line::default(); rows.saturating_sub(tail.len())];
    lines.extend(tail);
    let block = Block::default()
        .borders(Borders::TOP)
        .title(" newest log lines ");
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
