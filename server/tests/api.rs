//! API behaviour against the real stressd: stop, refusals, log streaming, health, reflection,
//! allocation failure and shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use memstress_proto::v1 as pb;
use std::time::{Duration, Instant};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_mid_build_is_prompt_and_stop_when_idle_says_so() {
    let d = Stressd::spawn();
    let mut c = d.client().await;
    let r = c.stop(pb::StopRequest {}).await.unwrap().into_inner();
    assert!(!r.stopped);
    assert_eq!(r.message, "no run in progress");

    // a slow ramp keeps the build going long enough to stop it in the middle
    c.start(pb::StartRequest {
        ramp_mb_per_second: 100.0,
        ..start_mb(2048)
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = status(&mut c).await;
    assert_eq!(state(&before), pb::State::Building);
    assert!(before.nodes > 0);
    let t0 = Instant::now();
    let r = c.stop(pb::StopRequest {}).await.unwrap().into_inner();
    let took = t0.elapsed();
    assert!(r.stopped, "{r:?}");
    assert_eq!(pb::State::try_from(r.state).unwrap(), pb::State::Stopped);
    // Stop interrupts the build rather than waiting it out (finishing would take ~20 s). The
    // 100 ms promise is a latency number, measured by the benchmark (p99 over 20 stops), not
    // asserted here where a shared machine's scheduling noise would make it flaky.
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
    let rss1 = d.rss();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(d.rss() <= rss1 + MIB, "no growth after Stop returned");
    let s = status(&mut c).await;
    assert_eq!(state(&s), pb::State::Stopped);
    assert!(s.nodes > 0, "tree stays after stop");
    let r = c.stop(pb::StopRequest {}).await.unwrap().into_inner();
    assert!(!r.stopped);

    // Start while a finished run's tree is held frees it first
    let resp = c
        .start(pb::StartRequest {
            duration_seconds: Some(0),
            ..start_mb(64)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(resp.previous_run_released_bytes > 0);
    // Status and the kept log agree at every step: the start entry is kept when Start returns,
    // and SEARCHING is never visible before its SEARCH_TREE_START entry
    let has = |logs: &[pb::LogEntry], op: pb::Operation| {
        logs.iter()
            .any(|e| e.operation == op as i32 && e.run_id == resp.run_id)
    };
    assert!(has(
        &kept_logs(&mut c).await,
        pb::Operation::StressTestStart
    ));
    wait_state(&mut c, pb::State::Searching, Duration::from_secs(10)).await;
    assert!(has(
        &kept_logs(&mut c).await,
        pb::Operation::SearchTreeStart
    ));
    // Start during a run is refused, naming the running run
    let err = c.start(start_mb(32)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains(&resp.run_id), "{}", err.message());
    // a held-until-stopped run has no remaining time
    assert_eq!(status(&mut c).await.remaining_ms, None);
    let cleared = c.clear(pb::ClearRequest {}).await.unwrap().into_inner();
    assert!(cleared.stopped_running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_is_refused_with_field_value_and_range() {
    let d = Stressd::spawn();
    let mut c = d.client().await;
    let base = || start_mb(64);
    let cases: Vec<(pb::StartRequest, &str)> = vec![
        (pb::StartRequest::default(), "memory_mb/memory_percent"),
        (start_mb(9), "memory_mb = 9"),
        (start_mb(100_000_000), "memory_mb = 100000000"),
        (
            pb::StartRequest {
                target: Some(pb::start_request::Target::MemoryPercent(0.5)),
                ..Default::default()
            },
            "memory_percent = 0.5",
        ),
        (
            pb::StartRequest {
                target: Some(pb::start_request::Target::MemoryPercent(96.0)),
                ..Default::default()
            },
            "memory_percent = 96",
        ),
        (
            pb::StartRequest {
                duration_seconds: Some(4),
                ..base()
            },
            "duration_seconds = 4",
        ),
        (
            pb::StartRequest {
                duration_seconds: Some(86_401),
                ..base()
            },
            "duration_seconds = 86401",
        ),
        (
            pb::StartRequest {
                log_interval_seconds: Some(0),
                ..base()
            },
            "log_interval_seconds = 0",
        ),
        (
            pb::StartRequest {
                log_interval_seconds: Some(61),
                ..base()
            },
            "log_interval_seconds = 61",
        ),
        (
            pb::StartRequest {
                payload_size_kb: Some(0),
                ..base()
            },
            "payload_size_kb = 0",
        ),
        (
            pb::StartRequest {
                payload_size_kb: Some(65_537),
                ..base()
            },
            "payload_size_kb = 65537",
        ),
        (
            pb::StartRequest {
                ramp_mb_per_second: -5.0,
                ..base()
            },
            "ramp_mb_per_second = -5",
        ),
        (
            pb::StartRequest {
                search_rate: Some(20_000_000),
                ..base()
            },
            "search_rate = 20000000",
        ),
        (pb::StartRequest { scope: 7, ..base() }, "scope = 7"),
    ];
    for (req, needle) in cases {
        let err = c.start(req).await.expect_err(needle);
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{needle}: {}",
            err.message()
        );
        assert!(
            err.message().starts_with(needle),
            "{needle}: {}",
            err.message()
        );
        assert!(
            err.message().contains("allowed:"),
            "range named: {}",
            err.message()
        );
    }
    // nothing started
    let s = status(&mut c).await;
    assert_eq!(state(&s), pb::State::Idle);
    assert!(s.run_id.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_watchers_replay_then_follow_the_same_entries() {
    let d = Stressd::spawn();
    let mut c = d.client().await;
    // an earlier run leaves entries to replay
    c.start(pb::StartRequest {
        duration_seconds: Some(0),
        ..start_mb(32)
    })
    .await
    .unwrap();
    wait_state(&mut c, pb::State::Searching, Duration::from_secs(10)).await;
    c.stop(pb::StopRequest {}).await.unwrap();

    let watch = |mut c: memstress_proto::v1::stress_service_client::StressServiceClient<_>| async move {
        let mut s = c
            .watch_logs(pb::WatchLogsRequest {
                from_sequence: 0,
                follow: true,
            })
            .await
            .unwrap()
            .into_inner();
        let mut got = Vec::new();
        while let Some(e) = s.message().await.unwrap() {
            let op = pb::Operation::try_from(e.operation).unwrap();
            got.push((e.sequence, op, e.run_id.clone()));
            if op == pb::Operation::StressTestComplete {
                break;
            }
        }
        got
    };
    let w1 = tokio::spawn(watch(d.client().await));
    let w2 = tokio::spawn(watch(d.client().await));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = c
        .start(pb::StartRequest {
            duration_seconds: Some(5),
            log_interval_seconds: Some(1),
            ..start_mb(48)
        })
        .await
        .unwrap()
        .into_inner();
    let (a, b) = (w1.await.unwrap(), w2.await.unwrap());
    assert_eq!(a, b, "both watchers see the same entries");
    let seqs: Vec<u64> = a.iter().map(|e| e.0).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap, no duplicate: {seqs:?}"
    );
    assert_eq!(seqs[0], 1, "replay starts at the first kept entry");
    assert!(
        a.iter().any(|e| e.1 == pb::Operation::StressTestStopped),
        "replayed the first run"
    );
    assert!(
        a.iter().any(|e| e.1 == pb::Operation::MemoryCleared),
        "start freed the first tree"
    );
    assert!(
        a.iter().filter(|e| e.2 == second.run_id).count() >= 7,
        "followed the second run live"
    );

    // from_sequence skips what came before; follow=false ends after the kept entries
    let from = seqs[seqs.len() - 3];
    let mut s = c
        .watch_logs(pb::WatchLogsRequest {
            from_sequence: from,
            follow: false,
        })
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while let Some(e) = s.message().await.unwrap() {
        assert!(e.sequence >= from);
        n += 1;
    }
    assert!(n >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_serving_reflection_lists_the_service_and_http_health() {
    let d = Stressd::spawn();
    let channel = tonic::transport::Endpoint::from_shared(d.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut h = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for svc in ["", "memstress.v1.StressService"] {
        let r = h
            .check(tonic_health::pb::HealthCheckRequest {
                service: svc.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{svc:?}"
        );
    }

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut r = ServerReflectionClient::new(channel.clone());
    let req = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = r
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let msg = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("unexpected {msg:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in ["memstress.v1.StressService", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    // v1alpha too, for older grpcurl builds
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    let mut ra = AlphaClient::new(channel);
    let req = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
            "memstress.v1.StressService".into(),
        )),
    };
    let mut stream = ra
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let msg = stream.message().await.unwrap().unwrap();
    assert!(matches!(
        msg.message_response,
        Some(tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
    ));

    // HTTP side port
    let body = http_get(&d.http, "/health");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    let body = http_get(&d.http, "/");
    assert!(body.contains("memstress.v1.StressService"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_open_stream_and_running_run_exits_in_time() {
    let mut d = Stressd::spawn();
    let mut c = d.client().await;
    c.start(pb::StartRequest {
        duration_seconds: Some(0),
        ..start_mb(64)
    })
    .await
    .unwrap();
    let mut stream = c
        .watch_logs(pb::WatchLogsRequest {
            from_sequence: 0,
            follow: true,
        })
        .await
        .unwrap()
        .into_inner();
    wait_state(&mut c, pb::State::Searching, Duration::from_secs(10)).await;
    let t0 = Instant::now();
    d.signal(libc::SIGTERM);
    // the open stream ends (it sees the run stopped first)
    let mut saw_stopped = false;
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(e)) = stream.message().await {
            saw_stopped |= e.operation == pb::Operation::StressTestStopped as i32;
        }
    })
    .await;
    assert!(drained.is_ok(), "stream ended");
    assert!(saw_stopped, "the running run was stopped on SIGTERM");
    loop {
        if let Some(status) = d.child.try_wait().unwrap() {
            assert!(status.success(), "clean exit: {status:?}");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "exited within 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An allocation failure ends the run FAILED with STRESS_TEST_ERROR; the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocation_failure_fails_the_run_not_the_server() {
    let d = Stressd::spawn();
    let mut c = d.client().await;
    // Cap stressd's address space a little above what it maps now, so payload slabs fail.
    let vm = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let vmsize_kb: u64 = vm
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let cap = vmsize_kb * 1024 + 400 * MIB;
    let lim = libc::rlimit {
        rlim_cur: cap,
        rlim_max: cap,
    };
    // SAFETY: prlimit on our own child with a valid rlimit.
    let rc = unsafe { libc::prlimit(d.pid() as i32, libc::RLIMIT_AS, &lim, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());

    let r = c
        .start(pb::StartRequest {
            duration_seconds: Some(0),
            ..start_mb(2048)
        })
        .await
        .unwrap()
        .into_inner();
    let s = wait_state(&mut c, pb::State::Failed, Duration::from_secs(20)).await;
    assert!(s.last_error.contains("mmap"), "{}", s.last_error);
    assert_eq!(s.nodes, 0, "memory released after the failure");
    let mut saw_error = false;
    for e in kept_logs(&mut c).await {
        saw_error |= e.operation == pb::Operation::StressTestError as i32 && e.run_id == r.run_id;
    }
    assert!(saw_error);
    // still serving: a run that fits works
    c.start(pb::StartRequest {
        duration_seconds: Some(5),
        ..start_mb(64)
    })
    .await
    .unwrap();
    wait_state(&mut c, pb::State::Searching, Duration::from_secs(20)).await;
    c.clear(pb::ClearRequest {}).await.unwrap();
}
