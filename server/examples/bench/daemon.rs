//! A real `stressd` child process: launch, readiness, its gRPC client, and what /proc says
//! about it (RSS, memory maps, CPU time).

use crate::Res;
use memstress_proto::v1 as pb;
use memstress_proto::v1::stress_service_client::StressServiceClient;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// One MiB.
pub(crate) const MIB: u64 = 1 << 20;

/// The gRPC client type used throughout.
pub(crate) type Client = StressServiceClient<Channel>;

/// Upper bound on any single control RPC (Clear of a multi-GiB tree included).
const RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// Finds the release `stressd` next to this example: `target/release/examples/bench` ->
/// `target/release/stressd`.
pub(crate) fn locate_stressd() -> Res<PathBuf> {
    let exe = std::env::current_exe()?;
    let examples = exe
        .parent()
        .ok_or("cannot locate the directory of the bench executable")?;
    let profile_dir = if examples.file_name().is_some_and(|n| n == "examples") {
        examples
            .parent()
            .ok_or("bench executable has no profile directory")?
    } else {
        examples
    };
    let stressd = profile_dir.join("stressd");
    if !stressd.is_file() {
        return Err(format!(
            "stressd not found at {}: build it first with `cargo build --release` \
             (cargo run --example does not build the server binary)",
            stressd.display()
        )
        .into());
    }
    Ok(stressd)
}

/// Warns when the server sources are newer than the `stressd` binary (a stale build would
/// benchmark old code).
pub(crate) fn staleness_warning(stressd: &Path) -> Option<String> {
    let bin_time = std::fs::metadata(stressd).ok()?.modified().ok()?;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let newest = std::fs::read_dir(&src)
        .ok()?
        .filter_map(|e| e.ok()?.metadata().ok()?.modified().ok())
        .max()?;
    (newest > bin_time).then(|| {
        format!(
            "warning: {} is older than the newest file in {}; run `cargo build --release` to benchmark the current code",
            stressd.display(),
            src.display()
        )
    })
}

/// Kills the child when dropped, so an error anywhere never leaves a stressd behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A stressd that was spawned but may not be ready yet.
pub(crate) struct Launched {
    child: ChildGuard,
    state_dir: Option<tempfile::TempDir>,
    /// Process id.
    pub(crate) pid: u32,
    /// When `Command::spawn` was called (spawn returns once exec succeeded).
    pub(crate) spawned_at: Instant,
    listening: mpsc::Receiver<String>,
}

/// Whether stressd keeps its run history on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum History {
    /// `--state-dir` in a fresh temporary directory (how the product is deployed).
    On,
    /// No `--state-dir`: the history is kept in memory only.
    Off,
}

/// Spawns stressd on `grpc_addr` (e.g. `127.0.0.1:0`) and a free HTTP port; with
/// [`History::On`] its `--state-dir` is a fresh temporary directory, removed after the process
/// is gone. Its stdout is drained by a thread for the life of the process so a full pipe never
/// blocks it.
pub(crate) fn launch(stressd: &Path, grpc_addr: &str, history: History) -> Res<Launched> {
    launch_limited(stressd, grpc_addr, history, None)
}

/// [`launch`] with `--memory-limit` (the basis when no cgroup limit applies, as here), so the
/// checkpoint step — 1 % of the limit — is what it would be in a pod with that limit.
pub(crate) fn launch_limited(
    stressd: &Path,
    grpc_addr: &str,
    history: History,
    memory_limit: Option<&str>,
) -> Res<Launched> {
    let state_dir = match history {
        History::On => Some(
            tempfile::Builder::new()
                .prefix("stressd-bench-state-")
                .tempdir()?,
        ),
        History::Off => None,
    };
    let mut cmd = Command::new(stressd);
    cmd.args(["--grpc-addr", grpc_addr, "--http-addr", "127.0.0.1:0"]);
    if let Some(dir) = &state_dir {
        cmd.arg("--state-dir").arg(dir.path());
    }
    if let Some(limit) = memory_limit {
        cmd.args(["--memory-limit", limit]);
    }
    cmd.env_remove("MEMORY_LIMIT_BYTES")
        .env_remove("STRESSD_GRPC_ADDR")
        .env_remove("STRESSD_HTTP_ADDR")
        .env_remove("STRESSD_STATE_DIR")
        .env_remove("STRESSD_HISTORY_LIMIT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let spawned_at = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot spawn {}: {e}", stressd.display()))?;
    let stdout = child.stdout.take();
    let child = ChildGuard(child);
    let stdout = stdout.ok_or("stressd stdout was not captured")?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("stressd-stdout".into())
        .spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains(" listening grpc=")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(line);
                }
            }
        })?;
    Ok(Launched {
        pid: child.0.id(),
        child,
        state_dir,
        spawned_at,
        listening: rx,
    })
}

impl Launched {
    /// Waits for the listening line, then connects the gRPC client.
    pub(crate) async fn ready(self) -> Res<Daemon> {
        let rx = self.listening;
        let line = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(20)))
            .await?
            .map_err(|_| "stressd did not print its listening line within 20 s")?;
        let addr = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(str::to_string)
                .ok_or_else(|| format!("no {key} address in {line:?}"))
        };
        let url = format!("http://{}", addr("grpc=")?);
        let http = addr("http=")?;
        let client = connect(&url).await?;
        Ok(Daemon {
            _child: self.child,
            state_dir: self.state_dir,
            pid: self.pid,
            url,
            http,
            client,
        })
    }
}

/// A running, connected stressd.
pub(crate) struct Daemon {
    // Declared before `state_dir`: the process is killed before its directory is removed.
    _child: ChildGuard,
    /// Its `--state-dir` (None: history in memory only).
    pub(crate) state_dir: Option<tempfile::TempDir>,
    /// Process id.
    pub(crate) pid: u32,
    /// `http://127.0.0.1:PORT` of its gRPC server.
    pub(crate) url: String,
    /// `127.0.0.1:PORT` of its HTTP port (`/health`, `/metrics`).
    pub(crate) http: String,
    /// Shared client (one HTTP/2 connection).
    pub(crate) client: Client,
}

/// Opens a new connection (its own HTTP/2 connection) to `url`.
pub(crate) async fn connect(url: &str) -> Res<Client> {
    let channel = Endpoint::from_shared(url.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await?;
    Ok(StressServiceClient::new(channel))
}

/// Spawns stressd on ephemeral ports with its history on (`--state-dir` in a fresh temporary
/// directory, as deployed) and waits until it is connected.
pub(crate) async fn spawn(stressd: &Path) -> Res<Daemon> {
    spawn_with(stressd, History::On, None).await
}

/// Spawns stressd on ephemeral ports, with or without `--state-dir`, and waits until it is
/// connected.
pub(crate) async fn spawn_with(
    stressd: &Path,
    history: History,
    memory_limit: Option<&str>,
) -> Res<Daemon> {
    launch_limited(stressd, "127.0.0.1:0", history, memory_limit)?
        .ready()
        .await
}

/// Asks Status where `d` keeps its run history and fails unless it is where `want` says
/// (with `--state-dir`, stressd falls back to memory-only history when the directory fails).
pub(crate) async fn check_history(d: &mut Daemon, want: History) -> Res<pb::HistoryStatus> {
    let h = status(&mut d.client).await?.history.unwrap_or_default();
    let mode = pb::HistoryMode::try_from(h.mode).unwrap_or(pb::HistoryMode::Unspecified);
    let expected = match want {
        History::On => pb::HistoryMode::Durable,
        History::Off => pb::HistoryMode::Memory,
    };
    if mode != expected {
        return Err(format!(
            "stressd pid {} keeps its history {mode:?} ({}), expected {expected:?}",
            d.pid, h.reason
        )
        .into());
    }
    Ok(h)
}

/// Filesystem type of the mount holding `path` (longest mount-point prefix in
/// `/proc/self/mountinfo`), e.g. "ext4" or "tmpfs".
pub(crate) fn fs_type_of(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let mount = *fields.get(4)?;
            let sep = fields.iter().position(|f| *f == "-")?;
            let fstype = *fields.get(sep + 1)?;
            path.starts_with(mount)
                .then(|| (mount.len(), fstype.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, t)| t)
}

/// Total size of the regular files directly in `dir`, bytes (the history database and its
/// journal).
pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(|e| e.ok()?.metadata().ok())
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len())
            .sum()
    })
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ps = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(ps).ok().filter(|p| *p > 0).unwrap_or(4096)
}

/// RSS of `pid` in bytes from `/proc/<pid>/statm` (resident pages × page size).
pub(crate) fn rss_of(pid: u32) -> Res<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/statm"))?;
    let pages: u64 = text
        .split_ascii_whitespace()
        .nth(1)
        .ok_or("short /proc/<pid>/statm")?
        .parse()?;
    Ok(pages * page_size())
}

/// RSS reader that keeps the path formatted (for tight polling loops).
#[derive(Debug, Clone)]
pub(crate) struct RssReader {
    path: String,
    page: u64,
}

impl RssReader {
    /// Reader for `pid`.
    pub(crate) fn new(pid: u32) -> Self {
        Self {
            path: format!("/proc/{pid}/statm"),
            page: page_size(),
        }
    }

    /// RSS in bytes, None if the process is gone.
    pub(crate) fn read(&self) -> Option<u64> {
        use std::io::Read;
        let mut buf = [0u8; 128];
        let n = std::fs::File::open(&self.path).ok()?.read(&mut buf).ok()?;
        let text = std::str::from_utf8(buf.get(..n)?).ok()?;
        let pages: u64 = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
        Some(pages * self.page)
    }
}

/// Number of memory mappings (lines of `/proc/<pid>/maps`).
pub(crate) fn maps_of(pid: u32) -> Res<usize> {
    Ok(std::fs::read_to_string(format!("/proc/{pid}/maps"))?
        .lines()
        .count())
}

/// `AnonHugePages` of `pid` from `/proc/<pid>/smaps_rollup`, bytes.
pub(crate) fn anon_huge_of(pid: u32) -> Res<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("AnonHugePages:"))
        .and_then(|v| v.split_whitespace().next())
        .ok_or("no AnonHugePages in smaps_rollup")?
        .parse()?;
    Ok(kb * 1024)
}

/// User + system CPU seconds of `pid` from `/proc/<pid>/stat`.
pub(crate) fn cpu_seconds_of(pid: u32) -> Res<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let utime: f64 = fields.get(11).ok_or("short stat")?.parse()?;
    let stime: f64 = fields.get(12).ok_or("short stat")?.parse()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok((utime + stime) / (hz.max(1) as f64))
}

/// A Start for `memory_mb` MiB held until stopped, with `payload_kb` payloads; other fields
/// default.
pub(crate) fn start_request(memory_mb: u64, payload_kb: u32) -> pb::StartRequest {
    pb::StartRequest {
        target: Some(pb::start_request::Target::MemoryMb(memory_mb)),
        duration_seconds: Some(0),
        payload_size_kb: Some(payload_kb),
        ..Default::default()
    }
}

/// State of a Status response.
pub(crate) fn state_of(s: &pb::StatusResponse) -> pb::State {
    pb::State::try_from(s.state).unwrap_or(pb::State::Unspecified)
}

async fn within<T>(
    what: &str,
    fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Res<T> {
    match tokio::time::timeout(RPC_TIMEOUT, fut).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(status)) => Err(format!("{what} failed: {status}").into()),
        Err(_) => Err(format!("{what} did not answer within {RPC_TIMEOUT:?}").into()),
    }
}

/// Start RPC.
pub(crate) async fn start(c: &mut Client, req: pb::StartRequest) -> Res<pb::StartResponse> {
    within("Start", c.start(req)).await
}

/// Stop RPC.
pub(crate) async fn stop(c: &mut Client) -> Res<pb::StopResponse> {
    within("Stop", c.stop(pb::StopRequest {})).await
}

/// Clear RPC.
pub(crate) async fn clear(c: &mut Client) -> Res<pb::ClearResponse> {
    within("Clear", c.clear(pb::ClearRequest {})).await
}

/// Status RPC.
pub(crate) async fn status(c: &mut Client) -> Res<pb::StatusResponse> {
    within("Status", c.status(pb::StatusRequest {})).await
}

/// Log entries stressd still keeps: (count, total message bytes), via WatchLogs(follow=false).
pub(crate) async fn kept_logs(c: &mut Client) -> Res<(u64, u64)> {
    let mut stream = within(
        "WatchLogs",
        c.watch_logs(pb::WatchLogsRequest {
            from_sequence: 0,
            follow: false,
        }),
    )
    .await?;
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Some(e) = tokio::time::timeout(RPC_TIMEOUT, stream.message())
        .await
        .map_err(|_| "WatchLogs stalled")??
    {
        n += 1;
        bytes += e.message.len() as u64;
    }
    Ok((n, bytes))
}

/// Polls Status every `period` until `pred` holds; fails after `timeout` or if the run failed.
pub(crate) async fn wait_status(
    c: &mut Client,
    period: Duration,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&pb::StatusResponse) -> bool,
) -> Res<pb::StatusResponse> {
    let t0 = Instant::now();
    loop {
        let s = status(c).await?;
        if pred(&s) {
            return Ok(s);
        }
        if state_of(&s) == pb::State::Failed {
            return Err(format!("run failed while waiting for {what}: {}", s.last_error).into());
        }
        if t0.elapsed() > timeout {
            return Err(format!(
                "timed out after {timeout:?} waiting for {what} (state {:?}, rss {} MiB)",
                state_of(&s),
                s.rss_bytes / MIB
            )
            .into());
        }
        tokio::time::sleep(period).await;
    }
}

/// Waits until the run holds its target (SEARCHING).
pub(crate) async fn wait_searching(c: &mut Client, timeout: Duration) -> Res<pb::StatusResponse> {
    wait_status(c, Duration::from_millis(5), timeout, "SEARCHING", |s| {
        state_of(s) == pb::State::Searching
    })
    .await
}
