//! stressctl against many stressd at once: repeated `--addr` and `dns:///NAME:PORT` names.
//!
//! Every command runs on every endpoint in parallel ([`call::fan_out`]); text output is one row
//! per endpoint plus totals, JSON one document per endpoint; `logs --follow` merges the
//! streams ([`logs`]) and `top` polls them all ([`top_source`]).

mod call;
mod colour;
mod logs;
mod progress;
mod render;
mod resolve;
mod table;
mod top_source;

use std::io::{self, Write as _};

use serde_json::Value;

use crate::app::{Settings, not_serving};
use crate::cli::{Command, LogsArgs, OutputFormat, TopArgs};
use crate::error::CliError;
use crate::json as j;

pub(crate) use call::{Fared, Reply};
pub(crate) use resolve::is_fleet;

use call::{conclude, fan_out, identified};

/// Runs one command on every endpoint the `--addr` values stand for.
pub(crate) async fn run(
    addrs: &[String],
    settings: Settings,
    command: Command,
) -> Result<(), CliError> {
    if let Command::Logs(args) = &command
        && args.follow
    {
        return logs::follow(addrs, settings, args.from).await;
    }
    let resolved = resolve::resolve(addrs).await;
    if resolved.endpoints.is_empty() && resolved.failures.is_empty() {
        return Err(CliError::Unreachable {
            addr: addrs.join(", "),
            reason: "no endpoint to call".to_owned(),
        });
    }
    let eps = &resolved.endpoints;
    let s = &settings;
    let failed = &resolved.failures;
    match command {
        Command::Status => {
            let mut replies = fan_out(eps, s, |ctx| async move {
                let r = ctx.status_call().await;
                let instance = r.as_ref().ok().and_then(|s| s.instance.clone());
                (instance, r)
            })
            .await;
            replies.extend(unresolved(failed));
            finish(s.output, replies, render::status, j::status, |_| true)
        }
        Command::Start(args) => {
            let req = args.to_request().map_err(CliError::Usage)?;
            let req = &req;
            let mut replies = fan_out(eps, s, |ctx| async move {
                identified(&ctx, ctx.start_call(req.clone())).await
            })
            .await;
            replies.extend(unresolved(failed));
            if args.follow && replies.iter().any(|r| r.result.is_ok()) {
                let started: Vec<(String, String)> = replies
                    .iter()
                    .filter_map(|r| Some((r.addr.clone(), r.result.as_ref().ok()?.run_id.clone())))
                    .collect();
                let printed = finish(s.output, replies, render::start, j::start, |_| true);
                let followed = progress::follow(started, settings.clone()).await;
                return printed.and(followed);
            }
            finish(s.output, replies, render::start, j::start, |_| true)
        }
        Command::Stop => {
            let mut replies = fan_out(eps, s, |ctx| async move {
                identified(&ctx, ctx.stop_call()).await
            })
            .await;
            replies.extend(unresolved(failed));
            finish(s.output, replies, render::stop, j::stop, |_| true)
        }
        Command::Clear => {
            let mut replies = fan_out(eps, s, |ctx| async move {
                identified(&ctx, ctx.clear_call()).await
            })
            .await;
            replies.extend(unresolved(failed));
            finish(s.output, replies, render::clear, j::clear, |_| true)
        }
        Command::Health(args) => {
            let services = args.services();
            let svc = &services;
            let mut replies = fan_out(eps, s, |ctx| async move {
                identified(&ctx, ctx.health_call(svc.clone())).await
            })
            .await;
            replies.extend(unresolved(failed));
            let text = |r: &[Reply<Vec<(String, i32)>>]| render::health(svc, r);
            finish(
                s.output,
                replies,
                text,
                |c: &Vec<(String, i32)>| j::health(c),
                |c| not_serving(c).is_none(),
            )
        }
        Command::History(args) => {
            let a = &args;
            let mut replies = fan_out(eps, s, |ctx| async move {
                identified(&ctx, ctx.history_call(a)).await
            })
            .await;
            replies.extend(unresolved(failed));
            finish(
                s.output,
                replies,
                render::history,
                render::history_json,
                |_| true,
            )
        }
        Command::Logs(args) => dump_logs(eps, s, &args, unresolved(failed)).await,
        Command::Top(args) => top(addrs, settings, &args).await,
    }
}

/// Failed rows for the `dns:///` names that did not resolve.
fn unresolved<T>(failures: &[(String, String)]) -> Vec<Reply<T>> {
    failures
        .iter()
        .map(|(addr, reason)| Reply {
            addr: addr.clone(),
            instance: None,
            result: Err(CliError::Unreachable {
                addr: addr.clone(),
                reason: reason.clone(),
            }),
        })
        .collect()
}

/// Prints the replies (sorted by endpoint name) as a table or one JSON document each, and adds
/// up the exit code; `good` says whether a successful reply counts as success (health).
fn finish<T>(
    output: OutputFormat,
    mut replies: Vec<Reply<T>>,
    text: impl Fn(&[Reply<T>]) -> String,
    json: impl Fn(&T) -> Value,
    good: impl Fn(&T) -> bool,
) -> Result<(), CliError> {
    replies.sort_by_key(Reply::name);
    let mut out = io::stdout().lock();
    match output {
        OutputFormat::Text => out.write_all(text(&replies).as_bytes())?,
        OutputFormat::Json => {
            for r in &replies {
                serde_json::to_writer(&mut out, &render::document(r, &json))
                    .map_err(io::Error::from)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    let fared: Vec<Fared> = replies
        .iter()
        .map(|r| match &r.result {
            Ok(v) if good(v) => Fared::Ok,
            Ok(_) => Fared::Failed,
            Err(e) => Fared::of(e),
        })
        .collect();
    conclude(&fared)
}

/// `logs` without `--follow` on many endpoints: each endpoint's kept entries, every line
/// prefixed with its name (JSON: each entry with `endpoint`).
async fn dump_logs(
    eps: &[String],
    s: &Settings,
    args: &LogsArgs,
    mut failures: Vec<Reply<Vec<memstress_proto::v1::LogEntry>>>,
) -> Result<(), CliError> {
    let from = args.from;
    let mut replies = fan_out(eps, s, |ctx| async move {
        identified(&ctx, logs::kept_entries(&ctx, from)).await
    })
    .await;
    replies.append(&mut failures);
    replies.sort_by_key(Reply::name);
    let width = replies
        .iter()
        .map(|r| r.name().chars().count())
        .max()
        .unwrap_or(0);
    let painter = colour::Painter::for_stdout();
    let mut fared = Vec::new();
    for r in &replies {
        let name = r.name();
        match &r.result {
            Ok(entries) => {
                fared.push(Fared::Ok);
                for e in entries {
                    logs::print_entry(s.output, &painter, &name, width, e)?;
                }
            }
            Err(e) => {
                fared.push(Fared::of(e));
                logs::print_note(s.output, &painter, &name, width, &format!("error: {e}"))?;
            }
        }
    }
    conclude(&fared)
}

/// `stressctl top` on the endpoints the `--addr` values stand for.
pub(crate) async fn top(
    addrs: &[String],
    settings: Settings,
    args: &TopArgs,
) -> Result<(), CliError> {
    let source = top_source::FleetSource::new(addrs.to_vec(), settings);
    let options = crate::top::TopOptions {
        refresh: args.refresh,
        window: args.window,
    };
    crate::top::run(Box::new(source), options).await
}
