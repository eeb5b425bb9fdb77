//! A colour per endpoint for merged output on a terminal, as stern does: assigned in the order
//! endpoints first appear, never on a pipe or with NO_COLOR set.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::Mutex;

/// ANSI foreground colours given out in turn: cyan, yellow, green, magenta, blue, then the
/// bright variants (red is left for errors).
const PALETTE: [u8; 10] = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

/// Whether to colour: only on a terminal, and not when NO_COLOR is set to anything non-empty
/// (<https://no-color.org>).
pub(crate) fn should_colour(is_terminal: bool, no_color: Option<&str>) -> bool {
    is_terminal && no_color.is_none_or(str::is_empty)
}

/// The ANSI colour of the `n`-th endpoint to appear (counting from 0).
pub(crate) fn colour_of(n: usize) -> u8 {
    PALETTE[n % PALETTE.len()]
}

/// `text` in ANSI colour `code`.
pub(crate) fn paint(code: u8, text: &str) -> String {
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Colours endpoint names (or leaves them plain).
#[derive(Debug)]
pub(crate) struct Painter {
    enabled: bool,
    assigned: Mutex<HashMap<String, usize>>,
}

impl Painter {
    /// For stdout as it is now (terminal or not) and NO_COLOR.
    pub(crate) fn for_stdout() -> Self {
        let no_color = std::env::var("NO_COLOR").ok();
        Self::new(should_colour(
            std::io::stdout().is_terminal(),
            no_color.as_deref(),
        ))
    }

    /// A painter that colours when `enabled`.
    pub(crate) fn new(enabled: bool) -> Self {
        Painter {
            enabled,
            assigned: Mutex::new(HashMap::new()),
        }
    }

    /// `name` padded to `width`, in its endpoint's colour when enabled.
    pub(crate) fn name(&self, name: &str, width: usize) -> String {
        let padded = format!("{name:<width$}");
        if !self.enabled {
            return padded;
        }
        let n = match self.assigned.lock() {
            Ok(mut map) => {
                let next = map.len();
                *map.entry(name.to_owned()).or_insert(next)
            }
            // A poisoned map only loses the colour assignment, not the line.
            Err(_) => 0,
        };
        paint(colour_of(n), &padded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(should_colour(true, None));
        assert!(should_colour(true, Some("")));
        assert!(!should_colour(true, Some("1")));
        assert!(!should_colour(false, None));
    }

    #[test]
    fn endpoints_get_colours_in_turn() {
        assert_eq!(colour_of(0), 36);
        assert_eq!(colour_of(1), 33);
        assert_eq!(colour_of(10), colour_of(0));
        assert!(
            (0..PALETTE.len()).all(|i| colour_of(i) != 31),
            "red is for errors"
        );
        let p = Painter::new(true);
        assert_eq!(p.name("a", 3), "\x1b[36ma  \x1b[0m");
        assert_eq!(p.name("b", 1), "\x1b[33mb\x1b[0m");
        assert_eq!(p.name("a", 1), "\x1b[36ma\x1b[0m");
        assert_eq!(Painter::new(false).name("a", 3), "a  ");
    }
}
