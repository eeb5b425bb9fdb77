//! The terminal while the view runs: raw mode, the alternate screen and a hidden cursor, all
//! undone when the guard drops (normal exit, error, or a panic unwinding through `run`) and by
//! a panic hook (a panic elsewhere, e.g. in another task, before the hook prints its message).

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::{self, IsTerminal as _, Stdout};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the terminal is in the view's modes now (the panic hook restores only then).
static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// The terminal in the view's modes; dropping it restores the shell's.
pub(crate) struct TerminalGuard {
    /// The ratatui terminal drawing to stdout.
    pub(crate) terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    /// Switches stdout to raw mode and the alternate screen. Refuses when stdout is not a
    /// terminal: a full-screen view written into a pipe or file is only escape codes.
    pub(crate) fn enter() -> io::Result<Self> {
        if !io::stdout().is_terminal() {
            return Err(io::Error::other(
                "stdout is not a terminal, and stressctl top draws a full screen \
                 (scripts want `stressctl status` or `stressctl logs --follow`)",
            ));
        }
        install_panic_hook();
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        // From here on the guard exists, so a failure below still restores what was set.
        let mut stdout = io::stdout();
        let entered = execute!(stdout, EnterAlternateScreen, Hide);
        let terminal = Terminal::new(CrosstermBackend::new(stdout));
        match (entered, terminal) {
            (Ok(()), Ok(terminal)) => Ok(Self { terminal }),
            (Err(e), _) | (_, Err(e)) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves the alternate screen, shows the cursor and ends raw mode, once; errors are ignored
/// because there is nothing better to do with a terminal that cannot be written to.
fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
        let _ = disable_raw_mode();
    }
}

/// Restores the terminal before the default hook prints a panic, so the message lands on the
/// shell's screen in cooked mode instead of vanishing with the alternate screen.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
