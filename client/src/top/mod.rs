//! `stressctl top`: a full-screen live view of one stressd or many.
//!
//! The view never talks to the network itself: it asks a [`Source`] for one [`Sample`] per
//! endpoint each tick, so the fleet plumbing (name resolution, connections, timeouts) stays in
//! one place and the view is testable with a fake source.

mod model;
mod terminal;
mod view;

use crate::error::CliError;
use crossterm::event::{Event, EventStream, KeyCode, KeyEventKind, KeyModifiers};
use futures_util::StreamExt as _;
use memstress_proto::v1::{LogEntry, StatusResponse};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// Polls are never closer than this, whatever `--refresh` says: a poll is one Status and one
/// log read per endpoint.
const MIN_REFRESH: Duration = Duration::from_millis(100);

/// What one endpoint said in one poll.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// Stable key of the endpoint (its address, "10.0.0.7:50051").
    pub endpoint: String,
    /// Its Status, or why it could not be read.
    pub status: Result<StatusResponse, String>,
    /// Log entries newer than the ones returned by earlier polls of this endpoint, oldest first.
    pub logs: Vec<LogEntry>,
}

/// Where the view gets its data: every endpoint, polled once per call.
pub(crate) trait Source: Send {
    /// Polls every endpoint once (in parallel, each bounded by a timeout). Endpoints that
    /// appeared since the last call are included; those that went away are not.
    fn poll(&mut self) -> Pin<Box<dyn Future<Output = Vec<Sample>> + Send + '_>>;
}

/// Options of the view.
#[derive(Debug, Clone)]
pub(crate) struct TopOptions {
    /// Time between polls.
    pub refresh: Duration,
    /// How much history the charts show.
    pub window: Duration,
}

/// Runs the full-screen view until `q` or Ctrl-C, restoring the terminal on every exit path.
pub(crate) async fn run(source: Box<dyn Source>, options: TopOptions) -> Result<(), CliError> {
    let mut guard = terminal::TerminalGuard::enter()?;
    event_loop(&mut guard.terminal, source, &options).await
}

/// A poll in flight: it owns the source and hands it back with the samples, so a slow poll
/// never holds a borrow across loop turns and keys stay answered while it runs.
type Polling = Pin<Box<dyn Future<Output = (Box<dyn Source>, Vec<Sample>)> + Send>>;

fn start_poll(mut source: Box<dyn Source>) -> Polling {
    Box::pin(async move {
        let samples = source.poll().await;
        (source, samples)
    })
}

/// What a terminal event asks for.
#[derive(Debug, PartialEq, Eq)]
enum Input {
    Quit,
    Redraw,
    Ignore,
}

fn input(event: &Event) -> Input {
    match event {
        Event::Key(k) if k.kind != KeyEventKind::Release => match k.code {
            KeyCode::Char('q' | 'Q') | KeyCode::Esc => Input::Quit,
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Input::Quit,
            _ => Input::Ignore,
        },
        Event::Resize(..) => Input::Redraw,
        _ => Input::Ignore,
    }
}

/// Polls every `refresh` (the next poll starts at the first tick after the last one ended),
/// draws after each poll and on resize, and ends on a quit key or when the terminal's input
/// ends.
async fn event_loop<B: ratatui::backend::Backend>(
    terminal: &mut ratatui::Terminal<B>,
    source: Box<dyn Source>,
    options: &TopOptions,
) -> Result<(), CliError> {
    let refresh = options.refresh.max(MIN_REFRESH);
    let mut model = model::Model::new(options.window, Instant::now());
    let mut ticker = tokio::time::interval(refresh);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events = EventStream::new();
    let mut idle = Some(source);
    let mut polling: Option<Polling> = None;
    let draw = |terminal: &mut ratatui::Terminal<B>, model: &model::Model| {
        terminal.draw(|f| view::draw(f, model, refresh)).map(|_| ())
    };
    draw(terminal, &model)?;
    loop {
        tokio::select! {
            _ = ticker.tick(), if idle.is_some() => {
                if let Some(source) = idle.take() {
                    polling = Some(start_poll(source));
                }
            }
            Some((source, samples)) = async { Some(polling.as_mut()?.await) }, if polling.is_some() => {
                polling = None;
                idle = Some(source);
                model.apply(samples, Instant::now());
                draw(terminal, &model)?;
            }
            event = events.next() => match event {
                Some(Ok(event)) => match input(&event) {
                    Input::Quit => return Ok(()),
                    Input::Redraw => draw(terminal, &model)?,
                    Input::Ignore => {}
                },
                Some(Err(e)) => return Err(CliError::Output(e)),
                None => return Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyEvent, KeyEventState};

    fn key(code: KeyCode, modifiers: KeyModifiers, kind: KeyEventKind) -> Event {
        Event::Key(KeyEvent {
            code,
            modifiers,
            kind,
            state: KeyEventState::NONE,
        })
    }

    #[test]
    fn q_esc_and_ctrl_c_quit_resize_redraws_the_rest_is_ignored() {
        let press = KeyEventKind::Press;
        let none = KeyModifiers::NONE;
        assert_eq!(input(&key(KeyCode::Char('q'), none, press)), Input::Quit);
        assert_eq!(
            input(&key(KeyCode::Char('Q'), KeyModifiers::SHIFT, press)),
            Input::Quit
        );
        assert_eq!(input(&key(KeyCode::Esc, none, press)), Input::Quit);
        // Raw mode turns Ctrl-C into a key instead of SIGINT.
        let ctrl_c = key(KeyCode::Char('c'), KeyModifiers::CONTROL, press);
        assert_eq!(input(&ctrl_c), Input::Quit);
        assert_eq!(input(&key(KeyCode::Char('c'), none, press)), Input::Ignore);
        assert_eq!(
            input(&key(KeyCode::Char('q'), none, KeyEventKind::Release)),
            Input::Ignore
        );
        assert_eq!(input(&key(KeyCode::Char('x'), none, press)), Input::Ignore);
        assert_eq!(input(&Event::Resize(80, 24)), Input::Redraw);
        assert_eq!(input(&Event::FocusGained), Input::Ignore);
    }
}
