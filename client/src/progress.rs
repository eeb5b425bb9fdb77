//! Build progress of a run from its Status: MiB reached of the target, the fill rate and the
//! time left; drawn as an indicatif bar (one endpoint) or one line per endpoint (many).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use memstress_proto::v1::{Scope, State, StatusResponse};

use crate::human;

const MIB: f64 = 1024.0 * 1024.0;

/// How far a run's build has come.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fill {
    /// Memory counted toward the target now, MiB: RSS, or the working set in container scope.
    pub(crate) reached_mib: f64,
    /// The target now (the current phase's, in a profile), MiB.
    pub(crate) target_mib: f64,
    /// Fill rate now, MiB/s (the average of the build when no recent rate is known).
    pub(crate) rate_mib_s: f64,
    /// Time left at that rate (`None` without a rate, or once reached).
    pub(crate) left: Option<Duration>,
}

/// The build progress a Status shows.
pub(crate) fn fill(s: &StatusResponse) -> Fill {
    let container = s
        .parameters
        .as_ref()
        .is_some_and(|p| p.scope == Scope::Container as i32);
    let ws = s.container.as_ref().and_then(|c| c.working_set_bytes);
    let reached = match (container, ws) {
        (true, Some(ws)) => ws,
        _ => s.rss_bytes,
    };
    let target = s
        .phase
        .as_ref()
        .map(|p| p.target_bytes)
        .filter(|t| *t > 0)
        .unwrap_or(s.target_bytes);
    let rate = if s.current_fill_rate_mb_per_second > 0.0 {
        s.current_fill_rate_mb_per_second
    } else {
        s.fill_rate_mb_per_second
    };
    let (reached_mib, target_mib) = (reached as f64 / MIB, target as f64 / MIB);
    let gap = target_mib - reached_mib;
    let left = (rate > 0.0 && gap > 0.0)
        .then(|| Duration::try_from_secs_f64(gap / rate).ok())
        .flatten();
    Fill {
        reached_mib,
        target_mib,
        rate_mib_s: rate,
        left,
    }
}

/// "512.0 / 1024.0 MiB  50%  200.0 MiB/s  3s left": the bar's words and the fleet line's.
pub(crate) fn words(f: &Fill) -> String {
    let pct = if f.target_mib > 0.0 {
        (f.reached_mib / f.target_mib * 100.0).clamp(0.0, 999.0)
    } else {
        0.0
    };
    let left = f.left.map_or_else(
        || "-".to_owned(),
        |d| format!("{} left", human::duration(d)),
    );
    format!(
        "{:.1} / {:.1} MiB  {pct:>3.0}%  {}  {left}",
        f.reached_mib,
        f.target_mib,
        human::mib_rate(f.rate_mib_s)
    )
}

/// Whether the run `run_id` is still building (its bar or line keeps updating).
pub(crate) fn building(s: &StatusResponse, run_id: &str) -> bool {
    s.run_id == run_id && s.state == State::Building as i32
}

/// Whether the run `run_id` has ended (or was replaced by another run).
pub(crate) fn ended(s: &StatusResponse, run_id: &str) -> bool {
    s.run_id != run_id
        || !matches!(
            State::try_from(s.state),
            Ok(State::Building | State::Searching)
        )
}

/// A bar for one run's build on stderr: position and length in MiB.
pub(crate) fn bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template("{spinner} building [{bar:40}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// Moves `bar` to what `f` shows.
pub(crate) fn update(bar: &ProgressBar, f: &Fill) {
    bar.set_length(f.target_mib.max(0.0).round() as u64);
    bar.set_position(f.reached_mib.max(0.0).round() as u64);
    bar.set_message(words(f));
}

#[cfg(test)]
mod tests {
    use super::*;
    use memstress_proto::v1::{ContainerMemory, PhaseProgress, RunParameters};

    fn status(rss_mib: u64, target_mib: u64, rate: f64) -> StatusResponse {
        StatusResponse {
            run_id: "r".into(),
            state: State::Building as i32,
            rss_bytes: rss_mib << 20,
            target_bytes: target_mib << 20,
            current_fill_rate_mb_per_second: rate,
            ..StatusResponse::default()
        }
    }

    #[test]
    fn fill_from_status() {
        let f = fill(&status(512, 1024, 256.0));
        assert_eq!(f.reached_mib, 512.0);
        assert_eq!(f.target_mib, 1024.0);
        assert_eq!(f.left, Some(Duration::from_secs(2)));
        assert_eq!(words(&f), "512.0 / 1024.0 MiB   50%  256.0 MiB/s  2s left");

        let mut s = status(100, 1024, 0.0);
        s.fill_rate_mb_per_second = 0.0;
        assert_eq!(fill(&s).left, None);
        s.fill_rate_mb_per_second = 10.0;
        assert_eq!(fill(&s).rate_mib_s, 10.0);

        // Container scope counts the working set; a profile's phase target wins.
        s.parameters = Some(RunParameters {
            scope: Scope::Container as i32,
            ..RunParameters::default()
        });
        s.container = Some(ContainerMemory {
            working_set_bytes: Some(300 << 20),
            ..ContainerMemory::default()
        });
        s.phase = Some(PhaseProgress {
            target_bytes: 600 << 20,
            index: 2,
            count: 3,
            ..PhaseProgress::default()
        });
        let f = fill(&s);
        assert_eq!((f.reached_mib, f.target_mib), (300.0, 600.0));
        assert_eq!(f.left, Some(Duration::from_secs(30)));

        // Past the target: no time left shown.
        assert_eq!(fill(&status(2048, 1024, 5.0)).left, None);
    }

    #[test]
    fn run_end_detection() {
        let mut s = status(1, 2, 0.0);
        assert!(building(&s, "r") && !ended(&s, "r"));
        s.state = State::Searching as i32;
        assert!(!building(&s, "r") && !ended(&s, "r"));
        s.state = State::Completed as i32;
        assert!(ended(&s, "r"));
        s.state = State::Building as i32;
        assert!(ended(&s, "other"));
    }
}
