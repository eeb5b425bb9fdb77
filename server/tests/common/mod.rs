//! Shared harness for integration tests: runs the real `stressd` on ephemeral loopback ports
//! and drives it through tonic clients and the real `stressctl` binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use memstress_proto::v1 as pb;
use memstress_proto::v1::stress_service_client::StressServiceClient;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub(crate) const MIB: u64 = 1 << 20;

/// Reports a test that cannot run here (it needs root or a kernel feature) and returns, so
/// the caller can `return`: prints `SKIPPED: <reason>; run: <command>` and appends it to
/// `$MEMSTRESS_SKIP_LOG` for the summary of scripts/test.sh. Under `CI=true` nothing may
/// skip: it panics with the same words instead.
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

/// True when this process runs as root.
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Path of a workspace binary: stressd is ours; stressctl is built beside it by the
/// workspace build that the test command runs first.
pub(crate) fn bin(name: &str) -> PathBuf {
    let stressd = PathBuf::from(env!("CARGO_BIN_EXE_stressd"));
    if name == "stressd" {
        return stressd;
    }
    let p = stressd.with_file_name(name);
    assert!(
        p.exists(),
        "{} not found: build the workspace first (cargo build --workspace --bins)",
        p.display()
    );
    p
}

pub(crate) struct Stressd {
    pub child: Child,
    pub grpc: String,
    pub http: String,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Stressd {
    pub(crate) fn spawn() -> Self {
        Self::spawn_with(|_| {})
    }

    /// Starts stressd through `sh -c` so a test can prefix shell setup (e.g. joining a cgroup)
    /// before the exec.
    pub(crate) fn spawn_with(configure: impl FnOnce(&mut Command)) -> Self {
        let mut cmd = Command::new(bin("stressd"));
        cmd.args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .env_remove("MEMORY_LIMIT_BYTES")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        configure(&mut cmd);
        Self::from_command(cmd)
    }

    pub(crate) fn from_command(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().expect("spawn stressd");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains(" listening grpc=")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(line.clone());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("stressd printed its listening line");
        // `--log-format json` puts the line inside a JSON string: a quote ends a field too.
        let field = |k: &str| {
            line.split(|c: char| c.is_whitespace() || c == '"')
                .find_map(|w| w.strip_prefix(k))
                .expect("address in listening line")
                .to_string()
        };
        Self {
            child,
            grpc: field("grpc="),
            http: field("http="),
            lines,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub(crate) async fn client(&self) -> StressServiceClient<Channel> {
        StressServiceClient::connect(self.url())
            .await
            .expect("connect")
    }

    pub(crate) fn channel_url(&self) -> String {
        self.url()
    }

    /// VmRSS of stressd from /proc/<pid>/status, bytes.
    pub(crate) fn rss(&self) -> u64 {
        rss_of(self.pid())
    }

    pub(crate) fn stdout_text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until a stdout line contains `needle` and returns it.
    pub(crate) fn wait_line(&self, needle: &str) -> String {
        let t0 = Instant::now();
        loop {
            if let Some(l) = self.stdout_text().lines().find(|l| l.contains(needle)) {
                return l.to_string();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no stdout line with {needle:?}:\n{}",
                self.stdout_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child.
        unsafe {
            libc::kill(self.pid() as i32, sig);
        }
    }
}

impl Drop for Stressd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 GET on a fresh connection (closed after the answer): status line, headers
/// and body as text.
pub(crate) fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

pub(crate) fn rss_of(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

pub(crate) fn start_mb(mb: u64) -> pb::StartRequest {
    pb::StartRequest {
        target: Some(pb::start_request::Target::MemoryMb(mb)),
        ..Default::default()
    }
}

pub(crate) async fn status(c: &mut StressServiceClient<Channel>) -> pb::StatusResponse {
    c.status(pb::StatusRequest {})
        .await
        .expect("status")
        .into_inner()
}

/// Polls Status until `pred` holds, panicking after `timeout`.
pub(crate) async fn wait_for(
    c: &mut StressServiceClient<Channel>,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&pb::StatusResponse) -> bool,
) -> pb::StatusResponse {
    let t0 = Instant::now();
    loop {
        let s = status(c).await;
        if pred(&s) {
            return s;
        }
        assert!(
            t0.elapsed() < timeout,
            "timed out waiting for {what}; last status: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) fn state(s: &pb::StatusResponse) -> pb::State {
    pb::State::try_from(s.state).unwrap_or(pb::State::Unspecified)
}

/// Polls until `pred(rss)` holds or `timeout` passes; returns the last RSS seen.
pub(crate) fn wait_rss(pid: u32, timeout: Duration, pred: impl Fn(u64) -> bool) -> u64 {
    let t0 = Instant::now();
    loop {
        let r = rss_of(pid);
        if pred(r) || t0.elapsed() > timeout {
            return r;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs stressctl against `addr`, returning (exit code, stdout, stderr).
pub(crate) fn stressctl(addr: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("stressctl"))
        .arg("--addr")
        .arg(addr)
        .args(args)
        .env_remove("STRESSCTL_ADDR")
        .output()
        .expect("run stressctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until the state is `want`.
pub(crate) async fn wait_state(
    c: &mut StressServiceClient<Channel>,
    want: pb::State,
    timeout: Duration,
) -> pb::StatusResponse {
    wait_for(c, timeout, &format!("{want:?}"), |s| state(s) == want).await
}

/// Every log entry still kept (WatchLogs without follow).
pub(crate) async fn kept_logs(c: &mut StressServiceClient<Channel>) -> Vec<pb::LogEntry> {
    let mut stream = c
        .watch_logs(pb::WatchLogsRequest {
            from_sequence: 0,
            follow: false,
        })
        .await
        .expect("watch_logs")
        .into_inner();
    let mut out = Vec::new();
    while let Some(e) = stream.message().await.expect("log entry") {
        out.push(e);
    }
    out
}
