//! `start --follow` on many endpoints: one progress line per endpoint until every run ended.
//!
//! On a terminal (text output) the lines redraw in place (indicatif); otherwise a line is
//! printed whenever an endpoint's state changes.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use memstress_proto::v1::{State, StatusResponse};
use serde_json::{Value, json};

use super::call::{CONCURRENCY, Fared, conclude, endpoint_name};
use crate::app::{Ctx, Settings, interrupt_listener};
use crate::cli::OutputFormat;
use crate::error::CliError;
use crate::{progress, text};

/// Time between Status polls of the followed runs.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// One followed run.
struct Followed {
    addr: String,
    run_id: String,
    ctx: Option<Ctx>,
    line: Option<ProgressBar>,
    last: String,
    fared: Option<Fared>,
    /// The endpoint's name once a Status said it (its address until then).
    name: String,
}

/// The line of one endpoint: `NAME  STATE  <progress words or the run's end>`.
pub(crate) fn line(name: &str, width: usize, s: &StatusResponse, run_id: &str) -> String {
    let state = text::state(s.state);
    let detail = if s.run_id != run_id {
        format!("run {run_id} was replaced by {}", s.run_id)
    } else if progress::building(s, run_id) || s.state == State::Searching as i32 {
        progress::words(&progress::fill(s))
    } else if !s.last_error.is_empty() {
        s.last_error.clone()
    } else {
        format!("{:.1} MiB reached", s.rss_bytes as f64 / (1024.0 * 1024.0))
    };
    format!("{name:<width$}  {state:<9}  {detail}")
}

/// How a finished run counts: failed runs (and replaced ones) fail the command.
fn fared(s: &StatusResponse, run_id: &str) -> Fared {
    if s.run_id == run_id && s.state != State::Failed as i32 {
        Fared::Ok
    } else {
        Fared::Failed
    }
}

/// Follows the runs `started` (address, run id) until every one ended, or Ctrl-C (exit 130).
pub(crate) async fn follow(
    started: Vec<(String, String)>,
    settings: Settings,
) -> Result<(), CliError> {
    let live = settings.output == OutputFormat::Text && std::io::stderr().is_terminal();
    let multi = MultiProgress::new();
    let mut runs: BTreeMap<String, Followed> = BTreeMap::new();
    for (addr, run_id) in started {
        let line = live.then(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        let name = super::resolve::display_addr(&addr).to_owned();
        runs.insert(
            addr.clone(),
            Followed {
                name,
                addr,
                run_id,
                ctx: None,
                line,
                last: String::new(),
                fared: None,
            },
        );
    }
    eprintln!(
        "Following {} runs (Ctrl-C stops following, not the runs).",
        runs.len()
    );
    let mut interrupt = interrupt_listener();
    let mut tick = tokio::time::interval(POLL_EVERY);
    while runs.values().any(|r| r.fared.is_none()) {
        tokio::select! {
            () = &mut interrupt => {
                let _ = multi.clear();
                eprintln!("\nStopped following; the runs keep running. Stop them with: stressctl --addr ... stop");
                return Err(CliError::Interrupted);
            }
            _ = tick.tick() => poll_all(&mut runs, &settings).await,
        }
    }
    let fared: Vec<Fared> = runs.values().filter_map(|r| r.fared).collect();
    conclude(&fared)
}

/// Polls every unfinished run once and redraws (or prints) its line.
async fn poll_all(runs: &mut BTreeMap<String, Followed>, settings: &Settings) {
    let pending: Vec<(String, Option<Ctx>)> = runs
        .values_mut()
        .filter(|r| r.fared.is_none())
        .map(|r| (r.addr.clone(), r.ctx.take()))
        .collect();
    let results: Vec<(String, Option<Ctx>, Result<StatusResponse, CliError>)> =
        stream::iter(pending)
            .map(|(addr, ctx)| async move {
                let ctx = match ctx {
                    Some(c) => c,
                    None => match Ctx::connect(&addr, settings).await {
                        Ok(c) => c,
                        Err(e) => return (addr, None, Err(e)),
                    },
                };
                let r = ctx.status_call().await;
                let keep = r.is_ok().then_some(ctx);
                (addr, keep, r)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    for (addr, _, result) in &results {
        if let (Some(run), Ok(s)) = (runs.get_mut(addr), result) {
            run.name = endpoint_name(addr, s.instance.as_ref());
        }
    }
    let width = runs
        .values()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    for (addr, ctx, result) in results {
        let Some(run) = runs.get_mut(&addr) else {
            continue;
        };
        run.ctx = ctx;
        let text = match &result {
            Ok(s) => {
                if progress::ended(s, &run.run_id) {
                    run.fared = Some(fared(s, &run.run_id));
                }
                line(&run.name, width, s, &run.run_id)
            }
            Err(e) => format!("{:<width$}  {:<9}  {e}", run.name, "?"),
        };
        let doc = (settings.output == OutputFormat::Json).then(|| document(run, &result));
        show(run, text, doc);
    }
}

/// One endpoint's progress as JSON: `{"endpoint", "address", "run_id", "status"}` (the
/// Status document as `status --output json` prints it), or `"error"` when it did not answer.
fn document(run: &Followed, result: &Result<StatusResponse, CliError>) -> Value {
    let mut doc = json!({
        "endpoint": run.name,
        "address": run.addr,
        "run_id": run.run_id,
    });
    doc["status"] = match result {
        Ok(s) => crate::json::status(s),
        Err(_) => Value::Null,
    };
    if let Err(e) = result {
        doc["error"] = Value::String(e.to_string());
    }
    doc
}

/// Redraws the endpoint's line, or prints it (or `doc`, for JSON) when its state changed (no
/// terminal).
fn show(run: &mut Followed, text: String, doc: Option<Value>) {
    match &run.line {
        Some(bar) => {
            bar.set_message(text);
            if run.fared.is_some() {
                bar.finish();
            }
        }
        None => {
            // Without a terminal only state changes are news; the numbers change every poll.
            let key: String = text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            if key != run.last || run.fared.is_some() {
                match doc {
                    Some(doc) => println!("{doc}"),
                    None => println!("{text}"),
                }
                run.last = key;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_progress_lines() {
        let mut s = StatusResponse {
            run_id: "run-1".into(),
            state: State::Building as i32,
            rss_bytes: 256 << 20,
            target_bytes: 1024 << 20,
            current_fill_rate_mb_per_second: 128.0,
            ..StatusResponse::default()
        };
        assert_eq!(
            line("pod-a", 6, &s, "run-1"),
            "pod-a   BUILDING   256.0 / 1024.0 MiB   25%  128.0 MiB/s  6s left"
        );
        s.state = State::Failed as i32;
        s.last_error = "cannot allocate".into();
        assert_eq!(
            line("pod-a", 5, &s, "run-1"),
            "pod-a  FAILED     cannot allocate"
        );
        assert_eq!(fared(&s, "run-1"), Fared::Failed);
        s.state = State::Completed as i32;
        assert_eq!(fared(&s, "run-1"), Fared::Ok);
        assert_eq!(fared(&s, "run-2"), Fared::Failed);
        assert!(line("pod-a", 5, &s, "run-0").contains("was replaced by run-1"));
    }
}
