//! `start --follow` on one endpoint: the run's entries until it ends, with a progress bar
//! (MiB reached of target, rate, time left) while it builds when stdout and stderr are a
//! terminal and the output is text.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::ProgressBar;
use memstress_proto::v1::LogEntry;

use super::{Ctx, StreamStop, interrupt_listener};
use crate::cli::OutputFormat;
use crate::error::CliError;
use crate::follow::{self, FollowAction, RunEnd};
use crate::progress;

/// Time between the Status polls that move the bar.
const BAR_EVERY: Duration = Duration::from_millis(250);

impl Ctx {
    /// Whether `start --follow` draws a bar: text output with stdout and stderr on a terminal.
    fn wants_bar(&self) -> bool {
        self.output == OutputFormat::Text
            && std::io::stdout().is_terminal()
            && std::io::stderr().is_terminal()
    }

    /// Prints an entry, lifting the bar out of the way while it does.
    fn print_entry(&self, bar: Option<&ProgressBar>, e: &LogEntry) -> std::io::Result<()> {
        match bar {
            Some(bar) => bar.suspend(|| self.emit_entry(e)),
            None => self.emit_entry(e),
        }
    }

    /// Moves the bar to the run's progress; removes it once the run no longer builds.
    async fn advance(&self, bar: &mut Option<ProgressBar>, run_id: &str) {
        let Ok(status) = self.status_call().await else {
            return;
        };
        if let Some(b) = bar.as_ref() {
            if progress::building(&status, run_id) {
                progress::update(b, &progress::fill(&status));
            } else {
                b.finish_and_clear();
                *bar = None;
            }
        }
    }

    /// `start --follow`: the run's entries (and missed-entry notices) until it ends.
    pub(super) async fn follow_run(&self, run_id: &str) -> Result<(), CliError> {
        let mut stream = self.watch(0, true).await?;
        let mut interrupt = interrupt_listener();
        eprintln!("Following run {run_id} (Ctrl-C stops following, not the run).");
        let mut bar = self.wants_bar().then(progress::bar);
        let mut tick = tokio::time::interval(BAR_EVERY);
        loop {
            let next = tokio::select! {
                biased;
                r = self.next_entry(&mut stream, &mut interrupt) => r,
                _ = tick.tick(), if bar.is_some() => {
                    self.advance(&mut bar, run_id).await;
                    continue;
                }
            };
            if next.is_err()
                && let Some(b) = bar.take()
            {
                b.finish_and_clear();
            }
            let entry = match next {
                Ok(entry) => entry,
                Err(StreamStop::Interrupted) => {
                    eprintln!(
                        "\nStopped following; run {run_id} keeps running. Stop it with: stressctl --addr {} stop",
                        self.addr
                    );
                    return Err(CliError::Interrupted);
                }
                Err(StreamStop::Ended) => {
                    return Err(CliError::StreamEnded(format!(
                        "log stream from stressd at {} ended before run {run_id} finished (server shutting down?)",
                        self.addr
                    )));
                }
                // Not a stream that ended early: there was never a gRPC stream.
                Err(StreamStop::Failed(e @ CliError::NotGrpc { .. })) => return Err(e),
                Err(StreamStop::Failed(e)) => {
                    return Err(CliError::StreamEnded(format!(
                        "log stream broke before run {run_id} finished: {e}"
                    )));
                }
            };
            match follow::decide(run_id, &entry) {
                FollowAction::Skip => {}
                FollowAction::Print => self.print_entry(bar.as_ref(), &entry)?,
                FollowAction::PrintAndStop(end) => {
                    if let Some(b) = bar.take() {
                        b.finish_and_clear();
                    }
                    self.emit_entry(&entry)?;
                    return match end {
                        RunEnd::Completed | RunEnd::Stopped => Ok(()),
                        RunEnd::Failed => Err(CliError::RunFailed {
                            run_id: run_id.to_owned(),
                            message: entry.message,
                        }),
                    };
                }
            }
        }
    }
}
