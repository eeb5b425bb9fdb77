//! Runs a parsed command against stressd: connect, call, print, and map failures to exit codes.

use std::future::Future;
use std::io::{self, Write};
use std::pin::Pin;

use memstress_proto::v1::LogEntry;
use serde_json::Value;
use std::path::Path;
use tonic::metadata::{Ascii, MetadataValue};

use crate::cli::{
    Cli, Command, DEFAULT_ADDR, HealthArgs, HistoryArgs, LogsArgs, OutputFormat, StartArgs,
};
use crate::error::CliError;
use crate::{json, text};

mod calls;
mod conn;
mod follow_run;

pub(crate) use calls::{HistoryReply, not_serving};
pub(crate) use conn::{Ctx, Settings, StreamStop, interrupt_listener};

/// Runs one command to completion.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let token = std::env::var("STRESSCTL_TOKEN").ok();
    let settings = Settings {
        timeout: cli.global.timeout,
        output: cli.global.output,
        tls: cli.global.tls.clone(),
        authorization: authorization(cli.global.token_file.as_deref(), token.as_deref())?,
    };
    match cli.command {
        Command::Top(args) => crate::fleet::top(&cli.global.addr, settings, &args).await,
        command if crate::fleet::is_fleet(&cli.global.addr) => {
            crate::fleet::run(&cli.global.addr, settings, command).await
        }
        command => {
            let addr = cli.global.addr.first().map_or(DEFAULT_ADDR, String::as_str);
            Ctx::connect(addr, &settings).await?.run(command).await
        }
    }
}

impl Ctx {
    /// Runs one command against this one endpoint, with the output of a single stressd.
    async fn run(&self, command: Command) -> Result<(), CliError> {
        match command {
            Command::Start(args) => self.start(&args).await,
            Command::Stop => self.stop().await,
            Command::Status => self.status().await,
            Command::Clear => self.clear().await,
            Command::Logs(args) => self.logs(&args).await,
            Command::Health(args) => self.health(&args).await,
            Command::History(args) => self.history(&args).await,
            Command::Top(args) => {
                crate::fleet::top(std::slice::from_ref(&self.addr), self.settings(), &args).await
            }
        }
    }
}

/// The `authorization` value from `--token-file` (which wins) or STRESSCTL_TOKEN: the token
/// trimmed of surrounding whitespace, as stressd trims its token files. `None` without either.
pub fn authorization(
    token_file: Option<&Path>,
    env_token: Option<&str>,
) -> Result<Option<MetadataValue<Ascii>>, CliError> {
    let (token, source) = match (token_file, env_token) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CliError::Token(format!("cannot read --token-file {}: {e}", path.display()))
            })?;
            (text, format!("--token-file {}", path.display()))
        }
        (None, Some(token)) => (token.to_owned(), "STRESSCTL_TOKEN".to_owned()),
        (None, None) => return Ok(None),
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(CliError::Token(format!(
            "{source} is empty; it must hold the token"
        )));
    }
    MetadataValue::try_from(format!("Bearer {token}"))
        .map(Some)
        .map_err(|_| {
            CliError::Token(format!(
                "{source}: the token holds characters a gRPC header cannot carry (allowed: \
                 printable ASCII)"
            ))
        })
}

/// Writes `s` to stdout and flushes, so followed entries appear as they arrive.
fn print_text(s: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()
}

/// Writes one JSON document on one line.
fn print_json(v: &Value) -> io::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    out.write_all(b"\n")?;
    out.flush()
}

impl Ctx {
    /// Prints a result in the chosen format.
    fn emit(&self, text: impl FnOnce() -> String, json: impl FnOnce() -> Value) -> io::Result<()> {
        match self.output {
            OutputFormat::Text => print_text(&text()),
            OutputFormat::Json => print_json(&json()),
        }
    }

    fn emit_entry(&self, e: &LogEntry) -> io::Result<()> {
        self.emit(|| text::log_entry(e), || json::log_entry(e))
    }

    async fn start(&self, args: &StartArgs) -> Result<(), CliError> {
        let resp = self
            .start_call(args.to_request().map_err(CliError::Usage)?)
            .await?;
        self.emit(|| text::start(&resp), || json::start(&resp))?;
        if !args.follow {
            return Ok(());
        }
        self.follow_run(&resp.run_id).await
    }
    async fn stop(&self) -> Result<(), CliError> {
        let resp = self.stop_call().await?;
        Ok(self.emit(|| text::stop(&resp), || json::stop(&resp))?)
    }

    async fn status(&self) -> Result<(), CliError> {
        let resp = self.status_call().await?;
        Ok(self.emit(|| text::status(&resp), || json::status(&resp))?)
    }

    async fn clear(&self) -> Result<(), CliError> {
        let resp = self.clear_call().await?;
        Ok(self.emit(|| text::clear(&resp), || json::clear(&resp))?)
    }

    async fn logs(&self, args: &LogsArgs) -> Result<(), CliError> {
        let mut stream = self.watch(args.from, args.follow).await?;
        // Only a followed stream catches Ctrl-C; a one-shot dump keeps the default (terminate).
        let mut interrupt: Pin<Box<dyn Future<Output = ()> + Send>> = if args.follow {
            interrupt_listener()
        } else {
            Box::pin(std::future::pending())
        };
        loop {
            match self.next_entry(&mut stream, &mut interrupt).await {
                Ok(entry) => self.emit_entry(&entry)?,
                Err(StreamStop::Ended) if !args.follow => return Ok(()),
                Err(StreamStop::Ended) => {
                    return Err(CliError::StreamEnded(format!(
                        "log stream from stressd at {} ended (server shutting down?)",
                        self.addr
                    )));
                }
                Err(StreamStop::Failed(e)) if !args.follow => return Err(e),
                // Not a stream that ended early: there was never a gRPC stream.
                Err(StreamStop::Failed(e @ CliError::NotGrpc { .. })) => return Err(e),
                Err(StreamStop::Failed(e)) => {
                    return Err(CliError::StreamEnded(format!("log stream broke: {e}")));
                }
                Err(StreamStop::Interrupted) => return Err(CliError::Interrupted),
            }
        }
    }

    /// `history`: one run in full (GetRun), or a listing paged through ListRuns.
    async fn history(&self, args: &HistoryArgs) -> Result<(), CliError> {
        match self.history_call(args).await? {
            HistoryReply::One(run) => {
                self.emit(|| text::run_record(&run), || json::run_record(Some(&run)))?;
            }
            HistoryReply::List(listing) => self.emit(
                || text::run_list(&listing.runs, &listing.next_cursor),
                || json::run_list(&listing.runs, &listing.next_cursor),
            )?,
        }
        Ok(())
    }

    async fn health(&self, args: &HealthArgs) -> Result<(), CliError> {
        let checks = self.health_call(args.services()).await?;
        self.emit(|| text::health(&checks), || json::health(&checks))?;
        match calls::not_serving(&checks) {
            None => Ok(()),
            Some(names) => Err(CliError::NotServing(names)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_the_file_first_then_the_environment() {
        assert!(authorization(None, None).unwrap().is_none());
        let from_env = authorization(None, Some(" s3cret\n")).unwrap().unwrap();
        assert_eq!(from_env.to_str().unwrap(), "Bearer s3cret");
        let dir = std::env::temp_dir().join(format!("stressctl-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "fr0m-file\n").unwrap();
        let v = authorization(Some(&file), Some("env")).unwrap().unwrap();
        assert_eq!(v.to_str().unwrap(), "Bearer fr0m-file");
        std::fs::write(&file, "\n").unwrap();
        let err = authorization(Some(&file), None).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        assert_eq!(err.exit_code(), crate::error::EXIT_UNREACHABLE);
        let err = authorization(Some(&dir.join("missing")), None).unwrap_err();
        assert!(
            err.to_string().contains("cannot read --token-file"),
            "{err}"
        );
        let err = authorization(None, Some("bad\u{7f}token")).unwrap_err();
        assert!(err.to_string().contains("STRESSCTL_TOKEN"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
