//! End-to-end tests of the `stressctl` binary against a scripted in-process fake of stressd:
//! exit codes, error lines, `--follow` filtering and termination, JSON lines, health, run
//! history (paging, one run in full, NOT_FOUND).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::stressctl;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use memstress_proto::v1::stress_service_server::{StressService, StressServiceServer};
use memstress_proto::v1::{
    BasisSource, Checkpoint, ClearRequest, ClearResponse, Evidence, GetRunRequest, HistoryMode,
    HistoryStatus, ListRunsRequest, ListRunsResponse, LogEntry, MemoryBasis, Operation, Outcome,
    RunParameters, RunRecord, StartRequest, StartResponse, State, StatusRequest, StatusResponse,
    StopRequest, StopResponse, WatchLogsRequest,
};
use tokio_stream::Stream;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// What the fake answers.
#[derive(Clone, Default)]
struct Fake {
    /// Entries WatchLogs sends (all of them, whatever `from_sequence` says).
    entries: Vec<LogEntry>,
    /// Keep the stream open after the entries (a live server) instead of ending it.
    hold_open: bool,
    /// Refuse Start with this status.
    start_error: Option<(tonic::Code, String)>,
    /// Delay before answering Status.
    status_delay: Duration,
    /// The last Start request received.
    last_start: Arc<Mutex<Option<StartRequest>>>,
    /// The last WatchLogs request received.
    last_watch: Arc<Mutex<Option<WatchLogsRequest>>>,
    /// Recorded runs, newest first (ListRuns, GetRun, Status's previous_run).
    runs: Vec<RunRecord>,
    /// Most runs ListRuns puts on a page whatever the request asks (0: as asked).
    max_page: u32,
    /// Every ListRuns request received, in order.
    list_requests: Arc<Mutex<Vec<ListRunsRequest>>>,
}

// A folder of its own so cargo does not build it as a separate test binary.
#[path = "fake_server/history.rs"]
mod history;

type LogStream = Pin<Box<dyn Stream<Item = Result<LogEntry, Status>> + Send>>;

#[tonic::async_trait]
impl StressService for Fake {
    async fn start(
        &self,
        request: Request<StartRequest>,
    ) -> Result<Response<StartResponse>, Status> {
        *self.last_start.lock().unwrap() = Some(request.into_inner());
        if let Some((code, msg)) = &self.start_error {
            return Err(Status::new(*code, msg.clone()));
        }
        Ok(Response::new(StartResponse {
            run_id: "run-2".into(),
            target_bytes: 1 << 30,
            phase_target_bytes: vec![1 << 30],
            basis: Some(MemoryBasis {
                limit_bytes: 4 << 30,
                source: BasisSource::CgroupV2 as i32,
                detail: "/sys/fs/cgroup/memory.max".into(),
            }),
            parameters: Some(RunParameters {
                memory_mb: Some(1024),
                duration_seconds: 120,
                log_interval_seconds: 5,
                payload_size_kb: 100,
                search_rate: 1000,
                ..RunParameters::default()
            }),
            previous_run_released_bytes: 0,
        }))
    }

    async fn stop(&self, _: Request<StopRequest>) -> Result<Response<StopResponse>, Status> {
        Ok(Response::new(StopResponse {
            state: State::Idle as i32,
            stopped: false,
            run_id: String::new(),
            message: "no run in progress".into(),
        }))
    }

    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        tokio::time::sleep(self.status_delay).await;
        Ok(Response::new(StatusResponse {
            state: State::Searching as i32,
            run_id: "run-2".into(),
            target_bytes: 1 << 30,
            remaining_ms: Some(55_000),
            previous_run: self
                .runs
                .iter()
                .find(|r| r.outcome != Outcome::Running as i32)
                .cloned(),
            history: Some(HistoryStatus {
                mode: HistoryMode::Durable as i32,
                path: "/var/lib/stressd/runs.db".into(),
                reason: String::new(),
                runs_kept: self.runs.len() as u64,
                limit: 1000,
            }),
            ..StatusResponse::default()
        }))
    }

    async fn clear(&self, _: Request<ClearRequest>) -> Result<Response<ClearResponse>, Status> {
        Ok(Response::new(ClearResponse {
            released_bytes: 1 << 30,
            nodes_released: 10_486,
            duration_ms: 15,
            ..ClearResponse::default()
        }))
    }

    type WatchLogsStream = LogStream;

    async fn watch_logs(
        &self,
        request: Request<WatchLogsRequest>,
    ) -> Result<Response<LogStream>, Status> {
        *self.last_watch.lock().unwrap() = Some(request.into_inner());
        let entries = tokio_stream::iter(self.entries.clone().into_iter().map(Ok));
        if self.hold_open {
            Ok(Response::new(Box::pin(
                entries.chain(tokio_stream::pending()),
            )))
        } else {
            Ok(Response::new(Box::pin(entries)))
        }
    }

    /// Pages like stressd: newest first, the cursor is the number of the last run sent.
    async fn list_runs(
        &self,
        request: Request<ListRunsRequest>,
    ) -> Result<Response<ListRunsResponse>, Status> {
        let req = request.into_inner();
        self.list_requests.lock().unwrap().push(req.clone());
        let limit = req.limit.unwrap_or(50);
        if !(1..=1000).contains(&limit) {
            return Err(Status::invalid_argument(format!(
                "limit {limit} is out of range 1..=1000"
            )));
        }
        let below = if req.cursor.is_empty() {
            u64::MAX
        } else {
            req.cursor
                .parse::<u64>()
                .map_err(|_| Status::invalid_argument("bad cursor"))?
        };
        let size = if self.max_page > 0 {
            limit.min(self.max_page)
        } else {
            limit
        };
        let older: Vec<&RunRecord> = self.runs.iter().filter(|r| r.number < below).collect();
        let runs: Vec<RunRecord> = older
            .iter()
            .take(size as usize)
            .map(|r| (*r).clone())
            .collect();
        let next_cursor = if older.len() > runs.len() {
            runs.last()
                .map(|r| r.number.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListRunsResponse { runs, next_cursor }))
    }

    async fn get_run(
        &self,
        request: Request<GetRunRequest>,
    ) -> Result<Response<RunRecord>, Status> {
        let id = request.into_inner().run_id;
        self.runs
            .iter()
            .find(|r| r.run_id == id || r.number.to_string() == id)
            .cloned()
            .map(Response::new)
            .ok_or_else(|| {
                Status::not_found(format!("no run {id:?} in the history (unknown or pruned)"))
            })
    }
}

/// Serves `fake` (plus a health service) on a free port; returns "127.0.0.1:PORT".
async fn serve(fake: Fake, stress_serving: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (reporter, health) = tonic_health::server::health_reporter();
    if stress_serving {
        reporter.set_serving::<StressServiceServer<Fake>>().await;
    } else {
        reporter
            .set_not_serving::<StressServiceServer<Fake>>()
            .await;
    }
    tokio::spawn(async move {
        // Keep the reporter alive as long as the server.
        let _reporter = reporter;
        tonic::transport::Server::builder()
            .add_service(health)
            .add_service(StressServiceServer::new(fake))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    format!("127.0.0.1:{}", addr.port())
}

fn entry(seq: u64, run: &str, op: Operation, msg: &str) -> LogEntry {
    LogEntry {
        sequence: seq,
        timestamp_unix_ms: 1_795_759_501_000 + seq as i64,
        operation: op as i32,
        memory_mb: 100.0,
        message: msg.into(),
        run_id: run.into(),
        missed: 0,
        working_set_mb: None,
    }
}

fn history(last_op: Operation, last_msg: &str) -> Vec<LogEntry> {
    vec![
        entry(1, "run-1", Operation::StressTestStart, "old run starts"),
        entry(2, "run-1", Operation::StressTestComplete, "old run done"),
        entry(3, "", Operation::MemoryCleared, "freed old tree"),
        entry(4, "run-2", Operation::StressTestStart, "new run starts"),
        entry(5, "run-2", Operation::BuildTreeComplete, "target reached"),
        entry(6, "run-2", last_op, last_msg),
        entry(7, "run-2", Operation::Notice, "after the end"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_prints_only_the_run_and_ends_on_completion() {
    let fake = Fake {
        entries: history(Operation::StressTestComplete, "run complete"),
        hold_open: true,
        ..Fake::default()
    };
    let last_start = fake.last_start.clone();
    let last_watch = fake.last_watch.clone();
    let addr = serve(fake, true).await;
    let r = stressctl(
        &addr,
        &[
            "start",
            "--memory-mb",
            "1024",
            "--duration",
            "120",
            "--follow",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("Started run run-2\n"), "{}", r.stdout);
    assert!(r.stdout.contains("1.00 GiB (1024 MiB requested)"));
    assert!(!r.stdout.contains("old run"), "{}", r.stdout);
    assert!(!r.stdout.contains("freed old tree"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("START    RSS  100.0 MiB             new run starts")
    );
    assert!(
        r.stdout
            .contains("COMPLETE RSS  100.0 MiB             run complete")
    );
    assert!(!r.stdout.contains("after the end"), "{}", r.stdout);

    let req = last_start.lock().unwrap().clone().unwrap();
    assert_eq!(req.duration_seconds, Some(120));
    assert_eq!(req.log_interval_seconds, None);
    assert_eq!(req.payload_size_kb, None);
    assert_eq!(req.search_rate, None);
    let watch = (*last_watch.lock().unwrap()).unwrap();
    assert_eq!(watch.from_sequence, 0);
    assert!(watch.follow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_json_lines_and_run_error_exit_1() {
    let addr = serve(
        Fake {
            entries: history(Operation::StressTestError, "allocation failed"),
            hold_open: true,
            ..Fake::default()
        },
        true,
    )
    .await;
    let r = stressctl(
        &addr,
        &["--output", "json", "start", "--memory-percent", "50", "-f"],
    )
    .await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let docs: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 4, "{}", r.stdout);
    assert_eq!(docs[0]["run_id"], "run-2");
    assert_eq!(docs[0]["target_bytes"], 1u64 << 30);
    assert_eq!(docs[1]["operation"], "STRESS_TEST_START");
    assert_eq!(docs[3]["operation"], "STRESS_TEST_ERROR");
    assert!(
        r.stderr
            .contains("error: run run-2 failed: allocation failed"),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_stream_ending_early_exits_3() {
    let mut entries = history(Operation::Notice, "still going");
    entries.truncate(6);
    let addr = serve(
        Fake {
            entries,
            hold_open: false,
            ..Fake::default()
        },
        true,
    )
    .await;
    let r = stressctl(&addr, &["start", "--memory-mb", "64", "--follow"]).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("still going"));
    assert!(
        r.stderr.contains("ended before run run-2 finished"),
        "{}",
        r.stderr
    );
}

/// A refusal prints stressd's own message and the code, without tonic's generic description.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_refusal_is_printed_verbatim_exit_1() {
    for (code, msg, name) in [
        (
            tonic::Code::InvalidArgument,
            "memory_mb = 5 is invalid: below the smallest target (allowed: 10..=4095)",
            "INVALID_ARGUMENT",
        ),
        (
            tonic::Code::FailedPrecondition,
            "run run-1-abcdef is building; stop it first (Stop RPC or `stressctl stop`)",
            "FAILED_PRECONDITION",
        ),
    ] {
        let addr = serve(
            Fake {
                start_error: Some((code, msg.into())),
                ..Fake::default()
            },
            true,
        )
        .await;
        let r = stressctl(&addr, &["start", "--memory-mb", "5"]).await;
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_eq!(r.stderr, format!("error: {msg} [{name}]\n"));
        assert_eq!(r.stdout, "");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_commands_and_logs() {
    let addr = serve(
        Fake {
            entries: history(Operation::StressTestStopped, "stopped"),
            ..Fake::default()
        },
        true,
    )
    .await;
    let r = stressctl(&addr, &["status", "-o", "json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["state"], "STATE_SEARCHING");
    assert_eq!(v["remaining_ms"], 55_000);
    assert_eq!(v["time_to_target_ms"], serde_json::Value::Null);

    let r = stressctl(&addr, &["status"]).await;
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("SEARCHING"), "{}", r.stdout);

    let r = stressctl(&addr, &["stop"]).await;
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stdout,
        "Nothing to stop (state IDLE): no run in progress\n"
    );

    let r = stressctl(&addr, &["clear"]).await;
    assert_eq!(r.code, 0);
    assert!(
        r.stdout
            .contains("Released 1.00 GiB (10,486 nodes) in 15 ms")
    );

    let r = stressctl(&addr, &["logs", "-o", "json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 7);
    for line in r.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["sequence"].is_u64());
    }

    let r = stressctl(&addr, &["logs", "--follow", "--from", "3"]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks() {
    let addr = serve(Fake::default(), true).await;
    let r = stressctl(&addr, &["health"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "SERVING          (server)\nSERVING          memstress.v1.StressService\n"
    );
    let r = stressctl(&addr, &["health", "--service", "nope", "-o", "json"]).await;
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["serving"], false);
    assert_eq!(v["checks"][0]["status"], "SERVICE_UNKNOWN");

    let addr = serve(Fake::default(), false).await;
    let r = stressctl(&addr, &["health"]).await;
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("NOT_SERVING      memstress.v1.StressService")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_timeout_exit_2() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let r = stressctl(&addr, &["status"]).await;
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!("error: cannot reach stressd at http://{addr} (connection refused)\n")
    );

    let addr = serve(
        Fake {
            status_delay: Duration::from_secs(5),
            ..Fake::default()
        },
        true,
    )
    .await;
    let r = stressctl(&addr, &["--timeout", "300ms", "status"]).await;
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!(
            "error: timed out after 300 ms waiting for stressd at http://{addr} to answer Status\n"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_following_exits_130_and_says_how_to_stop() {
    use tokio::io::AsyncBufReadExt as _;

    let mut entries = history(Operation::Notice, "holding");
    entries.truncate(6);
    let addr = serve(
        Fake {
            entries,
            hold_open: true,
            ..Fake::default()
        },
        true,
    )
    .await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stressctl"))
        .args(["--addr", &addr, "start", "--memory-mb", "64", "--follow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the last streamed entry is printed: the client is then in its follow loop.
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if line.contains("holding") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(seen);
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "run run-2 keeps running. Stop it with: stressctl --addr http://{addr} stop"
        )),
        "{stderr}"
    );
}
