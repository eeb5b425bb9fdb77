//! The fleet table: one row per endpoint, a failed endpoint's row carrying its error, and
//! totals rows below.

use std::fmt::Write as _;

use crate::text::Align;

/// One line of a fleet table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Row {
    /// Cells under the columns.
    Cells(Vec<String>),
    /// A failed endpoint: its name in the first column, then the error (not aligned to the
    /// other columns, so a long message does not widen them).
    Error(String, String),
}

/// Lays out a header and rows in columns two spaces apart, each as wide as its widest cell
/// (error messages excepted); trailing spaces are trimmed.
pub(crate) fn table(columns: &[(&str, Align)], rows: &[Row]) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|(h, _)| h.chars().count()).collect();
    for row in rows {
        match row {
            Row::Cells(cells) => {
                for (w, cell) in widths.iter_mut().zip(cells) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            Row::Error(name, _) => {
                if let Some(w) = widths.first_mut() {
                    *w = (*w).max(name.chars().count());
                }
            }
        }
    }
    let header = Row::Cells(columns.iter().map(|(h, _)| (*h).to_owned()).collect());
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut text = String::new();
        match row {
            Row::Cells(cells) => {
                for (i, (((_, align), cell), w)) in
                    columns.iter().zip(cells).zip(&widths).enumerate()
                {
                    if i > 0 {
                        text.push_str("  ");
                    }
                    let _ = match align {
                        Align::Left => write!(text, "{cell:<w$}"),
                        Align::Right => write!(text, "{cell:>w$}"),
                    };
                }
            }
            Row::Error(name, message) => {
                let w = widths.first().copied().unwrap_or(0);
                let _ = write!(text, "{name:<w$}  error: {message}");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// Sum, minimum and maximum of the known values (`None` when there is none).
pub(crate) fn sum_min_max(values: impl IntoIterator<Item = u64>) -> Option<(u64, u64, u64)> {
    values.into_iter().fold(None, |acc, v| match acc {
        None => Some((v, v, v)),
        Some((s, lo, hi)) => Some((s.saturating_add(v), lo.min(v), hi.max(v))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_align_and_errors_do_not_widen_columns() {
        let cols = [("ENDPOINT", Align::Left), ("RSS", Align::Right)];
        let rows = vec![
            Row::Cells(vec!["pod-a".into(), "10.0 MiB".into()]),
            Row::Error(
                "127.0.0.3:7000".into(),
                "cannot reach stressd (connection refused)".into(),
            ),
            Row::Cells(vec!["TOTAL".into(), "1024.0 MiB".into()]),
        ];
        assert_eq!(
            table(&cols, &rows),
            "ENDPOINT               RSS\n\
             pod-a             10.0 MiB\n\
             127.0.0.3:7000  error: cannot reach stressd (connection refused)\n\
             TOTAL           1024.0 MiB\n"
        );
    }

    #[test]
    fn totals() {
        assert_eq!(sum_min_max([]), None);
        assert_eq!(sum_min_max([5]), Some((5, 5, 5)));
        assert_eq!(sum_min_max([5, 1, 9]), Some((15, 1, 9)));
        assert_eq!(sum_min_max([u64::MAX, 1]), Some((u64::MAX, 1, u64::MAX)));
    }
}
