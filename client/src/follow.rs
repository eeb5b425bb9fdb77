//! Which log entries `start --follow` prints, and when it stops.
//!
//! Kept pure (entry in, decision out) so the termination rules are tested without a server.

use memstress_proto::v1::{LogEntry, Operation};

/// How a followed run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunEnd {
    /// STRESS_TEST_COMPLETE: the run held its target for the whole duration.
    Completed,
    /// STRESS_TEST_STOPPED: someone stopped (or cleared) it.
    Stopped,
    /// STRESS_TEST_ERROR: the run failed; the client exits non-zero.
    Failed,
}

/// What to do with one streamed entry while following a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FollowAction {
    /// Belongs to the run (or reports missed entries): print it and keep going.
    Print,
    /// Another run's entry or one outside any run: ignore it.
    Skip,
    /// The run's final entry: print it, then stop following.
    PrintAndStop(RunEnd),
}

/// Decides what `start --follow` does with `entry`, given the id of the run it started.
///
/// LOG_ENTRIES_MISSED entries are always printed (they carry no run id, and a gap in the
/// history may hide this run's entries); other entries only when their run id matches.
pub(crate) fn decide(run_id: &str, entry: &LogEntry) -> FollowAction {
    let op = Operation::try_from(entry.operation).unwrap_or(Operation::Unspecified);
    if op == Operation::LogEntriesMissed {
        return FollowAction::Print;
    }
    if entry.run_id != run_id {
        return FollowAction::Skip;
    }
    match op {
        Operation::StressTestComplete => FollowAction::PrintAndStop(RunEnd::Completed),
        Operation::StressTestStopped => FollowAction::PrintAndStop(RunEnd::Stopped),
        Operation::StressTestError => FollowAction::PrintAndStop(RunEnd::Failed),
        _ => FollowAction::Print,
    }
}

/// Feeds entries through [`decide`] until one ends the run: the entries to print and how the run
/// ended (`None` if the entries ran out first, i.e. the stream ended early). The live path
/// calls [`decide`] per entry; this pins the sequence rules in tests.
#[cfg(test)]
pub(crate) fn replay<'a>(
    run_id: &str,
    entries: impl IntoIterator<Item = &'a LogEntry>,
) -> (Vec<&'a LogEntry>, Option<RunEnd>) {
    let mut printed = Vec::new();
    for entry in entries {
        match decide(run_id, entry) {
            FollowAction::Skip => {}
            FollowAction::Print => printed.push(entry),
            FollowAction::PrintAndStop(end) => {
                printed.push(entry);
                return (printed, Some(end));
            }
        }
    }
    (printed, None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn entry(seq: u64, run: &str, op: Operation) -> LogEntry {
        LogEntry {
            sequence: seq,
            timestamp_unix_ms: 1_000 * seq as i64,
            operation: op as i32,
            memory_mb: 10.0,
            message: format!("entry {seq}"),
            run_id: run.to_owned(),
            missed: 0,
            working_set_mb: None,
        }
    }

    #[test]
    fn single_entries() {
        use FollowAction::*;
        let me = "run-b";
        assert_eq!(
            decide(me, &entry(1, "run-a", Operation::StressTestStart)),
            Skip
        );
        assert_eq!(decide(me, &entry(2, "", Operation::MemoryCleared)), Skip);
        assert_eq!(
            decide(me, &entry(3, "run-b", Operation::StressTestStart)),
            Print
        );
        assert_eq!(decide(me, &entry(4, "run-b", Operation::Notice)), Print);
        assert_eq!(
            decide(me, &entry(0, "", Operation::LogEntriesMissed)),
            Print
        );
        assert_eq!(
            decide(me, &entry(5, "run-a", Operation::StressTestComplete)),
            Skip
        );
        assert_eq!(
            decide(me, &entry(5, "run-b", Operation::StressTestComplete)),
            PrintAndStop(RunEnd::Completed)
        );
        assert_eq!(
            decide(me, &entry(5, "run-b", Operation::StressTestStopped)),
            PrintAndStop(RunEnd::Stopped)
        );
        assert_eq!(
            decide(me, &entry(5, "run-b", Operation::StressTestError)),
            PrintAndStop(RunEnd::Failed)
        );
        // Phase ends are not run ends.
        assert_eq!(
            decide(me, &entry(6, "run-b", Operation::SearchTreeComplete)),
            Print
        );
        // An operation this client does not know yet is printed, not fatal.
        let mut unknown = entry(7, "run-b", Operation::Notice);
        unknown.operation = 99;
        assert_eq!(decide(me, &unknown), Print);
    }

    #[test]
    fn history_then_live_until_complete() {
        let entries = vec![
            entry(1, "run-a", Operation::StressTestStart),
            entry(2, "run-a", Operation::StressTestComplete),
            entry(0, "", Operation::LogEntriesMissed),
            entry(3, "", Operation::MemoryCleared),
            entry(4, "run-b", Operation::StressTestStart),
            entry(5, "run-b", Operation::BuildTreeStart),
            entry(6, "run-b", Operation::BuildTreeComplete),
            entry(7, "run-b", Operation::SearchTreeProgress),
            entry(8, "run-b", Operation::SearchTreeComplete),
            entry(9, "run-b", Operation::StressTestComplete),
            entry(10, "run-b", Operation::MemoryCleared),
        ];
        let (printed, end) = replay("run-b", &entries);
        let seqs: Vec<u64> = printed.iter().map(|e| e.sequence).collect();
        assert_eq!(seqs, vec![0, 4, 5, 6, 7, 8, 9]);
        assert_eq!(end, Some(RunEnd::Completed));
    }

    #[test]
    fn error_ends_the_run() {
        let entries = vec![
            entry(1, "r", Operation::StressTestStart),
            entry(2, "r", Operation::StressTestError),
            entry(3, "r", Operation::Notice),
        ];
        let (printed, end) = replay("r", &entries);
        assert_eq!(printed.len(), 2);
        assert_eq!(end, Some(RunEnd::Failed));
    }

    #[test]
    fn stream_ending_early_has_no_end() {
        let entries = vec![
            entry(1, "r", Operation::StressTestStart),
            entry(2, "other", Operation::StressTestStopped),
        ];
        let (printed, end) = replay("r", &entries);
        assert_eq!(printed.len(), 1);
        assert_eq!(end, None);
    }
}
