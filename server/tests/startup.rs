//! Start-up configuration mistakes get clear answers: a bad memory limit or listen address
//! stops stressd with exit 2 and a message; a good explicit limit is used when the cgroup has
//! none; listen addresses may be host names.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use memstress_proto::v1 as pb;
use std::process::{Command, Stdio};

fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(bin("stressd"));
    cmd.args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args(args)
        .env_remove("MEMORY_LIMIT_BYTES")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(out.stdout.is_empty(), "nothing served");
    err
}

#[test]
fn an_invalid_memory_limit_stops_stressd_with_exit_2() {
    let err = refused(&["--memory-limit", "2Gx"], &[]);
    assert!(err.contains("\"2Gx\" is not a memory limit"), "{err}");
    let err = refused(&[], &[("MEMORY_LIMIT_BYTES", "abc")]);
    assert!(err.contains("\"abc\" is not a memory limit"), "{err}");
    let err = refused(&["--grpc-addr", "localhost"], &[]);
    assert!(err.contains("HOST:PORT"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_names_listen_and_an_explicit_limit_is_the_basis_without_a_cgroup_limit() {
    let mut cmd = Command::new(bin("stressd"));
    cmd.args(["--grpc-addr", "localhost:0", "--http-addr", "localhost:0"])
        .args(["--memory-limit", "1536Mi"])
        .env_remove("MEMORY_LIMIT_BYTES")
        .stdout(Stdio::piped());
    let d = Stressd::from_command(cmd);
    assert!(
        d.grpc
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .ip()
            .is_loopback()
    );
    let mut c = d.client().await;
    let s = status(&mut c).await;
    let basis = s.basis.unwrap();
    let cgroup_limit = s.container.and_then(|c| c.limit_bytes);
    match cgroup_limit {
        // A cgroup limit always wins over the explicit one.
        Some(limit) => assert_eq!(basis.limit_bytes, limit, "{basis:?}"),
        None => {
            assert_eq!(basis.limit_bytes, 1536 * MIB, "{basis:?}");
            assert_eq!(basis.source, pb::BasisSource::DownwardApi as i32);
            assert!(basis.detail.contains("--memory-limit"), "{basis:?}");
        }
    }
}
