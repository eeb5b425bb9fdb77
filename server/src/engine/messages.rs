//! Every log text the engine writes. A client prints about 40 columns in front of each
//! message (time, operation, RSS), so progress texts stay within about 60 characters; sizes
//! are MiB; prose says "keep hot", "huge pages", "allow OOM", never the field names.

use super::mib;
use super::run_state::State;
use crate::cgroup::{BasisSource, MemoryBasis};
use crate::params::{Plan, PlannedPhase, RunParams, Scope, Target};
use crate::workload::{Counters, WorkloadKind};
use std::time::Duration;

/// What one hold operation is called (the rate limit counts these).
pub(crate) fn op_name(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::Tree => "searches",
        WorkloadKind::List => "walk steps",
        WorkloadKind::Hash => "lookups",
        WorkloadKind::Matrix => "block products",
    }
}

/// What the workload's items are called.
pub(crate) fn items_name(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::Tree | WorkloadKind::List => "nodes",
        WorkloadKind::Hash => "entries",
        WorkloadKind::Matrix => "blocks",
    }
}

fn scope_words(scope: Scope) -> &'static str {
    match scope {
        Scope::Process => "process RSS",
        Scope::Container => "container working set",
    }
}

/// "for 60 s" or "until stopped", after a verb.
fn hold_words(hold: Option<Duration>) -> String {
    hold.map_or_else(
        || "until stopped".to_string(),
        |d| format!("for {}", secs(d)),
    )
}

/// "60 s" or "until stopped", after "hold".
fn hold_noun(hold: Option<Duration>) -> String {
    hold.map_or_else(|| "until stopped".to_string(), secs)
}

/// Whole seconds in the largest unit that keeps them exact: "90 s", "5 min", "24 h".
fn secs(d: Duration) -> String {
    match d.as_secs() {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 120 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn rate_words(p: &RunParams) -> String {
    match p.search_rate {
        0 => format!("unthrottled {}", op_name(p.workload)),
        r => format!("{} {}/s", count(r as f64), op_name(p.workload)),
    }
}

/// A count or per-second rate, exact up to six digits, then in millions, billions, trillions
/// with one decimal (a matrix hold does hundreds of millions of multiply-adds a second; Status
/// has the exact number).
pub(crate) fn count(v: f64) -> String {
    let v = v.max(0.0);
    match v {
        v if v < 1e6 => format!("{v:.0}"),
        v if v < 1e9 => format!("{:.1}M", v / 1e6),
        v if v < 1e12 => format!("{:.1}G", v / 1e9),
        v => format!("{:.1}T", v / 1e12),
    }
}

fn target_words(t: Target, basis: &MemoryBasis) -> String {
    match t {
        Target::MemoryMb(mb) => format!("{mb} MiB"),
        Target::Percent(pc) => format!("{pc}% of {:.1} MiB", mib(basis.limit_bytes)),
    }
}

/// STRESS_TEST_START: what the run will do, then how, then who asked.
pub(crate) fn start(p: &RunParams, plan: &Plan, basis: &MemoryBasis, audit: &str) -> String {
    let what = if p.phases.is_empty() {
        let hold = plan.phases.first().and_then(|ph| ph.hold);
        format!(
            "target {} of {}, hold {}",
            target_words(p.target, basis),
            scope_words(p.scope),
            hold_noun(hold)
        )
    } else {
        format!(
            "{} phases {}, peak {:.1} MiB of {}",
            p.phases.len(),
            repeat_words(p.repeat),
            mib(plan.peak_bytes()),
            scope_words(p.scope)
        )
    };
    let ramp = if p.ramp_mb_per_second > 0.0 {
        format!("ramp {} MiB/s", p.ramp_mb_per_second)
    } else {
        "full speed".into()
    };
    let oom = if p.allow_oom && plan.peak_bytes() >= basis.limit_bytes {
        "; allow OOM: grows past the limit until the kernel OOM-kills stressd"
    } else {
        ""
    };
    format!(
        "{what}; limit {:.1} MiB ({}); {}, payload {} KiB, {ramp}, {}{}{}{oom}{audit}",
        mib(basis.limit_bytes),
        basis_source(basis.source),
        p.workload.name(),
        p.payload_size_kb,
        rate_words(p),
        if p.keep_hot { ", keep hot" } else { "" },
        if p.huge_pages { ", huge pages" } else { "" },
    )
}

/// Where the limit comes from, in a word or two (Status has the full detail).
fn basis_source(source: BasisSource) -> &'static str {
    match source {
        BasisSource::CgroupV2 => "cgroup v2",
        BasisSource::CgroupV1 => "cgroup v1",
        BasisSource::DownwardApi => "--memory-limit",
        BasisSource::HostTotal => "host memory, no limit",
    }
}

fn repeat_words(repeat: u32) -> String {
    match repeat {
        0 => "repeated until stopped".into(),
        1 => "once".into(),
        n => format!("{n} times"),
    }
}

/// PHASE_START: which phase of which repetition, and where it goes.
pub(crate) fn phase_start(
    index: usize,
    count: usize,
    rep: u32,
    repeat: u32,
    ph: &PlannedPhase,
) -> String {
    let reps = match repeat {
        0 => format!("rep {rep}"),
        n => format!("rep {rep}/{n}"),
    };
    format!(
        "phase {index}/{count}, {reps}: {} MiB, hold {}",
        short(mib(ph.target_bytes)),
        hold_noun(ph.hold)
    )
}

/// BUILD_TREE_START.
pub(crate) fn build_start(target: u64, from: u64) -> String {
    let verb = if from > target {
        "shrinking"
    } else {
        "building"
    };
    format!(
        "{verb} toward {} MiB from {} MiB",
        short(mib(target)),
        short(mib(from))
    )
}

/// A size or rate in MiB with one decimal, or none from 10,000 on (where it is noise and
/// would push a progress line past its width).
fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// BUILD_TREE_TARGET progress.
pub(crate) fn build_progress(
    now: u64,
    target: u64,
    items: u64,
    kind: WorkloadKind,
    rate: f64,
) -> String {
    format!(
        "{} of {} MiB ({:.0}%), {items} {}, {} MiB/s",
        short(mib(now)),
        short(mib(target)),
        100.0 * now as f64 / target.max(1) as f64,
        items_name(kind),
        rate_short(rate)
    )
}

/// BUILD_TREE_COMPLETE.
pub(crate) fn target_reached(
    reached: u64,
    took_ms: u64,
    rate: Option<f64>,
    c: &Counters,
    kind: WorkloadKind,
    shape: &str,
) -> String {
    let speed = rate.map_or_else(
        || "shrank".to_string(),
        |r| format!("{} MiB/s", rate_short(r)),
    );
    let took = if took_ms < 10_000 {
        format!("{took_ms} ms")
    } else {
        format!("{:.1} s", took_ms as f64 / 1000.0)
    };
    let line = format!(
        "reached {} MiB in {took} ({speed}); {} {}",
        short(mib(reached)),
        c.items,
        items_name(kind)
    );
    // The structure's own words only where the line still fits one client line (stressctl
    // leaves 55 columns for the message before it wraps).
    let with_shape = format!("{line}, {shape}");
    if shape.is_empty() || with_shape.chars().count() > 55 {
        line
    } else {
        with_shape
    }
}

/// A rate in MiB/s: whole numbers from 100 on (fill rates are hundreds to thousands).
fn rate_short(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// SEARCH_TREE_START.
pub(crate) fn hold_start(p: &RunParams, target: u64, hold: Option<Duration>) -> String {
    // Keep hot and the CONTAINER adjustment are in STRESS_TEST_START; this stays one short
    // line.
    let what = match p.scope {
        Scope::Process => "RSS",
        Scope::Container => "working set",
    };
    format!(
        "holding {} MiB {what} {}; {}",
        short(mib(target)),
        hold_words(hold),
        rate_words(p),
    )
}

/// SEARCH_TREE_PROGRESS.
pub(crate) fn hold_progress(
    activity: u64,
    rate: f64,
    kind: WorkloadKind,
    left: Option<Duration>,
) -> String {
    format!(
        "{} {}, {}/s{}",
        count(activity as f64),
        kind.activity_unit(),
        count(rate),
        left.map_or(String::new(), |d| format!(
            "; {:.0} s left",
            d.as_secs_f64().ceil()
        ))
    )
}

/// SEARCH_TREE_COMPLETE.
pub(crate) fn hold_complete(activity: u64, hits: u64, secs: f64, kind: WorkloadKind) -> String {
    let hits = match kind {
        WorkloadKind::Tree | WorkloadKind::Hash => format!(" ({} hits)", count(hits as f64)),
        WorkloadKind::List | WorkloadKind::Matrix => String::new(),
    };
    format!(
        "held: {} {}{hits} in {secs:.1} s, {}/s",
        count(activity as f64),
        kind.activity_unit(),
        count(activity as f64 / secs.max(1e-9))
    )
}

/// What a run holds, for its closing entry; peak never below current.
pub(crate) fn summary(c: &Counters, kind: WorkloadKind, peak_rss: u64, rss: u64) -> String {
    format!(
        "{:.1} MiB in {} {}, peak RSS {:.1} MiB",
        mib(c.payload_bytes),
        c.items,
        items_name(kind),
        mib(peak_rss.max(rss))
    )
}

/// STRESS_TEST_COMPLETE.
pub(crate) fn run_complete(summary: &str) -> String {
    format!("run complete: {summary}; held until Clear")
}

/// STRESS_TEST_STOPPED.
pub(crate) fn run_stopped(summary: &str, audit: &str) -> String {
    format!("run stopped: {summary}; held until Clear{audit}")
}

/// STRESS_TEST_ERROR at the end of a run.
pub(crate) fn run_failed(
    msg: &str,
    summary: &str,
    freed_items: u64,
    freed_bytes: u64,
    kind: WorkloadKind,
) -> String {
    format!(
        "run failed: {msg} (had {summary}); freed {freed_items} {} and {:.1} MiB",
        items_name(kind),
        mib(freed_bytes)
    )
}

/// MEMORY_CLEARED.
pub(crate) fn cleared(
    freed: (u64, u64, WorkloadKind),
    why: &str,
    ms: u64,
    before: u64,
    after: u64,
    audit: &str,
) -> String {
    let (bytes, items, kind) = freed;
    format!(
        "freed {items} {}, {:.1} MiB {why} in {ms} ms; RSS {:.1} -> {:.1} MiB{audit}",
        items_name(kind),
        mib(bytes),
        mib(before),
        mib(after)
    )
}

/// NOTICE: huge pages asked for where THP is off.
pub(crate) fn thp_unavailable(mode: &str) -> String {
    let mode = mode.trim();
    let what = if mode.is_empty() {
        "unavailable".to_string()
    } else {
        format!("'{mode}'")
    };
    format!("huge pages asked for, but THP is {what} here; using 4 KiB pages")
}

/// NOTICE: the kernel refused MADV_HUGEPAGE.
pub(crate) fn thp_refused() -> String {
    "the kernel refused huge pages; using 4 KiB pages".into()
}

/// NOTICE: the cgroup counted OOM kills during the run.
pub(crate) fn oom_kills(n: u64) -> String {
    format!("the cgroup counted {n} OOM kill(s) since this run started")
}

/// NOTICE: CONTAINER scope grew the workload back to the target.
pub(crate) fn container_grew(ws: u64, target: u64, added: u64) -> String {
    format!(
        "working set {} < {} MiB; grew {} MiB",
        short(mib(ws)),
        short(mib(target)),
        short(mib(added))
    )
}

/// NOTICE: CONTAINER scope gave memory back.
pub(crate) fn container_shrank(ws: u64, target: u64, freed: u64) -> String {
    format!(
        "working set {} > {} MiB; released {} MiB",
        short(mib(ws)),
        short(mib(target)),
        short(mib(freed))
    )
}

/// STRESS_TEST_ERROR when the worker thread could not start.
pub(crate) fn spawn_failed(e: &std::io::Error) -> String {
    format!("could not start the workload thread: {e}")
}

/// The entry of a start whose worker thread could not be made.
pub(crate) fn spawn_failed_entry(msg: &str) -> String {
    format!("run failed: {msg}")
}

/// Why a run failed when its worker panicked.
pub(crate) fn worker_panicked_error() -> String {
    "the workload thread panicked".into()
}

/// Stop without a run.
pub(crate) fn nothing_to_stop() -> String {
    "no run in progress".into()
}

/// Stop of an active run.
pub(crate) fn stopped_while(run_id: &str, was: State) -> String {
    format!("run {run_id} stopped while {}", was.name())
}

/// Stop of a run that had already ended.
pub(crate) fn already_ended(run_id: &str, was: State) -> String {
    format!("no run in progress (run {run_id} already {})", was.name())
}

/// Why memory was freed, in MEMORY_CLEARED.
pub(crate) const BEFORE_NEXT_RUN: &str = "before the next run";
/// Why memory was freed, in MEMORY_CLEARED.
pub(crate) const ON_CLEAR: &str = "on Clear";

/// STRESS_TEST_ERROR when the worker panicked.
pub(crate) fn worker_panicked() -> String {
    "the workload thread panicked; its memory was released".into()
}

/// Why a run failed when its measure cannot be read.
pub(crate) fn unreadable(scope: Scope) -> String {
    match scope {
        Scope::Process => "cannot read the process RSS (/proc/self/statm)".into(),
        Scope::Container => "cannot read the container working set (cgroup memory files)".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::params::Phase;

    const GIB: u64 = 1 << 30;

    fn params(kind: WorkloadKind) -> RunParams {
        RunParams {
            target: Target::Percent(37.5),
            duration_seconds: 86_400,
            log_interval_seconds: 5,
            payload_size_kb: 65_536,
            ramp_mb_per_second: 100_000.0,
            search_rate: 10_000_000,
            keep_hot: true,
            huge_pages: true,
            scope: Scope::Container,
            allow_oom: true,
            workload: kind,
            phases: Vec::new(),
            repeat: 1,
        }
    }

    /// Progress texts at their widest (terabytes, billions) still fit beside a client's
    /// 40-column prefix: about 60 columns, never more than 64.
    #[test]
    fn progress_texts_fit_in_about_60_columns() {
        let c = Counters {
            items: 99_999_999,
            payload_bytes: 4096 * GIB,
            slabs: 16_384,
        };
        for kind in WorkloadKind::ALL {
            let texts = [
                build_start(4096 * GIB, 4095 * GIB),
                build_progress(4095 * GIB, 4096 * GIB, c.items, kind, 20_000.0),
                hold_progress(
                    999_999_999_999,
                    9_999_999.0,
                    kind,
                    Some(Duration::from_secs(86_400)),
                ),
                phase_start(
                    64,
                    64,
                    10_000,
                    10_000,
                    &PlannedPhase {
                        target_bytes: 4096 * GIB,
                        hold: Some(Duration::from_secs(86_400)),
                        ramp_mb_per_second: 0.0,
                    },
                ),
                container_grew(4096 * GIB, 4096 * GIB, 4096 * GIB),
                target_reached(4096 * GIB, 999_999, Some(20_000.0), &c, kind, "height 99"),
                target_reached(4096 * GIB, 999_999, None, &c, kind, ""),
                hold_start(&params(kind), 512 << 20, Some(Duration::from_secs(86_400))),
                container_shrank(4096 * GIB, 4096 * GIB, 4096 * GIB),
            ];
            for t in texts {
                assert!(t.chars().count() <= 64, "{} chars: {t}", t.chars().count());
            }
        }
    }

    #[test]
    fn prose_has_no_field_names_and_says_mib() {
        let basis = MemoryBasis {
            limit_bytes: GIB,
            source: BasisSource::CgroupV2,
            detail: "memory.max".into(),
        };
        let mut p = params(WorkloadKind::Matrix);
        let plan = crate::params::plan(&p, &basis);
        let mut texts = vec![
            start(&p, &plan, &basis, " (by 127.0.0.1:1, credential admin)"),
            hold_start(&p, GIB, None),
            hold_start(&p, GIB, Some(Duration::from_secs(5))),
            thp_unavailable("always madvise [never]"),
            thp_refused(),
        ];
        p.phases = vec![Phase {
            target: Target::MemoryMb(100),
            hold_seconds: 0,
            ramp_mb_per_second: None,
        }];
        p.repeat = 0;
        texts.push(start(&p, &crate::params::plan(&p, &basis), &basis, ""));
        for t in texts {
            for bad in [
                "keep_hot",
                "huge_pages",
                "allow_oom",
                " MB",
                "for until",
                "hold until stopped",
            ] {
                assert!(!t.contains(bad), "{bad:?} in {t}");
            }
        }
    }

    #[test]
    fn single_target_start_says_target_hold_and_audit_last() {
        let basis = MemoryBasis {
            limit_bytes: 1024 << 20,
            source: BasisSource::CgroupV1,
            detail: "memory.limit_in_bytes".into(),
        };
        let mut p = params(WorkloadKind::Tree);
        p.target = Target::MemoryMb(512);
        p.duration_seconds = 0;
        p.allow_oom = false;
        let t = start(&p, &crate::params::plan(&p, &basis), &basis, " (by x)");
        assert!(
            t.starts_with(
                "target 512 MiB of container working set, hold until stopped; limit 1024.0 MiB (cgroup v1); tree"
            ),
            "{t}"
        );
        assert!(t.ends_with(" (by x)"), "{t}");
        assert!(t.contains("10.0M searches/s, keep hot, huge pages"), "{t}");
    }

    #[test]
    fn durations_use_the_largest_exact_unit() {
        let d = Duration::from_secs;
        assert_eq!(secs(d(0)), "0 s");
        assert_eq!(secs(d(90)), "90 s");
        assert_eq!(secs(d(125)), "125 s");
        assert_eq!(secs(d(300)), "5 min");
        assert_eq!(secs(d(5400)), "90 min");
        assert_eq!(secs(d(86_400)), "24 h");
    }

    #[test]
    fn counts_are_exact_to_six_digits_then_short() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(999_999.0), "999999");
        assert_eq!(count(1_000_000.0), "1.0M");
        assert_eq!(count(172_036_737.0), "172.0M");
        assert_eq!(count(2.5e9), "2.5G");
        assert_eq!(count(7e12), "7.0T");
        assert_eq!(count(-3.0), "0");
    }

    #[test]
    fn peak_is_never_below_current() {
        let c = Counters::default();
        let t = summary(&c, WorkloadKind::Tree, 100 << 20, 200 << 20);
        assert!(t.contains("peak RSS 200.0 MiB"), "{t}");
    }

    #[test]
    fn each_workload_names_its_items_and_hits_only_where_they_mean_something() {
        assert!(hold_complete(10, 5, 1.0, WorkloadKind::Tree).contains("(5 hits)"));
        assert!(hold_complete(10, 5, 1.0, WorkloadKind::Hash).contains("lookups (5 hits)"));
        assert!(!hold_complete(10, 10, 1.0, WorkloadKind::List).contains("hits"));
        assert_eq!(items_name(WorkloadKind::Matrix), "blocks");
        assert_eq!(op_name(WorkloadKind::Matrix), "block products");
    }
}
