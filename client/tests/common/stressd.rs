//! Real stressd processes for the client's end-to-end tests, killed when dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// stressd beside stressctl: the workspace build puts every binary in one directory.
pub(crate) fn stressd_path() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_stressctl")).with_file_name("stressd");
    assert!(
        p.exists(),
        "{} not found: build the workspace first (cargo build --workspace --bins)",
        p.display()
    );
    p
}

/// One stressd; killed (SIGKILL) when dropped.
pub(crate) struct Stressd {
    pub child: Child,
    /// The gRPC address as bound ("127.0.0.2:41234").
    pub grpc: String,
    /// Every stdout line so far.
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Stressd {
    /// Starts stressd with gRPC on `grpc` (HTTP on an ephemeral port of the same IP), history
    /// in `state_dir`, and POD_NAME `pod` when given. `None` if it did not come up (e.g. the
    /// port is taken).
    pub(crate) fn start(grpc: &str, state_dir: &Path, pod: Option<&str>) -> Option<Self> {
        let ip = grpc.rsplit_once(':').map_or(grpc, |(ip, _)| ip);
        let mut cmd = Command::new(stressd_path());
        cmd.args(["--grpc-addr", grpc, "--http-addr", &format!("{ip}:0")])
            .arg("--state-dir")
            .arg(state_dir)
            .args(["--memory-limit", "2Gi"])
            .env_remove("MEMORY_LIMIT_BYTES")
            .env_remove("STRESSD_STATE_DIR")
            .env_remove("POD_NAME")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(pod) = pod {
            cmd.env("POD_NAME", pod).env("POD_NAMESPACE", "fleet-test");
        }
        let mut child = cmd.spawn().expect("spawn stressd");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Keep reading to the end so stressd never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("grpc="))
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(grpc) => Some(Stressd { child, grpc, lines }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }

    /// SIGKILL, as the OOM killer or a node failure would.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Stressd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh empty directory under the system temp dir.
pub(crate) fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stressctl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
