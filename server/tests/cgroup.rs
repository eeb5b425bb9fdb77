//! Proven on a real kernel: stressd inside a child cgroup-v1 memory cgroup limited to 512 MiB.
//!
//! Needs root and a cgroup v1 memory controller (as on CI). It fails loudly, never skips, when
//! it cannot create the cgroup. The cgroup is removed on the way out, also when an assertion
//! fails (Drop runs while unwinding).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use memstress_proto::v1 as pb;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: u64 = 512 * MIB;

fn v1_memory_mount() -> PathBuf {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split_whitespace();
        let (Some(fstype), _, Some(opts)) = (post.next(), post.next(), post.next()) else {
            continue;
        };
        if fstype == "cgroup" && opts.split(',').any(|o| o == "memory") {
            return PathBuf::from(pre.split_whitespace().nth(4).unwrap());
        }
    }
    panic!(
        "no cgroup v1 memory controller is mounted on this machine; this test needs one (CI has it). \
         /proc/self/mountinfo:\n{mountinfo}"
    );
}

struct TestCgroup {
    dir: PathBuf,
}

impl TestCgroup {
    fn create(limit: u64) -> Self {
        let dir = v1_memory_mount().join(format!("memstress-it-{}", std::process::id()));
        if dir.exists() {
            Self::remove(&dir);
        }
        std::fs::create_dir(&dir).unwrap_or_else(|e| {
            panic!(
                "cannot create cgroup {}: {e} (this test needs root)",
                dir.display()
            )
        });
        let cg = Self { dir };
        cg.write("memory.limit_in_bytes", &limit.to_string());
        cg
    }

    fn write(&self, file: &str, value: &str) {
        std::fs::write(self.dir.join(file), value)
            .unwrap_or_else(|e| panic!("write {value} to {file}: {e}"));
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap()
    }

    fn oom_kills(&self) -> u64 {
        self.read("memory.oom_control")
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok())
            .expect("oom_kill in memory.oom_control (kernel >= 4.13)")
    }

    /// Runs `program args` inside this cgroup from its first instruction on.
    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#)
            .arg(&self.dir)
            .arg(program)
            .args(args);
        cmd
    }

    fn remove(dir: &Path) {
        for _ in 0..100 {
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in procs
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    // SAFETY: kill(2) on processes this test put in its own cgroup.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("warning: could not remove {}", dir.display());
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        Self::remove(&self.dir);
    }
}

fn within(value: u64, target: u64, pct: f64) -> bool {
    (value as f64 - target as f64).abs() <= target as f64 * pct / 100.0
}

struct Hog(Child);
impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stressd_in_a_512mib_v1_cgroup() {
    let cg = TestCgroup::create(LIMIT);
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap();
    let stressd_in_cgroup = || {
        let mut cmd = cg.command(
            &bin("stressd"),
            &[
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--state-dir",
                state_dir,
            ],
        );
        cmd.env_remove("MEMORY_LIMIT_BYTES").stdout(Stdio::piped());
        Stressd::from_command(cmd)
    };
    let mut d = stressd_in_cgroup();
    let mut c = d.client().await;

    // 1. the basis is the cgroup's limit, read from cgroup v1
    let s = status(&mut c).await;
    let basis = s.basis.clone().unwrap();
    assert_eq!(basis.limit_bytes, LIMIT, "{basis:?}");
    assert_eq!(basis.source, pb::BasisSource::CgroupV1 as i32, "{basis:?}");
    let container = s.container.clone().unwrap();
    assert_eq!(container.cgroup_version, "v1");
    assert_eq!(container.limit_bytes, Some(LIMIT));
    println!("basis: {} bytes from {}", basis.limit_bytes, basis.detail);

    // 2. memory_percent 50 lands at 256 MiB of process RSS
    let r = c
        .start(pb::StartRequest {
            target: Some(pb::start_request::Target::MemoryPercent(50.0)),
            duration_seconds: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.target_bytes, LIMIT / 2);
    wait_state(&mut c, pb::State::Searching, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let landed = d.rss();
    println!(
        "memory_percent 50: landed RSS {:.1} MiB (target 256 MiB)",
        landed as f64 / MIB as f64
    );
    assert!(within(landed, LIMIT / 2, 5.0), "RSS {landed}");
    c.clear(pb::ClearRequest {}).await.unwrap();

    // 3. CONTAINER scope holds the working set while another process takes 100 MiB
    c.start(pb::StartRequest {
        target: Some(pb::start_request::Target::MemoryPercent(50.0)),
        duration_seconds: Some(0),
        scope: pb::Scope::Container as i32,
        ..Default::default()
    })
    .await
    .unwrap();
    wait_state(&mut c, pb::State::Searching, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = status(&mut c).await;
    let ws0 = s.container.as_ref().unwrap().working_set_bytes.unwrap();
    let rss0 = d.rss();
    assert!(within(ws0, LIMIT / 2, 5.0), "working set {ws0}");
    let hog = Hog(cg
        .command(
            Path::new("python3"),
            &[
                "-c",
                "import sys,time; b = b'x' * (100 << 20); print('ok', flush=True); time.sleep(120)",
            ],
        )
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 for the second process"));
    // wait until the hog holds its memory and the hold has reacted
    let t0 = Instant::now();
    let (ws1, rss1) = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let s = status(&mut c).await;
        let ws = s.container.as_ref().unwrap().working_set_bytes.unwrap();
        let rss = d.rss();
        if rss + 80 * MIB <= rss0 && within(ws, LIMIT / 2, 2.0) {
            break (ws, rss);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "hold did not shrink: ws {ws} rss {rss} (before: ws {ws0} rss {rss0})"
        );
    };
    println!(
        "container hold: working set {:.1} -> {:.1} MiB, stressd RSS {:.1} -> {:.1} MiB with a 100 MiB neighbour",
        ws0 as f64 / MIB as f64,
        ws1 as f64 / MIB as f64,
        rss0 as f64 / MIB as f64,
        rss1 as f64 / MIB as f64
    );
    drop(hog);
    c.clear(pb::ClearRequest {}).await.unwrap();

    // 4. a target at or above the limit is refused
    let err = c.start(start_mb(600)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("OOM-killed"), "{}", err.message());

    // 5. with allow_oom the kernel kills stressd and the cgroup counts it
    let kills_before = cg.oom_kills();
    c.start(pb::StartRequest {
        allow_oom: true,
        duration_seconds: Some(0),
        ..start_mb(600)
    })
    .await
    .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = d.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "stressd was not OOM-killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    let kills_after = cg.oom_kills();
    println!(
        "allow_oom: stressd killed by SIGKILL; cgroup oom_kill {kills_before} -> {kills_after}"
    );
    assert!(kills_after > kills_before);

    // 6. a new stressd in the same cgroup on the same state dir reports the OOM kill, confirmed
    //    by the cgroup's counter, with the peak it reached
    drop(d);
    let d = stressd_in_cgroup();
    let (code, out, err) = stressctl(&d.grpc, &["--output", "json", "history", "--limit", "1"]);
    assert_eq!(code, 0, "{out} {err}");
    let doc: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let run = &doc["runs"][0];
    assert_eq!(run["outcome"], "OUTCOME_OOM_KILLED", "{run}");
    assert_eq!(run["evidence"], "EVIDENCE_OOM_COUNTER", "{run}");
    let peak_ws = run["peak_working_set_bytes"].as_u64().unwrap_or(0);
    let peak_rss = run["peak_rss_bytes"].as_u64().unwrap_or(0);
    let peak = peak_ws.max(peak_rss);
    println!(
        "after the OOM kill: {} (peak working set {:.1} MiB, peak RSS {:.1} MiB)",
        run["outcome_message"],
        peak_ws as f64 / MIB as f64,
        peak_rss as f64 / MIB as f64
    );
    assert!(
        within(peak, LIMIT, 5.0),
        "peak {peak} within 5 % of {LIMIT}"
    );
    d.wait_line("was OOM-killed at");
    let text = d.stdout_text();
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.contains("was OOM-killed at") && l.contains("confirmed")),
        "the first line after startup says it:\n{text}"
    );
}
