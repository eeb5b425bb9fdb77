//! Shared by the client's end-to-end tests: runs the real `stressctl` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod stressd;

use std::time::Duration;

/// What one stressctl run gave.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `stressctl --addr ADDR ARGS…` (30 s at most).
pub async fn stressctl(addr: &str, args: &[&str]) -> Run {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_stressctl"))
            .env_remove("STRESSCTL_ADDR")
            .arg("--addr")
            .arg(addr)
            .args(args)
            .output(),
    )
    .await
    .expect("stressctl hung")
    .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs `stressctl ARGS…` as given (30 s at most), STRESSCTL_ADDR unset.
pub async fn stressctl_raw(args: &[&str]) -> Run {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_stressctl"))
            .env_remove("STRESSCTL_ADDR")
            .env("NO_COLOR", "1")
            .args(args)
            .output(),
    )
    .await
    .expect("stressctl hung")
    .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}
