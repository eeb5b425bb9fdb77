//! Authentication, audit and rate limiting against the real stressd and stressctl:
//! `--auth-token-file`, `--read-token-file`, token rotation, `--rate-limit`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use memstress_proto::v1 as pb;
use memstress_proto::v1::stress_service_client::StressServiceClient;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};

const ADMIN: &str = "adm1n-t0ken";
const READ: &str = "r3ad-t0ken";

/// Writes `text` to `path` the way a Secret update does: a new file renamed over the old.
fn write_token(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Tokens {
    _dir: tempfile::TempDir,
    admin: PathBuf,
    read: PathBuf,
}

fn token_files() -> Tokens {
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin.token");
    let read = dir.path().join("read.token");
    write_token(&admin, &format!("{ADMIN}\n"));
    write_token(&read, &format!("  {READ}\n"));
    Tokens {
        _dir: dir,
        admin,
        read,
    }
}

fn spawn_authenticated(t: &Tokens) -> Stressd {
    Stressd::spawn_with(|cmd| {
        cmd.arg("--auth-token-file")
            .arg(&t.admin)
            .arg("--read-token-file")
            .arg(&t.read);
    })
}

/// `msg` with `authorization: Bearer <token>` when a token is given.
fn req<T>(msg: T, token: Option<&str>) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

async fn status_with(
    c: &mut StressServiceClient<Channel>,
    token: Option<&str>,
) -> Result<pb::StatusResponse, tonic::Status> {
    c.status(req(pb::StatusRequest {}, token))
        .await
        .map(tonic::Response::into_inner)
}

fn assert_refused(r: Result<impl std::fmt::Debug, tonic::Status>, code: Code, parts: &[&str]) {
    let status = r.expect_err("refused");
    assert_eq!(status.code(), code, "{status:?}");
    for part in parts {
        assert!(
            status.message().contains(part),
            "{part:?} not in {status:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_gate_every_rpc_and_mutations_are_audited() {
    let t = token_files();
    let d = spawn_authenticated(&t);
    let mut c = d.client().await;

    // No token, a wrong one, or a malformed header: UNAUTHENTICATED with the way to pass one.
    let hint = ["--token-file", "STRESSCTL_TOKEN", "authorization: Bearer"];
    assert_refused(
        status_with(&mut c, None).await,
        Code::Unauthenticated,
        &hint,
    );
    assert_refused(
        status_with(&mut c, Some("wrong")).await,
        Code::Unauthenticated,
        &hint,
    );
    let mut basic = Request::new(pb::StatusRequest {});
    basic
        .metadata_mut()
        .insert("authorization", format!("Basic {ADMIN}").parse().unwrap());
    assert_refused(c.status(basic).await, Code::Unauthenticated, &hint);
    assert_refused(
        c.start(req(start_mb(16), None)).await,
        Code::Unauthenticated,
        &["Start"],
    );
    let notice = d.wait_line("refused Start from 127.0.0.1:");
    assert!(notice.contains("no credential"), "{notice}");
    let stream = c
        .watch_logs(req(pb::WatchLogsRequest::default(), None))
        .await;
    assert_refused(stream, Code::Unauthenticated, &["WatchLogs"]);

    // The read token: every read, no mutation.
    status_with(&mut c, Some(READ)).await.unwrap();
    c.list_runs(req(pb::ListRunsRequest::default(), Some(READ)))
        .await
        .unwrap();
    let mut stream = c
        .watch_logs(req(pb::WatchLogsRequest::default(), Some(READ)))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
    for r in [
        c.start(req(start_mb(16), Some(READ))).await.map(|_| ()),
        c.stop(req(pb::StopRequest {}, Some(READ)))
            .await
            .map(|_| ()),
        c.clear(req(pb::ClearRequest {}, Some(READ)))
            .await
            .map(|_| ()),
    ] {
        assert_refused(r, Code::PermissionDenied, &["needs the admin token"]);
    }
    let notice = d.wait_line("refused Clear from 127.0.0.1:");
    assert!(notice.contains("read token"), "{notice}");

    // The admin token: mutations, each entry naming the peer and the credential.
    let started = c
        .start(req(
            pb::StartRequest {
                duration_seconds: Some(0),
                ..start_mb(64)
            },
            Some(ADMIN),
        ))
        .await
        .unwrap()
        .into_inner();
    let line = d.wait_line("STRESS_TEST_START");
    assert!(line.contains(" (by 127.0.0.1:"), "{line}");
    assert!(line.ends_with(", credential admin)"), "{line}");
    // Holding, so Clear has a tree to free (and logs MEMORY_CLEARED).
    d.wait_line("SEARCH_TREE_START");
    c.stop(req(pb::StopRequest {}, Some(ADMIN))).await.unwrap();
    let line = d.wait_line("STRESS_TEST_STOPPED");
    assert!(
        line.contains(&started.run_id) && line.contains("credential admin)"),
        "{line}"
    );
    c.clear(req(pb::ClearRequest {}, Some(ADMIN)))
        .await
        .unwrap();
    let line = d.wait_line("MEMORY_CLEARED");
    assert!(line.contains("credential admin)"), "{line}");
    // The admin token reads too.
    status_with(&mut c, Some(ADMIN)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reflection_and_http_stay_open() {
    let t = token_files();
    let d = spawn_authenticated(&t);
    let channel = Endpoint::from_shared(d.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut h = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let r = h
        .check(tonic_health::pb::HealthCheckRequest {
            service: "memstress.v1.StressService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    let mut r = ServerReflectionClient::new(channel);
    let list = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = r
        .server_reflection_info(tokio_stream::iter(vec![list]))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());

    for path in ["/health", "/metrics"] {
        let answer = http_get(&d.http, path);
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_file_takes_effect_without_a_restart() {
    let t = token_files();
    let d = spawn_authenticated(&t);
    let mut c = d.client().await;
    status_with(&mut c, Some(ADMIN)).await.unwrap();
    write_token(&t.admin, "n3w-admin\n");
    let t0 = Instant::now();
    while status_with(&mut c, Some("n3w-admin")).await.is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "new token not accepted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_refused(
        status_with(&mut c, Some(ADMIN)).await,
        Code::Unauthenticated,
        &[],
    );
    d.wait_line("new token in force");

    // A file that becomes unusable keeps the last good token (and says so once). Files are
    // looked at on the request path, so keep calling while waiting for the NOTICE.
    write_token(&t.admin, "\n");
    let t0 = Instant::now();
    while !d.stdout_text().contains("keeping the last good token") {
        status_with(&mut c, Some("n3w-admin")).await.unwrap();
        assert!(t0.elapsed() < Duration::from_secs(5), "no NOTICE");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    status_with(&mut c, Some("n3w-admin")).await.unwrap();
}

#[test]
fn an_empty_or_missing_token_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.token");
    std::fs::write(&empty, " \n").unwrap();
    let missing = dir.path().join("missing.token");
    for (path, why) in [(&empty, "empty"), (&missing, "No such file")] {
        let mut child = Command::new(bin("stressd"))
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .arg("--auth-token-file")
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("stressd started with an unusable token file");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(2), "{err}");
        assert!(
            err.contains("--auth-token-file") && err.contains(why),
            "{err}"
        );
    }
}

fn stressctl_env(addr: &str, args: &[&str], token: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(bin("stressctl"));
    cmd.arg("--addr")
        .arg(addr)
        .args(args)
        .env_remove("STRESSCTL_ADDR")
        .env_remove("STRESSCTL_TOKEN")
        .env_remove("STRESSCTL_TOKEN_FILE");
    if let Some(t) = token {
        cmd.env("STRESSCTL_TOKEN", t);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn stressctl_sends_the_token_from_a_file_or_the_environment() {
    let t = token_files();
    let d = spawn_authenticated(&t);
    let admin_file = t.admin.to_str().unwrap();

    let (code, _, err) = stressctl_env(&d.grpc, &["status"], None);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("[UNAUTHENTICATED]") && err.contains("--token-file"),
        "{err}"
    );

    let (code, out, err) = stressctl_env(&d.grpc, &["--token-file", admin_file, "status"], None);
    assert_eq!(code, 0, "{err}");
    assert!(!out.is_empty());
    let (code, _, err) = stressctl_env(&d.grpc, &["stop", "--token-file", admin_file], None);
    assert_eq!(code, 0, "{err}");

    let (code, _, err) = stressctl_env(&d.grpc, &["status"], Some(READ));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = stressctl_env(&d.grpc, &["logs"], Some(READ));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = stressctl_env(&d.grpc, &["clear"], Some(READ));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("[PERMISSION_DENIED]") && err.contains("Clear"),
        "{err}"
    );

    let empty = t.admin.with_file_name("empty.token");
    std::fs::write(&empty, "\n").unwrap();
    let (code, _, err) = stressctl_env(
        &d.grpc,
        &["--token-file", empty.to_str().unwrap(), "status"],
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("empty"), "{err}");
}

async fn client_from(url: &str, local: &str) -> StressServiceClient<Channel> {
    let channel = Endpoint::from_shared(url.to_owned())
        .unwrap()
        .local_address(Some(local.parse().unwrap()))
        .connect()
        .await
        .unwrap();
    StressServiceClient::new(channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_calls_are_rate_limited_per_client() {
    // Defaults: 50 calls/s per client, burst 100.
    let d = Stressd::spawn();
    let c = client_from(&d.url(), "127.0.0.1").await;
    let calls: Vec<_> = (0..300)
        .map(|_| {
            let mut c = c.clone();
            tokio::spawn(async move { c.stop(pb::StopRequest {}).await })
        })
        .collect();
    let (mut ok, mut limited) = (0, Vec::new());
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => ok += 1,
            Err(s) if s.code() == Code::ResourceExhausted => limited.push(s),
            Err(s) => panic!("unexpected {s:?}"),
        }
    }
    assert!(ok >= 100, "{ok} admitted");
    let first = limited.first().expect("some calls were limited");
    assert!(
        first
            .message()
            .starts_with("rate limit: 50 mutating calls/s per client (burst 100); retry in "),
        "{first:?}"
    );
    // Reads are not limited, and another client (another IP) has its own bucket.
    let mut same = c.clone();
    status(&mut same).await;
    let mut other = client_from(&d.url(), "127.0.0.2").await;
    other.stop(pb::StopRequest {}).await.unwrap();
}
