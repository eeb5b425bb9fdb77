//! Text tables and JSON documents of one command's replies from many endpoints.
//!
//! Pure: replies in, text or documents out, so the layout is unit-tested.

use memstress_proto::v1::{ClearResponse, StartResponse, StatusResponse, StopResponse};
use serde_json::{Value, json};

use super::call::Reply;
use super::table::{Row, sum_min_max, table};
use crate::app::HistoryReply;
use crate::human;
use crate::json as j;
use crate::text::{self, Align, HISTORY_COLUMNS, history_row};

/// A reply's JSON document with `endpoint` (its name) and `address`; a failure is
/// `{"endpoint", "address", "error"}`.
pub(crate) fn document<T>(reply: &Reply<T>, ok: impl Fn(&T) -> Value) -> Value {
    let mut doc = match &reply.result {
        Ok(v) => ok(v),
        Err(e) => json!({ "error": e.to_string() }),
    };
    if let Value::Object(map) = &mut doc {
        map.insert("endpoint".to_owned(), Value::String(reply.name()));
        map.insert("address".to_owned(), Value::String(reply.addr.clone()));
    }
    doc
}

/// Rows for the replies, each failure as an error row.
fn rows<T>(replies: &[Reply<T>], cells: impl Fn(&str, &T) -> Vec<String>) -> Vec<Row> {
    replies
        .iter()
        .map(|r| match &r.result {
            Ok(v) => Row::Cells(cells(&r.name(), v)),
            Err(e) => Row::Error(r.name(), e.to_string()),
        })
        .collect()
}

/// The successful replies' values.
fn oks<T>(replies: &[Reply<T>]) -> impl Iterator<Item = &T> {
    replies.iter().filter_map(|r| r.result.as_ref().ok())
}

/// "3/3 answered" for the totals row's first cell.
fn answered<T>(replies: &[Reply<T>]) -> String {
    format!("TOTAL {}/{}", oks(replies).count(), replies.len())
}

/// The phase cell of a status row: "2/3" (phase of phases), with the repetition when the
/// profile repeats: "2/3 rep 1/4", "1/2 rep 7/∞"; "-" before any run.
pub(crate) fn phase_cell(s: &StatusResponse) -> String {
    match &s.phase {
        Some(p) if p.index > 0 => {
            let mut cell = format!("{}/{}", p.index, p.count);
            if p.repeat != 1 {
                let of = if p.repeat == 0 {
                    "∞".to_owned()
                } else {
                    p.repeat.to_string()
                };
                cell.push_str(&format!(" rep {}/{of}", p.repetition));
            }
            cell
        }
        _ => "-".to_owned(),
    }
}

const STATUS_COLUMNS: [(&str, Align); 10] = [
    ("ENDPOINT", Align::Left),
    ("STATE", Align::Left),
    ("RUN", Align::Left),
    ("WORKLOAD", Align::Left),
    ("PHASE", Align::Left),
    ("TARGET", Align::Right),
    ("RSS", Align::Right),
    ("WORKING SET", Align::Right),
    ("LIMIT", Align::Right),
    ("OOM KILLS", Align::Right),
];

/// `status` on many endpoints: a row each, then TOTAL (sums of target, RSS and working set),
/// MIN and MAX rows.
pub(crate) fn status(replies: &[Reply<StatusResponse>]) -> String {
    let mut rows = rows(replies, |name, s| {
        let c = s.container.as_ref();
        vec![
            name.to_owned(),
            text::state(s.state),
            if s.run_id.is_empty() {
                "-".to_owned()
            } else {
                s.run_id.clone()
            },
            text::workload(s.workload),
            phase_cell(s),
            human::bytes_mib(s.target_bytes),
            human::bytes_mib(s.rss_bytes),
            human::opt_bytes_mib(c.and_then(|c| c.working_set_bytes)),
            s.basis
                .as_ref()
                .map_or_else(|| "-".to_owned(), |b| human::bytes_mib(b.limit_bytes)),
            c.and_then(|c| c.oom_kills)
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
        ]
    });
    let target = sum_min_max(oks(replies).map(|s| s.target_bytes));
    let rss = sum_min_max(oks(replies).map(|s| s.rss_bytes));
    let ws = sum_min_max(
        oks(replies).filter_map(|s| s.container.as_ref().and_then(|c| c.working_set_bytes)),
    );
    let pick = |v: Option<(u64, u64, u64)>, f: fn((u64, u64, u64)) -> u64| {
        v.map_or_else(|| "-".to_owned(), |t| human::bytes_mib(f(t)))
    };
    for (label, f) in [
        (
            answered(replies),
            (|t: (u64, u64, u64)| t.0) as fn(_) -> u64,
        ),
        ("MIN".to_owned(), |t| t.1),
        ("MAX".to_owned(), |t| t.2),
    ] {
        let mut cells = vec![
            label,
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ];
        cells.extend([pick(target, f), pick(rss, f), pick(ws, f)]);
        rows.push(Row::Cells(cells));
    }
    table(&STATUS_COLUMNS, &rows)
}

/// `start` on many endpoints: the run started on each and its target, then the total target.
pub(crate) fn start(replies: &[Reply<StartResponse>]) -> String {
    let cols = [
        ("ENDPOINT", Align::Left),
        ("RUN", Align::Left),
        ("TARGET", Align::Right),
        ("LIMIT", Align::Right),
    ];
    let mut rows = rows(replies, |name, r| {
        vec![
            name.to_owned(),
            r.run_id.clone(),
            human::bytes_mib(r.target_bytes),
            r.basis
                .as_ref()
                .map_or_else(|| "-".to_owned(), |b| human::bytes_mib(b.limit_bytes)),
        ]
    });
    let total: u64 = oks(replies).map(|r| r.target_bytes).sum();
    rows.push(Row::Cells(vec![
        answered(replies),
        String::new(),
        human::bytes_mib(total),
    ]));
    table(&cols, &rows)
}

/// `stop` on many endpoints: what each did.
pub(crate) fn stop(replies: &[Reply<StopResponse>]) -> String {
    let cols = [("ENDPOINT", Align::Left), ("RESULT", Align::Left)];
    let rows = rows(replies, |name, r| {
        vec![name.to_owned(), text::stop(r).trim_end().to_owned()]
    });
    table(&cols, &rows)
}

/// `clear` on many endpoints: what each released, then the totals.
pub(crate) fn clear(replies: &[Reply<ClearResponse>]) -> String {
    let cols = [
        ("ENDPOINT", Align::Left),
        ("RELEASED", Align::Right),
        ("NODES", Align::Right),
        ("RSS BEFORE", Align::Right),
        ("RSS AFTER", Align::Right),
    ];
    let mut rows = rows(replies, |name, r| {
        vec![
            name.to_owned(),
            human::bytes_mib(r.released_bytes),
            human::thousands(r.nodes_released),
            human::bytes_mib(r.rss_before_bytes),
            human::bytes_mib(r.rss_after_bytes),
        ]
    });
    let sum = |f: fn(&ClearResponse) -> u64| human::bytes_mib(oks(replies).map(f).sum());
    rows.push(Row::Cells(vec![
        answered(replies),
        sum(|r| r.released_bytes),
        human::thousands(oks(replies).map(|r| r.nodes_released).sum()),
        sum(|r| r.rss_before_bytes),
        sum(|r| r.rss_after_bytes),
    ]));
    table(&cols, &rows)
}

/// `health` on many endpoints: one column per checked service.
pub(crate) fn health(services: &[String], replies: &[Reply<Vec<(String, i32)>>]) -> String {
    let headers: Vec<String> = services
        .iter()
        .map(|s| {
            if s.is_empty() {
                "(server)".to_owned()
            } else {
                s.clone()
            }
        })
        .collect();
    let mut cols = vec![("ENDPOINT", Align::Left)];
    cols.extend(headers.iter().map(|h| (h.as_str(), Align::Left)));
    let rows = rows(replies, |name, checks| {
        let mut cells = vec![name.to_owned()];
        cells.extend(checks.iter().map(|(_, st)| j::serving_status_name(*st)));
        cells
    });
    table(&cols, &rows)
}

/// `history` on many endpoints: the listing with the endpoint first, or each endpoint's run.
pub(crate) fn history(replies: &[Reply<HistoryReply>]) -> String {
    if replies
        .iter()
        .any(|r| matches!(r.result, Ok(HistoryReply::One(_))))
    {
        let mut out = String::new();
        for r in replies {
            out.push_str(&format!("== {} ==\n", r.name()));
            match &r.result {
                Ok(HistoryReply::One(run)) => out.push_str(&text::run_record(run)),
                Ok(HistoryReply::List(l)) => out.push_str(&text::run_list(&l.runs, &l.next_cursor)),
                Err(e) => out.push_str(&format!("error: {e}\n")),
            }
        }
        return out;
    }
    let mut cols = vec![("ENDPOINT", Align::Left)];
    cols.extend(HISTORY_COLUMNS);
    let mut rows = Vec::new();
    for r in replies {
        match &r.result {
            Ok(HistoryReply::List(l)) => rows.extend(l.runs.iter().map(|run| {
                let mut cells = vec![r.name()];
                cells.extend(history_row(run));
                Row::Cells(cells)
            })),
            Ok(HistoryReply::One(_)) => {}
            Err(e) => rows.push(Row::Error(r.name(), e.to_string())),
        }
    }
    table(&cols, &rows)
}

/// A `history` reply as JSON: the document `history` prints for one endpoint.
pub(crate) fn history_json(h: &HistoryReply) -> Value {
    match h {
        HistoryReply::One(run) => j::run_record(Some(run)),
        HistoryReply::List(l) => j::run_list(&l.runs, &l.next_cursor),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::error::CliError;
    use memstress_proto::v1::{ContainerMemory, Instance, PhaseProgress, State};

    fn reply(addr: &str, pod: &str, rss_mib: u64, ws_mib: Option<u64>) -> Reply<StatusResponse> {
        Reply {
            addr: addr.into(),
            instance: Some(Instance {
                pod_name: pod.into(),
                ..Instance::default()
            }),
            result: Ok(StatusResponse {
                state: State::Searching as i32,
                run_id: "run-1-aa".into(),
                target_bytes: 100 << 20,
                rss_bytes: rss_mib << 20,
                container: Some(ContainerMemory {
                    working_set_bytes: ws_mib.map(|m| m << 20),
                    oom_kills: Some(0),
                    ..ContainerMemory::default()
                }),
                ..StatusResponse::default()
            }),
        }
    }

    #[test]
    fn status_rows_and_totals() {
        let down = Reply {
            addr: "http://10.0.0.3:50051".into(),
            instance: None,
            result: Err(CliError::Unreachable {
                addr: "http://10.0.0.3:50051".into(),
                reason: "connection refused".into(),
            }),
        };
        let replies = vec![
            reply("http://10.0.0.1:50051", "web-a", 110, Some(120)),
            reply("http://10.0.0.2:50051", "", 90, None),
            down,
        ];
        let t = status(&replies);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ENDPOINT        STATE"), "{t}");
        assert!(
            lines[1].starts_with("web-a           SEARCHING  run-1-aa  tree"),
            "{t}"
        );
        assert!(lines[2].starts_with("10.0.0.2:50051  SEARCHING"), "{t}");
        assert!(
            lines[2].contains("  -  "),
            "unknown working set is '-': {t}"
        );
        assert_eq!(
            lines[3],
            "10.0.0.3:50051  error: cannot reach stressd at http://10.0.0.3:50051 (connection refused)"
        );
        assert_eq!(
            &lines[4..],
            [
                "TOTAL 2/3                                             200.0 MiB  200.0 MiB    120.0 MiB",
                "MIN                                                   100.0 MiB   90.0 MiB    120.0 MiB",
                "MAX                                                   100.0 MiB  110.0 MiB    120.0 MiB",
            ],
            "{t}"
        );
        let doc = document(&replies[2], |s: &StatusResponse| j::status(s));
        assert_eq!(doc["endpoint"], "10.0.0.3:50051");
        assert!(
            doc["error"]
                .as_str()
                .unwrap()
                .contains("connection refused")
        );
        let doc = document(&replies[0], |s: &StatusResponse| j::status(s));
        assert_eq!(doc["endpoint"], "web-a");
        assert_eq!(doc["address"], "http://10.0.0.1:50051");
        assert!(doc["error"].is_null());
    }

    #[test]
    fn phase_cells() {
        let mut s = StatusResponse::default();
        assert_eq!(phase_cell(&s), "-");
        s.phase = Some(PhaseProgress {
            index: 2,
            count: 3,
            repetition: 1,
            repeat: 1,
            target_bytes: 0,
        });
        assert_eq!(phase_cell(&s), "2/3");
        s.phase.as_mut().unwrap().repeat = 4;
        assert_eq!(phase_cell(&s), "2/3 rep 1/4");
        s.phase.as_mut().unwrap().repeat = 0;
        assert_eq!(phase_cell(&s), "2/3 rep 1/∞");
    }
}
