//! Shared by the client's end-to-end tests: runs the real `stressctl` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub(crate) mod stressd;

use std::time::Duration;

/// What one stressctl run gave.
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `stressctl --addr ADDR ARGS…` (30 s at most).
pub(crate) async fn stressctl(addr: &str, args: &[&str]) -> Run {
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
pub(crate) async fn stressctl_raw(args: &[&str]) -> Run {
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

/// Reports a test that cannot run here and returns, so the caller can `return`: prints
/// `SKIPPED: <test>: <reason>; run: <command>` and appends it to `$MEMSTRESS_SKIP_LOG` for the
/// summary of scripts/test.sh. Under `CI=true` nothing may skip: it panics instead.
pub(crate) fn skip(test: &str, reason: &str, command: &str) {
    let line = format!("SKIPPED: {test}: {reason}; run: {command}");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{line} (CI=true: tests never skip in CI)"
    );
    println!("{line}");
    eprintln!("{line}");
    if let Ok(path) = std::env::var("MEMSTRESS_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(path) {
            let _ = writeln!(f, "{test}: {reason}; run: {command}");
        }
    }
}
