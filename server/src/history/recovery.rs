//! What became of the runs a previous process left open. A run still marked running at
//! startup was not ended by its process (this process has started none yet), so the process
//! died under it; the question is whether the OOM killer did it. Pure functions: the facade
//! feeds them the stored record and what this process reads from its cgroup now.
//!
//! The oom_kill counter only proves something when it is the same counter: same cgroup (path
//! and inode, since a restarted container gets a fresh cgroup at the same path whose counter
//! starts at 0) and not gone down. Without that, the last checkpoint's distance to the limit
//! is the best evidence there is, and the verdict says "likely".

use super::CurrentCgroup;
use super::model::{Checkpoint, Evidence, Outcome, RunRecord};
use crate::engine::State;
use crate::params::MIB;

/// Memory at or above this share of the limit (in %) counts as "at the limit".
const NEAR_LIMIT_PERCENT: u128 = 98;

/// Whether the checkpoint's oom_kill counter can be compared with the current one.
enum Counter {
    /// Same counter, risen from .0 to .1.
    Rose(u64, u64),
    /// Same counter, unchanged.
    Same(u64),
    /// Not comparable, and why.
    NotComparable(String),
}

/// Classifies a run found open at startup: (outcome, evidence, message, oom_kills_at_end).
/// The message is one sentence for the log, e.g. "previous run run-12-3fa2b1 was OOM-killed
/// at 2041.6 MiB working set (99.7 % of the 2048 MiB limit), 37.2 s after it started
/// (confirmed: the cgroup's oom_kill counter went 0 -> 1)". oom_kills_at_end is the current
/// counter when it is the run's own counter, else None.
pub fn classify(
    run: &RunRecord,
    current: &CurrentCgroup,
) -> (Outcome, Evidence, String, Option<u64>) {
    let Some(cp) = &run.last_checkpoint else {
        let message = format!(
            "previous run {} was killed (no checkpoint was written, so neither its memory at \
             the end nor the OOM killer's part is known)",
            run.run_id
        );
        return (Outcome::Killed, Evidence::None, message, None);
    };
    let (outcome, evidence, why, at_end) = match compare(cp, current) {
        Counter::Rose(a, b) => (
            Outcome::OomKilled,
            Evidence::OomCounter,
            format!("confirmed: the cgroup's oom_kill counter went {a} -> {b}"),
            Some(b),
        ),
        Counter::Same(a) => (
            Outcome::Killed,
            Evidence::OomCounterUnchanged,
            "the cgroup's oom_kill counter did not change: not the OOM killer".to_owned(),
            Some(a),
        ),
        Counter::NotComparable(why) => {
            let (outcome, evidence, text) = judge_without_counter(run, cp, &why);
            (outcome, evidence, text, None)
        }
    };
    let verb = if outcome == Outcome::OomKilled {
        "OOM-killed"
    } else {
        "killed"
    };
    let elapsed_ms = cp.taken_at_ms.saturating_sub(run.started_at_ms).max(0);
    let message = format!(
        "previous run {} was {verb} at {}, {:.1} s after it started ({why})",
        run.run_id,
        memory_phrase(cp, run.basis.limit_bytes),
        elapsed_ms as f64 / 1000.0,
    );
    (outcome, evidence, message, at_end)
}

/// The run closed with the verdict of [`classify`]: ended at its last checkpoint (the last
/// moment it is known to have been alive), peaks at least the checkpoint's, `recovered` set.
pub fn close(run: &RunRecord, current: &CurrentCgroup) -> RunRecord {
    let (outcome, evidence, message, at_end) = classify(run, current);
    let mut rec = run.clone();
    rec.outcome = outcome;
    rec.evidence = Some(evidence);
    rec.outcome_message = message;
    rec.oom_kills_at_end = at_end;
    rec.recovered = true;
    rec.ended_at_ms = Some(run.started_at_ms);
    if let Some(cp) = &run.last_checkpoint {
        rec.ended_at_ms = Some(cp.taken_at_ms.max(run.started_at_ms));
        rec.peak_rss_bytes = rec.peak_rss_bytes.max(cp.rss_bytes);
        rec.peak_working_set_bytes = match (rec.peak_working_set_bytes, cp.working_set_bytes) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    rec
}

fn compare(cp: &Checkpoint, current: &CurrentCgroup) -> Counter {
    let Some(then) = &cp.cgroup else {
        return Counter::NotComparable("no cgroup was recorded at the checkpoint".to_owned());
    };
    let Some(now) = &current.identity else {
        return Counter::NotComparable("this process's cgroup is unknown".to_owned());
    };
    if then != now {
        let detail = if then.version != now.version {
            format!(
                "cgroup {} then, {} now",
                then.version.as_str(),
                now.version.as_str()
            )
        } else if then.path != now.path {
            format!("{} then, {} now", then.path, now.path)
        } else {
            format!("inode {} then, {} now", then.inode, now.inode)
        };
        return Counter::NotComparable(format!(
            "the cgroup is a different one now ({detail}), e.g. a restarted container"
        ));
    }
    match (cp.oom_kills, current.oom_kills) {
        (Some(a), Some(b)) if b > a => Counter::Rose(a, b),
        (Some(a), Some(b)) if b == a => Counter::Same(a),
        (Some(a), Some(b)) => Counter::NotComparable(format!("the counter went down ({a} -> {b})")),
        _ => Counter::NotComparable("the counter was unreadable".to_owned()),
    }
}

/// The verdict when the counter proves nothing: near the limit, or growing past it on
/// purpose (allow_oom), reads as a likely OOM kill; anything else as a plain kill.
fn judge_without_counter(
    run: &RunRecord,
    cp: &Checkpoint,
    why: &str,
) -> (Outcome, Evidence, String) {
    let limit = run.basis.limit_bytes;
    let (memory, _) = memory_of(cp);
    if limit > 0 && u128::from(memory) * 100 >= u128::from(limit) * NEAR_LIMIT_PERCENT {
        return (
            Outcome::OomKilled,
            Evidence::NearLimit,
            format!(
                "likely: the last checkpoint was within 2 % of the limit; the oom_kill counter \
                 could not be compared: {why}"
            ),
        );
    }
    if limit > 0 && run.params.allow_oom && run.target_bytes >= limit && cp.state == State::Building
    {
        return (
            Outcome::OomKilled,
            Evidence::AllowOomGrowth,
            format!(
                "likely: it was still growing, with allow_oom, toward a {} MiB target at or past \
                 the limit; the oom_kill counter could not be compared: {why}",
                mib_text(run.target_bytes)
            ),
        );
    }
    (
        Outcome::Killed,
        Evidence::None,
        format!(
            "no sign of the OOM killer: not near the limit at the last checkpoint, and the \
             oom_kill counter could not be compared: {why}"
        ),
    )
}

/// The memory that counts against the limit: the working set, or RSS when it is unknown.
fn memory_of(cp: &Checkpoint) -> (u64, &'static str) {
    match cp.working_set_bytes {
        Some(ws) => (ws, "working set"),
        None => (cp.rss_bytes, "RSS"),
    }
}

/// "2041.6 MiB working set (99.7 % of the 2048 MiB limit)".
fn memory_phrase(cp: &Checkpoint, limit_bytes: u64) -> String {
    let (memory, what) = memory_of(cp);
    let mib = memory as f64 / MIB as f64;
    if limit_bytes == 0 {
        return format!("{mib:.1} MiB {what}");
    }
    let percent = memory as f64 / limit_bytes as f64 * 100.0;
    format!(
        "{mib:.1} MiB {what} ({percent:.1} % of the {} MiB limit)",
        mib_text(limit_bytes)
    )
}

/// Whole MiB without decimals, anything else with one.
fn mib_text(bytes: u64) -> String {
    if bytes.is_multiple_of(MIB) {
        format!("{}", bytes / MIB)
    } else {
        format!("{:.1}", bytes as f64 / MIB as f64)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::model::CgroupIdentity;
    use super::super::tests::{cgroup, record};
    use super::*;

    const LIMIT: u64 = 2048 * MIB;

    /// A run with a 2048 MiB limit, checkpointed 37.2 s in at `ws` bytes with counter `then`.
    fn run_at(ws: u64, cg: Option<CgroupIdentity>, then: Option<u64>) -> RunRecord {
        let mut run = record(12);
        run.run_id = "run-12-3fa2b1".to_owned();
        run.basis.limit_bytes = LIMIT;
        run.started_at_ms = 1_000_000;
        let cp = run.last_checkpoint.as_mut().unwrap();
        cp.taken_at_ms = 1_037_200;
        cp.working_set_bytes = Some(ws);
        cp.cgroup = cg;
        cp.oom_kills = then;
        cp.state = State::Searching;
        run
    }

    fn now(inode: u64, kills: Option<u64>) -> CurrentCgroup {
        CurrentCgroup {
            identity: Some(cgroup(inode)),
            oom_kills: kills,
        }
    }

    /// Name, run, current cgroup, expected outcome, evidence and oom_kills_at_end.
    type Case = (
        &'static str,
        RunRecord,
        CurrentCgroup,
        Outcome,
        Evidence,
        Option<u64>,
    );

    const AT_LIMIT: u64 = 2_140_773_990; // 2041.6 MiB, 99.7 %
    const MIDWAY: u64 = 851_758_285; // 812.3 MiB, 39.7 %

    #[test]
    fn classification_table() {
        let cases: Vec<Case> = vec![
            (
                "confirmed",
                run_at(AT_LIMIT, Some(cgroup(7)), Some(0)),
                now(7, Some(1)),
                Outcome::OomKilled,
                Evidence::OomCounter,
                Some(1),
            ),
            (
                "unchanged",
                run_at(MIDWAY, Some(cgroup(7)), Some(2)),
                now(7, Some(2)),
                Outcome::Killed,
                Evidence::OomCounterUnchanged,
                Some(2),
            ),
            (
                "near limit, new inode",
                run_at(AT_LIMIT, Some(cgroup(7)), Some(0)),
                now(8, Some(0)),
                Outcome::OomKilled,
                Evidence::NearLimit,
                None,
            ),
            (
                "midway, new inode",
                run_at(MIDWAY, Some(cgroup(7)), Some(0)),
                now(8, Some(5)),
                Outcome::Killed,
                Evidence::None,
                None,
            ),
            (
                "counter down",
                run_at(MIDWAY, Some(cgroup(7)), Some(3)),
                now(7, Some(1)),
                Outcome::Killed,
                Evidence::None,
                None,
            ),
            (
                "counter down near limit",
                run_at(AT_LIMIT, Some(cgroup(7)), Some(3)),
                now(7, Some(1)),
                Outcome::OomKilled,
                Evidence::NearLimit,
                None,
            ),
            (
                "unreadable now",
                run_at(MIDWAY, Some(cgroup(7)), Some(0)),
                now(7, None),
                Outcome::Killed,
                Evidence::None,
                None,
            ),
            (
                "no cgroup at checkpoint",
                run_at(AT_LIMIT, None, None),
                now(7, Some(1)),
                Outcome::OomKilled,
                Evidence::NearLimit,
                None,
            ),
        ];
        for (name, run, current, outcome, evidence, at_end) in cases {
            let (o, e, msg, end) = classify(&run, &current);
            assert_eq!((o, e, end), (outcome, evidence, at_end), "{name}: {msg}");
            assert!(
                msg.starts_with("previous run run-12-3fa2b1 was "),
                "{name}: {msg}"
            );
        }
    }

    #[test]
    fn exact_messages() {
        let run = run_at(AT_LIMIT, Some(cgroup(7)), Some(0));
        let (.., msg, _) = classify(&run, &now(7, Some(1)));
        assert_eq!(
            msg,
            "previous run run-12-3fa2b1 was OOM-killed at 2041.6 MiB working set (99.7 % of the \
             2048 MiB limit), 37.2 s after it started (confirmed: the cgroup's oom_kill counter \
             went 0 -> 1)"
        );
        let mut run = run_at(MIDWAY, Some(cgroup(7)), Some(0));
        run.started_at_ms = 1_033_100;
        let (.., msg, _) = classify(&run, &now(7, Some(0)));
        assert_eq!(
            msg,
            "previous run run-12-3fa2b1 was killed at 812.3 MiB working set (39.7 % of the 2048 \
             MiB limit), 4.1 s after it started (the cgroup's oom_kill counter did not change: \
             not the OOM killer)"
        );
        let (.., msg, _) = classify(&run, &now(9, Some(0)));
        assert!(msg.contains("(no sign of the OOM killer: "), "{msg}");
        assert!(msg.contains("inode 7 then, 9 now"), "{msg}");
    }

    #[test]
    fn rss_when_working_set_unknown_and_odd_limit() {
        let mut run = run_at(0, None, None);
        run.basis.limit_bytes = 1536 * MIB + MIB / 2;
        let cp = run.last_checkpoint.as_mut().unwrap();
        cp.working_set_bytes = None;
        cp.rss_bytes = 1536 * MIB;
        let (o, e, msg, _) = classify(&run, &CurrentCgroup::default());
        assert_eq!((o, e), (Outcome::OomKilled, Evidence::NearLimit));
        assert!(
            msg.contains("at 1536.0 MiB RSS (100.0 % of the 1536.5 MiB limit)"),
            "{msg}"
        );
        assert!(
            msg.contains("no cgroup was recorded at the checkpoint"),
            "{msg}"
        );
    }

    #[test]
    fn allow_oom_growth() {
        let mut run = run_at(MIDWAY, Some(cgroup(7)), Some(0));
        run.params.allow_oom = true;
        run.target_bytes = 3 * LIMIT;
        run.last_checkpoint.as_mut().unwrap().state = State::Building;
        let (o, e, msg, _) = classify(&run, &now(8, Some(0)));
        assert_eq!(
            (o, e),
            (Outcome::OomKilled, Evidence::AllowOomGrowth),
            "{msg}"
        );
        assert!(msg.contains("6144 MiB target"), "{msg}");
        // Holding, not growing: nothing points to the OOM killer.
        run.last_checkpoint.as_mut().unwrap().state = State::Searching;
        assert_eq!(classify(&run, &now(8, Some(0))).1, Evidence::None);
        // A comparable counter beats the guess.
        run.last_checkpoint.as_mut().unwrap().state = State::Building;
        assert_eq!(
            classify(&run, &now(7, Some(0))).1,
            Evidence::OomCounterUnchanged
        );
    }

    #[test]
    fn no_checkpoint() {
        let mut run = record(3);
        run.last_checkpoint = None;
        let (o, e, msg, end) = classify(&run, &now(7, Some(4)));
        assert_eq!((o, e, end), (Outcome::Killed, Evidence::None, None));
        assert!(msg.contains("no checkpoint was written"), "{msg}");
        let closed = close(&run, &now(7, Some(4)));
        assert_eq!(closed.ended_at_ms, Some(run.started_at_ms));
        assert!(closed.recovered);
    }

    #[test]
    fn close_raises_peaks_and_ends_at_checkpoint() {
        let mut run = run_at(AT_LIMIT, Some(cgroup(7)), Some(0));
        run.peak_rss_bytes = 5;
        run.peak_working_set_bytes = None;
        let closed = close(&run, &now(7, Some(1)));
        assert_eq!(closed.outcome, Outcome::OomKilled);
        assert_eq!(closed.evidence, Some(Evidence::OomCounter));
        assert_eq!(closed.ended_at_ms, Some(1_037_200));
        assert_eq!(closed.peak_working_set_bytes, Some(AT_LIMIT));
        assert_eq!(
            closed.peak_rss_bytes,
            run.last_checkpoint.as_ref().unwrap().rss_bytes
        );
        assert_eq!(closed.oom_kills_at_end, Some(1));
        assert!(closed.recovered);
    }
}
