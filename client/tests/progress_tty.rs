//! `start --follow` draws a progress bar on a terminal and plain lines without one: the real
//! stressctl under `script` (a pseudo-terminal) against a real stressd building at a ramp.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::process::Command;

use common::stressd::{Stressd, temp_dir};

fn has_script() -> bool {
    Command::new("sh")
        .args(["-c", "command -v script"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn start_follow_shows_a_bar_on_a_terminal_only() {
    if !has_script() {
        common::skip(
            "progress_tty::start_follow_shows_a_bar_on_a_terminal_only",
            "needs script(1) from util-linux for a pseudo-terminal",
            "apt-get install bsdutils && cargo test -p memstress-client --test progress_tty",
        );
        return;
    }
    let dir = temp_dir("bar");
    let daemon = Stressd::start("127.0.0.1:0", &dir, None).unwrap();
    let stressctl = env!("CARGO_BIN_EXE_stressctl");
    let follow = format!(
        "{stressctl} --addr {} start --memory-mb 150 --ramp-mb-per-second 60 --duration 5 --follow",
        daemon.grpc
    );
    let out = Command::new("script")
        .args(["-qfec", &follow, "/dev/null"])
        .env_remove("STRESSCTL_ADDR")
        .env("TERM", "xterm")
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("building ["), "no bar in:\n{screen}");
    assert!(
        screen.contains("/ 150.0 MiB"),
        "no MiB of target in:\n{screen}"
    );
    assert!(screen.contains("MiB/s"), "no rate in:\n{screen}");
    assert!(screen.contains(" left"), "no time left in:\n{screen}");
    assert!(screen.contains(" COMPLETE "), "{screen}");

    // Without a terminal (and with JSON) the same follow prints plain lines only.
    let r = common::stressctl(
        &format!("http://{}", daemon.grpc),
        &[
            "start",
            "--memory-mb",
            "100",
            "--ramp-mb-per-second",
            "60",
            "--duration",
            "5",
            "--follow",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("building [") && !r.stderr.contains("building ["));
    assert!(r.stdout.contains(" COMPLETE "), "{}", r.stdout);
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}
