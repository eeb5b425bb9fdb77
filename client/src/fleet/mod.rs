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
use crate::cli::{Command, LogsArgs, OutputFormat, StartArgs, TopArgs};
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
    let plan = Plan {
        eps: &resolved.endpoints,
        settings: &settings,
        failed: &resolved.failures,
    };
    let out = settings.output;
    match command {
        Command::Status => {
            let replies = plan
                .call(|ctx| async move {
                    let r = ctx.status_call().await;
                    let instance = r.as_ref().ok().and_then(|s| s.instance.clone());
                    (instance, r)
                })
                .await;
            finish(out, replies, render::status, j::status, |_| true)
        }
        Command::Start(args) => start(&plan, &args).await,
        Command::Stop => {
            let replies = plan
                .call(|ctx| async move { identified(&ctx, ctx.stop_call()).await })
                .await;
            finish(out, replies, render::stop, j::stop, |_| true)
        }
        Command::Clear => {
            let replies = plan
                .call(|ctx| async move { identified(&ctx, ctx.clear_call()).await })
                .await;
            finish(out, replies, render::clear, j::clear, |_| true)
        }
        Command::Health(args) => {
            let services = args.services();
            let svc = &services;
            let replies = plan
                .call(|ctx| async move { identified(&ctx, ctx.health_call(svc.clone())).await })
                .await;
            let text = |r: &[Reply<Vec<(String, i32)>>]| render::health(svc, r);
            let json = |c: &Vec<(String, i32)>| j::health(c);
            finish(out, replies, text, json, |c| not_serving(c).is_none())
        }
        Command::History(args) => {
            let a = &args;
            let replies = plan
                .call(|ctx| async move { identified(&ctx, ctx.history_call(a)).await })
                .await;
            finish(out, replies, render::history, render::history_json, |_| {
                true
            })
        }
        Command::Logs(args) => dump_logs(&plan, &args).await,
        Command::Top(args) => top(addrs, settings.clone(), &args).await,
    }
}

/// The endpoints of one command, and the names that did not resolve.
struct Plan<'a> {
    eps: &'a [String],
    settings: &'a Settings,
    failed: &'a [(String, String)],
}

impl Plan<'_> {
    /// `op` on every endpoint ([`fan_out`]), plus a failed reply per unresolved name.
    async fn call<T, F, Fut>(&self, op: F) -> Vec<Reply<T>>
    where
        F: Fn(crate::app::Ctx) -> Fut,
        Fut: std::future::Future<
                Output = (Option<memstress_proto::v1::Instance>, Result<T, CliError>),
            >,
    {
        let mut replies = fan_out(self.eps, self.settings, op).await;
        replies.extend(unresolved(self.failed));
        replies
    }
}

/// `start` on every endpoint; with `--follow`, one progress line per started run until each
/// ends.
async fn start(plan: &Plan<'_>, args: &StartArgs) -> Result<(), CliError> {
    let req = args.to_request().map_err(CliError::Usage)?;
    let req = &req;
    let replies = plan
        .call(|ctx| async move { identified(&ctx, ctx.start_call(req.clone())).await })
        .await;
    let started: Vec<(String, String)> = replies
        .iter()
        .filter_map(|r| Some((r.addr.clone(), r.result.as_ref().ok()?.run_id.clone())))
        .collect();
    let printed = finish(
        plan.settings.output,
        replies,
        render::start,
        j::start,
        |_| true,
    );
    if !args.follow || started.is_empty() {
        return printed;
    }
    let followed = progress::follow(started, plan.settings.clone()).await;
    printed.and(followed)
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
async fn dump_logs(plan: &Plan<'_>, args: &LogsArgs) -> Result<(), CliError> {
    let from = args.from;
    let mut replies = plan
        .call(|ctx| async move { identified(&ctx, logs::kept_entries(&ctx, from)).await })
        .await;
    replies.sort_by_key(Reply::name);
    let width = replies
        .iter()
        .map(|r| r.name().chars().count())
        .max()
        .unwrap_or(0);
    let painter = colour::Painter::for_stdout();
    let output = plan.settings.output;
    let mut fared = Vec::new();
    for r in &replies {
        let name = r.name();
        match &r.result {
            Ok(entries) => {
                fared.push(Fared::Ok);
                for e in entries {
                    logs::print_entry(output, &painter, &name, width, e)?;
                }
            }
            Err(e) => {
                fared.push(Fared::of(e));
                logs::print_note(output, &painter, &name, width, &format!("error: {e}"))?;
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
