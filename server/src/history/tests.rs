//! Tests of the `History` facade, each on its own database (in memory or in a temp dir).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::model::{
    CgroupIdentity, Checkpoint, Evidence, HistoryMode, NewRun, Outcome, RunEnd, RunRecord,
};
use super::*;
use crate::cgroup::{BasisSource, CgroupVersion, MemoryBasis};
use crate::engine::State;
use crate::params::{MIB, RunParams, Scope, Target};
use std::path::Path;

/// A cgroup v2 identity at "/" with this inode.
pub(crate) fn cgroup(inode: u64) -> CgroupIdentity {
    CgroupIdentity {
        version: CgroupVersion::V2,
        path: "/".to_owned(),
        inode,
    }
}

pub(super) fn params() -> RunParams {
    RunParams {
        target: Target::MemoryMb(512),
        duration_seconds: 60,
        log_interval_seconds: 5,
        payload_size_kb: 100,
        ramp_mb_per_second: 0.0,
        search_rate: 1000,
        keep_hot: false,
        huge_pages: false,
        scope: Scope::Process,
        allow_oom: false,
        workload: crate::params::WorkloadKind::Tree,
        phases: Vec::new(),
        repeat: 1,
    }
}

pub(super) fn basis() -> MemoryBasis {
    MemoryBasis {
        limit_bytes: 2048 * MIB,
        source: BasisSource::CgroupV2,
        detail: "/sys/fs/cgroup/memory.max".to_owned(),
    }
}

pub(super) fn new_run() -> NewRun {
    NewRun {
        params: params(),
        target_bytes: 512 * MIB,
        basis: basis(),
        started_at_ms: 1_700_000_000_000,
        oom_kills_at_start: Some(0),
    }
}

pub(super) fn checkpoint(rss_mib: u64, ws_mib: Option<u64>) -> Checkpoint {
    Checkpoint {
        taken_at_ms: 1_700_000_005_000,
        state: State::Building,
        rss_bytes: rss_mib * MIB,
        working_set_bytes: ws_mib.map(|m| m * MIB),
        nodes: rss_mib * 10,
        cgroup: Some(cgroup(4242)),
        oom_kills: Some(0),
    }
}

pub(super) fn end(outcome: Outcome) -> RunEnd {
    RunEnd {
        outcome,
        ended_at_ms: 1_700_000_060_000,
        peak_rss_bytes: 520 * MIB,
        peak_working_set_bytes: Some(530 * MIB),
        time_to_target_ms: Some(1500),
        fill_rate_mb_per_second: 341.3,
        searches: 60_000,
        oom_kills_at_end: Some(0),
        last_error: String::new(),
    }
}

/// A running record with a checkpoint, as stored after begin + checkpoint.
pub(crate) fn record(number: u64) -> RunRecord {
    let mut rec = new_record(&new_run());
    rec.number = number;
    rec.run_id = format!("run-{number}-abcdef");
    rec.last_checkpoint = Some(checkpoint(100, Some(110)));
    rec
}

pub(super) fn id(n: u64) -> String {
    format!("run-{n}-abcdef")
}

pub(super) fn durable(dir: &Path, limit: u64) -> HistoryConfig {
    HistoryConfig {
        state_dir: Some(dir.to_owned()),
        limit,
    }
}

pub(super) fn open(config: &HistoryConfig) -> Opened {
    History::open(config, &CurrentCgroup::default()).unwrap()
}

/// Begins and finishes `n` runs; returns their numbers.
pub(super) fn completed_runs(h: &History, n: usize) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let (number, _) = h.begin(&new_run(), id);
            h.finish(number, &end(Outcome::Completed));
            number
        })
        .collect()
}

pub(super) fn numbers(runs: &[RunRecord]) -> Vec<u64> {
    runs.iter().map(|r| r.number).collect()
}

pub(super) fn tally_of(h: &History, outcome: Outcome) -> u64 {
    h.tally()
        .snapshot()
        .runs
        .iter()
        .find(|(o, _)| *o == outcome)
        .map_or(0, |(_, n)| *n)
}

#[test]
fn history_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<History>();
}

#[test]
fn memory_mode_roundtrip() {
    let opened = open(&HistoryConfig::default());
    assert_eq!(opened.notices, vec![NO_STATE_DIR.to_owned()]);
    assert!(opened.recovered.is_empty());
    let h = opened.history;
    let st = h.status();
    assert_eq!(
        st.mode,
        HistoryMode::Memory {
            reason: NO_STATE_DIR.to_owned()
        }
    );
    assert_eq!((st.runs_kept, st.limit), (0, DEFAULT_LIMIT));
    assert_eq!(h.previous_run(), None);

    let (n, run_id) = h.begin(&new_run(), |n| format!("run-{n}-3fa2b1"));
    assert_eq!((n, run_id.as_str()), (1, "run-1-3fa2b1"));
    assert_eq!(h.status().runs_kept, 1);
    assert_eq!(h.get("1").unwrap().outcome, Outcome::Running);
    h.checkpoint(n, &checkpoint(300, Some(310)));
    h.finish(n, &end(Outcome::Stopped));

    let rec = h.get("run-1-3fa2b1").unwrap();
    assert_eq!(rec.outcome, Outcome::Stopped);
    assert_eq!(rec.peak_rss_bytes, 520 * MIB);
    assert_eq!(Some(&rec), h.previous_run().as_ref());
    assert_eq!(tally_of(&h, Outcome::Stopped), 1);
    assert_eq!(h.tally().snapshot().time_to_target.count, 0);
    assert!(h.take_notices().is_empty());
}

#[test]
fn durable_roundtrip_across_reopen_and_pruning() {
    let dir = tempfile::tempdir().unwrap();
    {
        let opened = open(&durable(dir.path(), 10));
        assert!(opened.notices.is_empty(), "{:?}", opened.notices);
        let path = dir.path().join("history.db").display().to_string();
        assert_eq!(opened.history.status().mode, HistoryMode::Durable { path });
        assert_eq!(completed_runs(&opened.history, 3), vec![1, 2, 3]);
    }
    {
        let h = open(&durable(dir.path(), 10)).history;
        assert_eq!(h.status().runs_kept, 3);
        assert_eq!(h.previous_run().map(|r| r.number), Some(3));
        assert_eq!(completed_runs(&h, 1), vec![4]);
    }
    // A lower limit prunes at open; numbers still never go back.
    let h = open(&durable(dir.path(), 2)).history;
    assert_eq!(h.status().runs_kept, 2);
    assert_eq!(numbers(&h.list(None, "").unwrap().0), vec![4, 3]);
    assert_eq!(completed_runs(&h, 2), vec![5, 6]);
    assert_eq!(numbers(&h.list(None, "").unwrap().0), vec![6, 5]);
    drop(h);
    let h = open(&durable(dir.path(), 2)).history;
    assert_eq!(completed_runs(&h, 1), vec![7]);
}

/// A run with every field away from its default: Percent target, flags set, integers just
/// below i64::MAX, non-ASCII text.
fn unusual_run() -> (NewRun, Checkpoint, RunEnd) {
    let near_max = i64::MAX as u64 - 1;
    let run = NewRun {
        params: RunParams {
            target: Target::Percent(37.5),
            duration_seconds: u32::MAX,
            log_interval_seconds: 7,
            payload_size_kb: 65_536,
            ramp_mb_per_second: 12.25,
            search_rate: near_max,
            keep_hot: true,
            huge_pages: true,
            scope: Scope::Container,
            allow_oom: true,
            workload: crate::params::WorkloadKind::Matrix,
            phases: vec![
                crate::params::Phase {
                    target: Target::MemoryMb(u64::MAX >> 12),
                    hold_seconds: 86_400,
                    ramp_mb_per_second: Some(0.125),
                },
                crate::params::Phase {
                    target: Target::Percent(95.0),
                    hold_seconds: 0,
                    ramp_mb_per_second: None,
                },
            ],
            repeat: 10_000,
        },
        target_bytes: near_max,
        basis: MemoryBasis {
            limit_bytes: near_max,
            source: BasisSource::DownwardApi,
            detail: "env MEMORY_LIMIT_BYTES ✓".to_owned(),
        },
        started_at_ms: -5,
        oom_kills_at_start: None,
    };
    let cp = Checkpoint {
        taken_at_ms: i64::MAX,
        state: State::Searching,
        rss_bytes: near_max,
        working_set_bytes: Some(near_max - 1),
        nodes: near_max,
        cgroup: Some(CgroupIdentity {
            version: CgroupVersion::V1,
            path: "/kubepods/burstable/pod1/abc".to_owned(),
            inode: near_max,
        }),
        oom_kills: Some(near_max),
    };
    let fin = RunEnd {
        outcome: Outcome::Failed,
        ended_at_ms: i64::MIN,
        peak_rss_bytes: 1,
        peak_working_set_bytes: None,
        time_to_target_ms: Some(near_max),
        fill_rate_mb_per_second: 0.125,
        searches: near_max,
        oom_kills_at_end: Some(3),
        last_error: "mmap: Cannot allocate memory (os error 12)".to_owned(),
    };
    (run, cp, fin)
}

#[test]
fn every_field_roundtrips() {
    let dir = tempfile::tempdir().unwrap();
    let (run, cp, fin) = unusual_run();
    let near_max = i64::MAX as u64 - 1;
    let (full, plain) = {
        let h = open(&durable(dir.path(), 10)).history;
        let (a, _) = h.begin(&run, id);
        h.checkpoint(a, &cp);
        h.finish(a, &fin);
        let full = h.previous_run().unwrap();
        // The other shape: MemoryMb target, no checkpoint, every Option None.
        let (b, _) = h.begin(
            &NewRun {
                oom_kills_at_start: None,
                ..new_run()
            },
            id,
        );
        let mut e = end(Outcome::Completed);
        (
            e.peak_working_set_bytes,
            e.time_to_target_ms,
            e.oom_kills_at_end,
        ) = (None, None, None);
        h.finish(b, &e);
        (full, h.previous_run().unwrap())
    };
    assert_eq!(full.peak_rss_bytes, near_max);
    assert_eq!(full.peak_working_set_bytes, Some(near_max - 1));
    assert_eq!(plain.last_checkpoint, None);
    let h = open(&durable(dir.path(), 10)).history;
    assert_eq!(h.get(&full.number.to_string()).unwrap(), full);
    assert_eq!(h.get(&plain.run_id).unwrap(), plain);
}

#[test]
fn values_past_i64_saturate() {
    let h = open(&HistoryConfig::default()).history;
    let mut run = new_run();
    run.target_bytes = u64::MAX;
    run.oom_kills_at_start = Some(u64::MAX - 1);
    let (n, _) = h.begin(&run, id);
    let rec = h.get(&n.to_string()).unwrap();
    assert_eq!(rec.target_bytes, i64::MAX as u64);
    assert_eq!(rec.oom_kills_at_start, Some(i64::MAX as u64));
}

#[test]
fn checkpoints_raise_peaks_and_late_ones_are_ignored() {
    let h = open(&HistoryConfig::default()).history;
    let (n, _) = h.begin(&new_run(), id);
    h.checkpoint(n, &checkpoint(100, None));
    h.checkpoint(n, &checkpoint(300, Some(320)));
    let mut low = checkpoint(200, Some(210));
    low.state = State::Searching;
    h.checkpoint(n, &low);
    let rec = h.get("1").unwrap();
    assert_eq!(
        (rec.peak_rss_bytes, rec.peak_working_set_bytes),
        (300 * MIB, Some(320 * MIB))
    );
    assert_eq!(rec.last_checkpoint, Some(low));

    let mut fin = end(Outcome::Completed);
    fin.peak_rss_bytes = 250 * MIB;
    h.finish(n, &fin);
    let closed = h.get("1").unwrap();
    assert_eq!(closed.peak_rss_bytes, 300 * MIB);
    h.checkpoint(n, &checkpoint(900, Some(900)));
    h.finish(n, &end(Outcome::Failed));
    assert_eq!(h.get("1").unwrap(), closed);
    assert_eq!(h.previous_run(), Some(closed));
    assert_eq!(tally_of(&h, Outcome::Completed), 1);
    assert_eq!(tally_of(&h, Outcome::Failed), 0);
}

#[test]
fn list_pages_newest_first() {
    let h = open(&HistoryConfig::default()).history;
    completed_runs(&h, 7);
    let (p1, c1) = h.list(Some(3), "").unwrap();
    assert_eq!((numbers(&p1), c1.as_str()), (vec![7, 6, 5], "5"));
    let (p2, c2) = h.list(Some(3), &c1).unwrap();
    assert_eq!((numbers(&p2), c2.as_str()), (vec![4, 3, 2], "2"));
    let (p3, c3) = h.list(Some(3), &c2).unwrap();
    assert_eq!((numbers(&p3), c3.as_str()), (vec![1], ""));
    // A page that ends exactly at the last run has no next cursor.
    let (p, c) = h.list(Some(7), "").unwrap();
    assert_eq!((p.len(), c.as_str()), (7, ""));
    assert_eq!(h.list(None, "").unwrap().0.len(), 7);
    assert_eq!(h.list(Some(1000), "1").unwrap().0.len(), 0);

    for (limit, cursor, field) in [
        (Some(0), "", "limit"),
        (Some(1001), "", "limit"),
        (None, "abc", "cursor"),
        (None, "-1", "cursor"),
    ] {
        match h.list(limit, cursor) {
            Err(e @ HistoryError::InvalidArgument { field: f, .. }) => {
                assert_eq!(f, field);
                let msg = e.to_string();
                assert!(msg.contains(field), "{msg}");
                if field == "limit" {
                    assert!(msg.contains("1 to 1000"), "{msg}");
                }
            }
            other => panic!("{limit:?} {cursor:?}: {other:?}"),
        }
    }
}

#[test]
fn get_by_number_and_run_id() {
    let h = open(&HistoryConfig::default()).history;
    let (n, run_id) = h.begin(&new_run(), |n| format!("run-{n}-3fa2b1"));
    assert_eq!(h.get("1").unwrap().run_id, run_id);
    assert_eq!(h.get(" run-1-3fa2b1 ").unwrap().number, n);
    for missing in ["2", "run-1-000000", "run-1"] {
        let err = h.get(missing).unwrap_err();
        assert!(matches!(err, HistoryError::NotFound { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(missing) && msg.contains("run-12-3fa2b1"),
            "{msg}"
        );
    }
    assert!(matches!(
        h.get(""),
        Err(HistoryError::InvalidArgument {
            field: "run_id",
            ..
        })
    ));
}

#[test]
fn prune_keeps_the_newest_and_running_runs() {
    let h = open(&HistoryConfig {
        state_dir: None,
        limit: 3,
    })
    .history;
    completed_runs(&h, 5);
    assert_eq!(h.status().runs_kept, 3);
    assert_eq!(numbers(&h.list(None, "").unwrap().0), vec![5, 4, 3]);

    let h = open(&HistoryConfig {
        state_dir: None,
        limit: 2,
    })
    .history;
    let (running, _) = h.begin(&new_run(), id);
    completed_runs(&h, 3);
    assert_eq!(numbers(&h.list(None, "").unwrap().0), vec![4, 1]);
    assert_eq!(running, 1);
    h.finish(running, &end(Outcome::Stopped));
    completed_runs(&h, 1);
    assert_eq!(numbers(&h.list(None, "").unwrap().0), vec![5, 4]);

    let h = open(&HistoryConfig {
        state_dir: None,
        limit: 0,
    })
    .history;
    completed_runs(&h, 2);
    assert_eq!((h.status().runs_kept, h.status().limit), (1, 1));
}

#[test]
fn open_closes_runs_left_running() {
    let dir = tempfile::tempdir().unwrap();
    {
        let h = open(&durable(dir.path(), 10)).history;
        completed_runs(&h, 1);
        let (a, _) = h.begin(&new_run(), id);
        h.checkpoint(a, &checkpoint(2040, Some(2041)));
        // Dropped without finish: what a SIGKILL leaves behind.
    }
    let current = CurrentCgroup {
        identity: Some(cgroup(4242)),
        oom_kills: Some(1),
    };
    let opened = History::open(&durable(dir.path(), 10), &current).unwrap();
    assert!(opened.notices.is_empty(), "{:?}", opened.notices);
    let [rec] = opened.recovered.as_slice() else {
        panic!("{:?}", opened.recovered);
    };
    assert_eq!(
        (rec.number, rec.outcome, rec.evidence),
        (2, Outcome::OomKilled, Some(Evidence::OomCounter))
    );
    assert!(rec.recovered);
    assert!(
        rec.outcome_message.contains("went 0 -> 1"),
        "{}",
        rec.outcome_message
    );
    assert_eq!(rec.oom_kills_at_end, Some(1));
    assert_eq!(rec.ended_at_ms, Some(1_700_000_005_000));
    let h = opened.history;
    assert_eq!(h.previous_run().as_ref(), Some(rec));
    assert_eq!(h.get("2").unwrap(), *rec);
    assert_eq!(tally_of(&h, Outcome::OomKilled), 1);
    assert_eq!(tally_of(&h, Outcome::Completed), 0);
    drop(h);
    // Closed once: the next start finds nothing to recover.
    assert!(
        History::open(&durable(dir.path(), 10), &current)
            .unwrap()
            .recovered
            .is_empty()
    );
}
