//! Run history through the fake: `history` (table, paging, JSON, cursor), `history RUN_ID`,
//! NOT_FOUND, and the previous-run and history lines of `status`.

use super::*;

/// A recorded run numbered `n` ("run-N-abcdef"), completed unless changed.
fn record(n: u64, outcome: Outcome, evidence: Evidence) -> RunRecord {
    let started = 1_795_759_000_000 + n as i64 * 100_000;
    RunRecord {
        number: n,
        run_id: format!("run-{n}-abcdef"),
        parameters: Some(RunParameters {
            memory_mb: Some(1024),
            duration_seconds: 60,
            log_interval_seconds: 5,
            payload_size_kb: 100,
            search_rate: 1000,
            ..RunParameters::default()
        }),
        target_bytes: 1 << 30,
        basis: Some(MemoryBasis {
            limit_bytes: 2 << 30,
            source: BasisSource::CgroupV2 as i32,
            detail: "/sys/fs/cgroup/memory.max".into(),
        }),
        started_at_unix_ms: started,
        ended_at_unix_ms: (outcome != Outcome::Running).then_some(started + 61_000),
        outcome: outcome as i32,
        evidence: evidence as i32,
        peak_rss_bytes: 1030 << 20,
        peak_working_set_bytes: Some(1040 << 20),
        time_to_target_ms: Some(812),
        fill_rate_mb_per_second: 1261.1,
        searches: 60_000,
        oom_kills_at_start: Some(0),
        oom_kills_at_end: Some(0),
        ..RunRecord::default()
    }
}

/// Seven runs, newest first: one of every outcome, the OOM kills recovered after a restart.
fn canned_runs() -> Vec<RunRecord> {
    let mut oom = record(6, Outcome::OomKilled, Evidence::OomCounter);
    oom.outcome_message = "OOM-killed at 2041.6 MiB working set (confirmed)".into();
    oom.target_bytes = 4 << 30;
    oom.time_to_target_ms = None;
    oom.peak_rss_bytes = 2040 << 20;
    oom.peak_working_set_bytes = Some(2041 << 20);
    oom.oom_kills_at_end = Some(1);
    oom.recovered = true;
    oom.last_checkpoint = Some(Checkpoint {
        taken_at_unix_ms: oom.started_at_unix_ms + 37_200,
        state: State::Building as i32,
        rss_bytes: 2039 << 20,
        working_set_bytes: Some(2041 << 20),
        nodes: 20_890,
        cgroup_path: "/kubepods/pod1/c1".into(),
        cgroup_version: "v2".into(),
        oom_kills: Some(0),
    });
    let mut likely = record(5, Outcome::OomKilled, Evidence::NearLimit);
    likely.recovered = true;
    let mut failed = record(3, Outcome::Failed, Evidence::Unspecified);
    failed.last_error = "allocation failed".into();
    vec![
        record(7, Outcome::Running, Evidence::Unspecified),
        oom,
        likely,
        record(4, Outcome::Killed, Evidence::OomCounterUnchanged),
        failed,
        record(2, Outcome::Stopped, Evidence::Unspecified),
        record(1, Outcome::Completed, Evidence::Unspecified),
    ]
}

/// Rows of a `history` table (the lines after the header that name a run).
fn table_ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("run-"))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_table_pages_until_the_limit() {
    let fake = Fake {
        runs: canned_runs(),
        max_page: 2,
        ..Fake::default()
    };
    let requests = fake.list_requests.clone();
    let addr = serve(fake, true).await;

    let r = stressctl(&addr, &["history", "--limit", "5"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("ID "), "{}", r.stdout);
    for col in [
        "STARTED",
        "TARGET",
        "PEAK RSS",
        "PEAK WS",
        "TO TARGET",
        "OUTCOME",
    ] {
        assert!(lines[0].contains(col), "{}", r.stdout);
    }
    assert_eq!(
        table_ids(&r.stdout),
        [
            "run-7-abcdef",
            "run-6-abcdef",
            "run-5-abcdef",
            "run-4-abcdef",
            "run-3-abcdef"
        ]
    );
    assert!(lines[1].ends_with("  running"), "{}", r.stdout);
    assert!(
        lines[2].ends_with("  OOM-killed (confirmed)"),
        "{}",
        r.stdout
    );
    assert!(
        lines[2].contains("4096.0 MiB  2040.0 MiB  2041.0 MiB"),
        "{}",
        r.stdout
    );
    assert!(lines[3].ends_with("  OOM-killed (likely)"), "{}", r.stdout);
    assert!(lines[3].contains("812 ms"), "{}", r.stdout);
    assert!(lines[4].ends_with("  killed"), "{}", r.stdout);
    assert!(lines[5].ends_with("  failed"), "{}", r.stdout);
    assert!(lines[1].contains("2026-11-"), "{}", r.stdout);
    assert_eq!(
        lines[6],
        "(older runs are kept: --limit N or --all lists more)"
    );
    let sent: Vec<(Option<u32>, String)> = requests
        .lock()
        .unwrap()
        .drain(..)
        .map(|r| (r.limit, r.cursor))
        .collect();
    assert_eq!(
        sent,
        [
            (Some(5), String::new()),
            (Some(3), "6".into()),
            (Some(1), "4".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_all_and_default_limit() {
    let fake = Fake {
        runs: canned_runs(),
        max_page: 2,
        ..Fake::default()
    };
    let requests = fake.list_requests.clone();
    let addr = serve(fake, true).await;

    let r = stressctl(&addr, &["history", "--all"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(table_ids(&r.stdout).len(), 7, "{}", r.stdout);
    assert!(r.stdout.lines().last().unwrap().ends_with("  completed"));
    let sent = std::mem::take(&mut *requests.lock().unwrap());
    assert_eq!(sent.len(), 4);
    assert!(sent.iter().all(|r| r.limit == Some(1000)));
    assert_eq!(sent[3].cursor, "2");

    // Default: up to 20, which this server holds fewer than.
    let r = stressctl(&addr, &["history"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(table_ids(&r.stdout).len(), 7);
    assert!(!r.stdout.contains("older runs"), "{}", r.stdout);
    let sent = std::mem::take(&mut *requests.lock().unwrap());
    assert_eq!(sent[0].limit, Some(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_json_is_one_document() {
    let fake = Fake {
        runs: canned_runs(),
        max_page: 2,
        ..Fake::default()
    };
    let requests = fake.list_requests.clone();
    let addr = serve(fake, true).await;
    let r = stressctl(&addr, &["-o", "json", "history", "--limit", "3"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 2);
    assert_eq!(v["next_cursor"], "5");
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0]["run_id"], "run-7-abcdef");
    assert_eq!(runs[0]["outcome"], "OUTCOME_RUNNING");
    assert_eq!(runs[0]["ended_at_unix_ms"], serde_json::Value::Null);
    assert_eq!(runs[1]["number"], 6);
    assert_eq!(runs[1]["outcome"], "OUTCOME_OOM_KILLED");
    assert_eq!(runs[1]["evidence"], "EVIDENCE_OOM_COUNTER");
    assert_eq!(runs[1]["peak_rss_bytes"], 2040u64 << 20);
    assert_eq!(runs[1]["time_to_target_ms"], serde_json::Value::Null);
    assert_eq!(runs[1]["recovered"], true);
    assert_eq!(runs[1]["last_checkpoint"]["state"], "STATE_BUILDING");
    assert_eq!(runs[2]["evidence"], "EVIDENCE_NEAR_LIMIT");
    assert_eq!(runs[2]["time_to_target_ms"], 812);
    assert!(runs[2]["started_at_unix_ms"].is_i64());

    // The cursor continues where the listing stopped.
    requests.lock().unwrap().clear();
    let r = stressctl(&addr, &["history", "-o", "json", "--cursor", "5", "--all"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let numbers: Vec<u64> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [4, 3, 2, 1]);
    assert_eq!(v["next_cursor"], "");
    assert_eq!(requests.lock().unwrap()[0].cursor, "5");

    let r = stressctl(&addr, &["-o", "json", "history"]).await;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 7);
    assert_eq!(v["next_cursor"], "");

    let empty = serve(Fake::default(), true).await;
    let r = stressctl(&empty, &["history"]).await;
    assert_eq!((r.code, r.stdout.as_str()), (0, "No runs recorded.\n"));
    let r = stressctl(&empty, &["history", "-o", "json"]).await;
    assert_eq!(r.stdout, "{\"next_cursor\":\"\",\"runs\":[]}\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_one_run_in_full() {
    let addr = serve(
        Fake {
            runs: canned_runs(),
            ..Fake::default()
        },
        true,
    )
    .await;
    let r = stressctl(&addr, &["history", "run-6-abcdef"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    for want in [
        "run              run-6-abcdef (number 6)\n",
        "outcome          OOM-killed (confirmed)\n",
        "outcome message  OOM-killed at 2041.6 MiB working set (confirmed)\n",
        "evidence         the cgroup's oom_kill counter rose (confirmed)\n",
        "recovered        yes",
        "target           4096.0 MiB (1024 MiB requested)\n",
        "basis            2048.0 MiB from cgroup v2 (/sys/fs/cgroup/memory.max)\n",
        "peak rss         2040.0 MiB\n",
        "peak working set 2041.0 MiB\n",
        "time to target   -\n",
        "oom kills        0 at start, 1 at end\n",
        "\nparameters\n  workload       tree\n  duration       1m 00s\n",
        "\nlast checkpoint\n  taken          ",
        "  state          BUILDING\n",
        "  nodes          20,890\n",
        "  cgroup         v2 /kubepods/pod1/c1\n",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?} in\n{}", r.stdout);
    }

    // By number, as JSON: every RunRecord field.
    let r = stressctl(&addr, &["history", "3", "--output", "json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 20);
    assert_eq!(v["run_id"], "run-3-abcdef");
    assert_eq!(v["outcome"], "OUTCOME_FAILED");
    assert_eq!(v["evidence"], "EVIDENCE_UNSPECIFIED");
    assert_eq!(v["last_error"], "allocation failed");
    assert_eq!(v["target_bytes"], 1u64 << 30);
    assert_eq!(v["basis"]["source"], "BASIS_SOURCE_CGROUP_V2");
    assert_eq!(v["parameters"]["memory_mb"], 1024);
    assert_eq!(v["last_checkpoint"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_unknown_run_is_a_refusal_exit_1() {
    let addr = serve(
        Fake {
            runs: canned_runs(),
            ..Fake::default()
        },
        true,
    )
    .await;
    for output in ["text", "json"] {
        let r = stressctl(&addr, &["history", "run-99-zzzzzz", "-o", output]).await;
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_eq!(r.stdout, "");
        assert_eq!(
            r.stderr,
            "error: no run \"run-99-zzzzzz\" in the history (unknown or pruned) [NOT_FOUND]\n"
        );
    }
    // A refused ListRuns is a refusal too (the fake refuses limits over 1000 like stressd; the
    // client never sends one, so provoke it with a bad cursor).
    let r = stressctl(&addr, &["history", "--cursor", "not-a-number"]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("bad cursor"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_previous_run_and_history() {
    let addr = serve(
        Fake {
            runs: canned_runs(),
            ..Fake::default()
        },
        true,
    )
    .await;
    let r = stressctl(&addr, &["status"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("\nprevious run     run-6-abcdef OOM-killed (confirmed), ended 2026-"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("\n  outcome        OOM-killed at 2041.6 MiB working set (confirmed)\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("\n  peak           2040.0 MiB RSS, 2041.0 MiB working set\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.ends_with(
            "\nhistory          durable (/var/lib/stressd/runs.db), 7 of 1,000 runs kept\n"
        ),
        "{}",
        r.stdout
    );

    let r = stressctl(&addr, &["status", "-o", "json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let prev = &v["previous_run"];
    assert_eq!(prev.as_object().unwrap().len(), 20);
    assert_eq!(prev["run_id"], "run-6-abcdef");
    assert_eq!(prev["outcome"], "OUTCOME_OOM_KILLED");
    assert_eq!(prev["evidence"], "EVIDENCE_OOM_COUNTER");
    assert_eq!(prev["last_checkpoint"]["nodes"], 20_890);
    assert_eq!(v["history"]["mode"], "HISTORY_MODE_DURABLE");
    assert_eq!(v["history"]["path"], "/var/lib/stressd/runs.db");
    assert_eq!(v["history"]["runs_kept"], 7);
    assert_eq!(v["history"]["limit"], 1000);

    // A server with no finished run yet.
    let addr = serve(Fake::default(), true).await;
    let r = stressctl(&addr, &["status"]).await;
    assert!(r.stdout.contains("\nprevious run     -\n"), "{}", r.stdout);
    let r = stressctl(&addr, &["status", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["previous_run"], serde_json::Value::Null);
}
