//! Proven on a real kernel: stressd inside a child memory cgroup limited to 512 MiB, on cgroup v1
//! and on cgroup v2, with the same steps and assertions on both.
//!
//! The host is detected from `/proc/self/mountinfo` and `/proc/self/cgroup`, the way stressd
//! resolves its own cgroup (`server/src/cgroup.rs`): a mounted v1 memory controller wins (on a
//! hybrid host the memory controller is bound to v1, and a controller can be bound to only one
//! hierarchy); else a cgroup2 mount whose root's `cgroup.controllers` lists `memory`. Only the
//! file names differ between the versions:
//!
//! | | v1 | v2 |
//! |---|---|---|
//! | limit | `memory.limit_in_bytes` | `memory.max` |
//! | OOM kills | `oom_kill` in `memory.oom_control` | `oom_kill` in `memory.events` |
//! | joining | `cgroup.procs` | `cgroup.procs` |
//!
//! Needs root. Without root, or without a usable memory controller, it prints
//! `SKIPPED: <reason>; run as root on a host with a cgroup memory controller: cargo test -p
//! memstress-server --test cgroup` and passes, except when `CI=true`: then it fails with the
//! reason, because CI must prove it. The cgroup is removed on the way out, also when an
//! assertion fails (Drop runs while unwinding).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use memstress_proto::v1 as pb;
use memstress_proto::v1::stress_service_client::StressServiceClient;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const LIMIT: u64 = 512 * MIB;
const TEST_COMMAND: &str = "cargo test -p memstress-server --test cgroup";

// ---- host detection: pure functions over the text of /proc/self/{mountinfo,cgroup} ----

/// Where the test can put a memory cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    /// The memory controller is on a v1 hierarchy mounted at `mount`.
    V1 { mount: PathBuf },
    /// A cgroup2 hierarchy mounted at `mount` whose root (the cgroup `mount_root`) lists
    /// `memory` in `cgroup.controllers`; `own` is this process's cgroup (the `0::` line).
    V2 {
        mount: PathBuf,
        mount_root: String,
        own: Option<String>,
    },
}

impl Host {
    fn describe(&self) -> String {
        match self {
            Host::V1 { mount } => {
                format!(
                    "a cgroup v1 memory controller mounted at {}",
                    mount.display()
                )
            }
            Host::V2 {
                mount,
                mount_root,
                own,
            } => format!(
                "a cgroup2 hierarchy with the memory controller mounted at {} (mount root {mount_root}, this process in {})",
                mount.display(),
                own.as_deref().unwrap_or("an unknown cgroup")
            ),
        }
    }
}

/// The fields of a mountinfo line the detection needs.
#[derive(Debug)]
struct MountLine {
    root: String,
    mount_point: PathBuf,
    fstype: String,
    super_opts: String,
}

/// `/proc/self/mountinfo`: `id parent major:minor root mount-point opts [optional...] - fstype
/// source super-opts`.
fn mount_lines(mountinfo: &str) -> Vec<MountLine> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split_whitespace().collect();
            let mut post = post.split_whitespace();
            let (fstype, _source, super_opts) = (post.next()?, post.next()?, post.next()?);
            Some(MountLine {
                root: unescape_mountinfo(pre.get(3)?),
                mount_point: PathBuf::from(unescape_mountinfo(pre.get(4)?)),
                fstype: fstype.to_string(),
                super_opts: super_opts.to_string(),
            })
        })
        .collect()
}

/// The kernel escapes space, tab, newline and backslash in mountinfo paths as `\ooo`;
/// `\134` goes last so a decoded backslash is not decoded again.
fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Whether cgroup `path` is `root` or below it.
fn path_contains(root: &str, path: &str) -> bool {
    let root = root.trim_end_matches('/');
    path == root || path.strip_prefix(root).is_some_and(|r| r.starts_with('/'))
}

/// Detects the host. `controllers` reads `cgroup.controllers` at a cgroup2 mount point (`None`
/// when unreadable). The error is the precise reason there is nothing to use.
fn detect_host(
    mountinfo: &str,
    proc_cgroup: &str,
    controllers: impl Fn(&Path) -> Option<String>,
) -> Result<Host, String> {
    let mounts = mount_lines(mountinfo);
    let v1_memory =
        |m: &&MountLine| m.fstype == "cgroup" && m.super_opts.split(',').any(|o| o == "memory");
    if let Some(m) = mounts.iter().find(v1_memory) {
        return Ok(Host::V1 {
            mount: m.mount_point.clone(),
        });
    }
    let own = proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .filter(|p| p.starts_with('/'));
    let mut v2: Vec<&MountLine> = mounts.iter().filter(|m| m.fstype == "cgroup2").collect();
    // The mount whose root holds this process's cgroup first: it shows the part of the
    // hierarchy this process lives in, so cgroups created under it are ones stressd can map
    // from its own `0::` line (a mount of another subtree, bind-mounted in, may not be).
    v2.sort_by_key(|m| !own.is_some_and(|o| path_contains(&m.root, o)));
    let mut v2_seen = Vec::new();
    for m in &v2 {
        match controllers(&m.mount_point) {
            Some(c) if c.split_whitespace().any(|c| c == "memory") => {
                return Ok(Host::V2 {
                    mount: m.mount_point.clone(),
                    mount_root: m.root.clone(),
                    own: own.map(str::to_string),
                });
            }
            Some(c) => v2_seen.push(format!(
                "{}, whose cgroup.controllers is \"{}\"",
                m.mount_point.display(),
                c.trim()
            )),
            None => v2_seen.push(format!(
                "{}, whose cgroup.controllers is unreadable",
                m.mount_point.display()
            )),
        }
    }
    let v1_seen: Vec<String> = mounts
        .iter()
        .filter(|m| m.fstype == "cgroup")
        .map(|m| format!("{} ({})", m.mount_point.display(), m.super_opts))
        .collect();
    if v1_seen.is_empty() && v2_seen.is_empty() {
        return Err("/proc/self/mountinfo has no cgroup or cgroup2 mount".to_string());
    }
    let list = |seen: &[String]| {
        if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join(", ")
        }
    };
    let mut reason = format!(
        "/proc/self/mountinfo has no cgroup v1 mount with the memory controller (v1 mounts: {}) \
         and no cgroup2 mount whose cgroup.controllers lists memory (cgroup2 mounts: {})",
        list(&v1_seen),
        list(&v2_seen)
    );
    // A v1 memory line in /proc/self/cgroup says where the controller went.
    if let Some(line) = proc_cgroup.lines().find(|l| {
        let mut f = l.splitn(3, ':');
        f.next().is_some_and(|id| id != "0")
            && f.next()
                .is_some_and(|c| c.split(',').any(|c| c == "memory"))
    }) {
        reason.push_str(&format!(
            "; /proc/self/cgroup has \"{line}\": the memory controller is bound to a v1 hierarchy that is not mounted here"
        ));
    }
    Err(reason)
}

/// Where to create the v2 test cgroup, in order of preference: the cgroup2 mount root, then
/// the parent of this process's own cgroup (a systemd slice, say, which already enables
/// memory for its children) when that is a different directory.
fn v2_parents(mount: &Path, mount_root: &str, own: Option<&str>) -> Vec<PathBuf> {
    let mut out = vec![mount.to_path_buf()];
    if let Some(own) = own
        && path_contains(mount_root, own)
    {
        let skip = mount_root.split('/').filter(|c| !c.is_empty()).count();
        let rel: Vec<&str> = own
            .split('/')
            .filter(|c| !c.is_empty())
            .skip(skip)
            .collect();
        if rel.len() >= 2 && !rel.iter().any(|c| *c == "." || *c == "..") {
            out.push(
                rel[..rel.len() - 1]
                    .iter()
                    .fold(mount.to_path_buf(), |p, c| p.join(c)),
            );
        }
    }
    out
}

// ---- the test cgroup ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Version {
    fn label(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }

    fn basis_source(self) -> pb::BasisSource {
        match self {
            Version::V1 => pb::BasisSource::CgroupV1,
            Version::V2 => pb::BasisSource::CgroupV2,
        }
    }

    /// The flat-keyed file with the `oom_kill` counter (v1: kernel >= 4.13).
    fn oom_file(self) -> &'static str {
        match self {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        }
    }
}

struct TestCgroup {
    dir: PathBuf,
    version: Version,
}

impl TestCgroup {
    /// Creates `parent/memstress-it-<pid>`. From here on Drop removes it, so a failure later in
    /// the setup cleans up too.
    fn mkdir(parent: &Path, version: Version) -> Result<Self, String> {
        let dir = parent.join(format!("memstress-it-{}", std::process::id()));
        if dir.exists() {
            Self::remove(&dir);
        }
        std::fs::create_dir(&dir)
            .map_err(|e| format!("creating the cgroup {} failed: {e}", dir.display()))?;
        Ok(Self { dir, version })
    }

    /// v1: no rule about processes and children, so the cgroup goes right under the mount.
    fn create_v1(mount: &Path, limit: u64) -> Result<Self, String> {
        let cg = Self::mkdir(mount, Version::V1)?;
        cg.try_write("memory.limit_in_bytes", &limit.to_string())?;
        // With swap, the kernel would swap stressd out rather than OOM-kill it at the limit;
        // memory+swap gets the same limit (the file exists only with swap accounting).
        if cg.dir.join("memory.memsw.limit_in_bytes").exists() {
            cg.try_write("memory.memsw.limit_in_bytes", &limit.to_string())?;
        }
        Ok(cg)
    }

    /// v2: a cgroup has the memory files only if its parent lists `memory` in
    /// `cgroup.subtree_control`, and the "no internal processes" rule lets a cgroup enable
    /// controllers for its children only while no process lives in it (the root cgroup is
    /// exempt). So:
    /// - the parent gets `+memory` if it lacks it. On a systemd host the mount root is the
    ///   real root and already has it; inside a container the mount root is the namespace's
    ///   root, usually holding the container's processes, and then the write fails with EBUSY
    ///   (the reason says so; this test does not move other processes around to fix that);
    /// - the new cgroup is a leaf for the test's child processes (stressd, its python
    ///   neighbour): its own `cgroup.subtree_control` stays empty, so processes may live in it.
    ///
    /// `+memory` written to a parent stays: other cgroups may come to rely on it.
    fn create_v2(parent: &Path, limit: u64) -> Result<Self, String> {
        let read = |name: &str| {
            std::fs::read_to_string(parent.join(name))
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("reading {}/{name} failed: {e}", parent.display()))
        };
        let has_memory = |s: &str| s.split_whitespace().any(|c| c == "memory");
        let controllers = read("cgroup.controllers")?;
        if !has_memory(&controllers) {
            return Err(format!(
                "{}/cgroup.controllers is \"{controllers}\", without memory",
                parent.display()
            ));
        }
        if !has_memory(&read("cgroup.subtree_control")?) {
            std::fs::write(parent.join("cgroup.subtree_control"), "+memory").map_err(|e| {
                let busy = if e.raw_os_error() == Some(libc::EBUSY) {
                    let procs = read("cgroup.procs").unwrap_or_default();
                    format!(
                        " ({} processes live in it and it is not the root cgroup: cgroup v2 lets \
                         only a cgroup without processes enable controllers for its children)",
                        procs.lines().count()
                    )
                } else {
                    String::new()
                };
                format!(
                    "writing +memory to {}/cgroup.subtree_control failed: {e}{busy}",
                    parent.display()
                )
            })?;
            println!(
                "enabled the memory controller for the children of {} (left enabled)",
                parent.display()
            );
        }
        let cg = Self::mkdir(parent, Version::V2)?;
        if !cg.dir.join("memory.max").exists() {
            return Err(format!(
                "{} has no memory.max although its parent enables memory",
                cg.dir.display()
            ));
        }
        cg.try_write("memory.max", &limit.to_string())?;
        // With swap, memory.max alone lets the kernel swap stressd out instead of OOM-killing
        // it at the limit (the file exists only with swap accounting).
        if cg.dir.join("memory.swap.max").exists() {
            cg.try_write("memory.swap.max", "0")?;
        }
        Ok(cg)
    }

    fn try_write(&self, file: &str, value: &str) -> Result<(), String> {
        std::fs::write(self.dir.join(file), value).map_err(|e| {
            format!(
                "writing {value} to {}/{file} failed: {e}",
                self.dir.display()
            )
        })
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap()
    }

    fn oom_kills(&self) -> u64 {
        let file = self.version.oom_file();
        self.read(file)
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("oom_kill in {file} (on v1: kernel >= 4.13)"))
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

/// Detects the host and creates the limited test cgroup, or says precisely why not.
fn setup(limit: u64) -> Result<TestCgroup, String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo failed: {e}"))?;
    let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let host = detect_host(&mountinfo, &proc_cgroup, |mount| {
        std::fs::read_to_string(mount.join("cgroup.controllers")).ok()
    });
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        let found = match &host {
            Ok(h) => format!("found {}", h.describe()),
            Err(reason) => reason.clone(),
        };
        return Err(format!(
            "not running as root (euid {euid}), and creating a cgroup needs root; {found}"
        ));
    }
    let host = host?;
    println!("host: {}", host.describe());
    match &host {
        Host::V1 { mount } => TestCgroup::create_v1(mount, limit)
            .map_err(|e| format!("found {}, but {e}", host.describe())),
        Host::V2 {
            mount,
            mount_root,
            own,
        } => {
            let mut failures = Vec::new();
            for parent in v2_parents(mount, mount_root, own.as_deref()) {
                match TestCgroup::create_v2(&parent, limit) {
                    Ok(cg) => return Ok(cg),
                    Err(e) => failures.push(e),
                }
            }
            Err(format!(
                "found {}, but {}",
                host.describe(),
                failures.join("; and ")
            ))
        }
    }
}

/// The test cgroup; or `None` after `common::skip` said why (on CI it panics instead).
fn test_cgroup_or_skip(limit: u64) -> Option<TestCgroup> {
    match setup(limit) {
        Ok(cg) => Some(cg),
        Err(reason) => {
            skip(
                "cgroup::stressd_in_a_512mib_memory_cgroup",
                &reason,
                &format!(
                    "sudo {TEST_COMMAND} (as root, on a host with a cgroup memory controller)"
                ),
            );
            None
        }
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

/// CONTAINER scope with `workload`: the working set is brought to half the limit and held
/// there while a neighbour process in the same cgroup takes 100 MiB (the hold gives that much
/// back), with keep hot on and the hold activity paced.
async fn container_hold(
    d: &Stressd,
    c: &mut StressServiceClient<Channel>,
    cg: &TestCgroup,
    workload: pb::Workload,
) {
    c.start(pb::StartRequest {
        target: Some(pb::start_request::Target::MemoryPercent(50.0)),
        duration_seconds: Some(0),
        scope: pb::Scope::Container as i32,
        workload: workload as i32,
        keep_hot: true,
        search_rate: Some(500),
        log_interval_seconds: Some(1),
        ..Default::default()
    })
    .await
    .unwrap();
    wait_state(c, pb::State::Searching, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = status(c).await;
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
        let s = status(c).await;
        let ws = s.container.as_ref().unwrap().working_set_bytes.unwrap();
        let rss = d.rss();
        if rss + 80 * MIB <= rss0 && within(ws, LIMIT / 2, 2.0) {
            break (ws, rss);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "{workload:?} hold did not shrink: ws {ws} rss {rss} (before: ws {ws0} rss {rss0})"
        );
    };
    println!(
        "container hold ({workload:?}): working set {:.1} -> {:.1} MiB, stressd RSS {:.1} -> {:.1} MiB with a 100 MiB neighbour",
        ws0 as f64 / MIB as f64,
        ws1 as f64 / MIB as f64,
        rss0 as f64 / MIB as f64,
        rss1 as f64 / MIB as f64
    );
    let s = status(c).await;
    assert_eq!(s.workload, workload as i32);
    assert!(
        s.searches > 0,
        "{workload:?}: the hold ran ({} {})",
        s.searches,
        s.activity_unit
    );
    drop(hog);
    c.clear(pb::ClearRequest {}).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stressd_in_a_512mib_memory_cgroup() {
    let Some(cg) = test_cgroup_or_skip(LIMIT) else {
        return;
    };
    let version = cg.version;
    println!("test cgroup: {} ({})", cg.dir.display(), version.label());
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

    // 1. the basis is the cgroup's limit, read from the cgroup version in use
    let s = status(&mut c).await;
    let basis = s.basis.clone().unwrap();
    assert_eq!(basis.limit_bytes, LIMIT, "{basis:?}");
    assert_eq!(basis.source, version.basis_source() as i32, "{basis:?}");
    let container = s.container.clone().unwrap();
    assert_eq!(container.cgroup_version, version.label());
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

    // 3. CONTAINER scope holds the working set while another process takes 100 MiB, for
    //    every workload, with keep hot and a paced hold running all the while
    for workload in [
        pb::Workload::Tree,
        pb::Workload::List,
        pb::Workload::Hash,
        pb::Workload::Matrix,
    ] {
        container_hold(&d, &mut c, &cg, workload).await;
    }

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
        "allow_oom: stressd killed by SIGKILL; cgroup oom_kill ({}) {kills_before} -> {kills_after}",
        version.oom_file()
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

/// Host detection over mountinfo / cgroup text, no kernel needed.
mod detection {
    use super::*;

    /// This machine (a firecracker VM): v1 controllers, memory among them, plus an empty
    /// cgroup2 hierarchy that has only hugetlb.
    const HYBRID_MOUNTINFO: &str = "\
22 1 253:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
4:memory:/process_api/e47438671bcc273d82b824ed4102bd0c
3:cpuset:/
1:cpu:/
0::/
";

    /// CentOS 7 style: v1 only, controllers co-mounted, optional fields before the separator.
    const V1_ONLY_MOUNTINFO: &str = "\
25 19 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpuacct,cpu
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
";
    const V1_ONLY_CGROUP: &str = "\
11:memory:/user.slice
3:cpuacct,cpu:/user.slice
1:name=systemd:/user.slice/user-0.slice/session-1.scope
";

    /// Ubuntu 22.04 style: unified only.
    const V2_MOUNTINFO: &str = "\
24 1 252:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const V2_CGROUP: &str = "0::/user.slice/user-0.slice/session-3.scope\n";
    const V2_CONTROLLERS: &str = "cpuset cpu io memory hugetlb pids rdma misc\n";

    fn controllers<'a>(at: &'a [(&'a str, &'a str)]) -> impl Fn(&Path) -> Option<String> + 'a {
        |mount| {
            at.iter()
                .find(|(m, _)| Path::new(m) == mount)
                .map(|(_, c)| (*c).to_string())
        }
    }

    fn never(_: &Path) -> Option<String> {
        panic!("cgroup.controllers must not be consulted when v1 has memory")
    }

    #[test]
    fn v1_only() {
        assert_eq!(
            detect_host(V1_ONLY_MOUNTINFO, V1_ONLY_CGROUP, never),
            Ok(Host::V1 {
                mount: "/sys/fs/cgroup/memory".into()
            })
        );
    }

    #[test]
    fn hybrid_with_memory_on_v1() {
        // The cgroup2 hierarchy is not even looked at: memory is on v1.
        assert_eq!(
            detect_host(HYBRID_MOUNTINFO, HYBRID_CGROUP, never),
            Ok(Host::V1 {
                mount: "/sys/fs/cgroup/memory".into()
            })
        );
    }

    #[test]
    fn v1_inside_a_container_mount_root() {
        let mi =
            "700 690 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n";
        assert_eq!(
            detect_host(mi, "4:memory:/docker/abc\n0::/\n", never),
            Ok(Host::V1 {
                mount: "/sys/fs/cgroup/memory".into()
            })
        );
    }

    #[test]
    fn hybrid_with_memory_on_v2() {
        let mi = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        let host = detect_host(
            mi,
            "1:cpu:/\n0::/\n",
            controllers(&[("/sys/fs/cgroup/unified", "memory pids\n")]),
        );
        assert_eq!(
            host,
            Ok(Host::V2 {
                mount: "/sys/fs/cgroup/unified".into(),
                mount_root: "/".into(),
                own: Some("/".into()),
            })
        );
        // In the root cgroup there is no parent of our own to fall back to.
        assert_eq!(
            v2_parents(Path::new("/sys/fs/cgroup/unified"), "/", Some("/")),
            vec![PathBuf::from("/sys/fs/cgroup/unified")]
        );
    }

    #[test]
    fn v2_only_with_memory() {
        let host = detect_host(
            V2_MOUNTINFO,
            V2_CGROUP,
            controllers(&[("/sys/fs/cgroup", V2_CONTROLLERS)]),
        );
        assert_eq!(
            host,
            Ok(Host::V2 {
                mount: "/sys/fs/cgroup".into(),
                mount_root: "/".into(),
                own: Some("/user.slice/user-0.slice/session-3.scope".into()),
            })
        );
        assert_eq!(
            host.unwrap().describe(),
            "a cgroup2 hierarchy with the memory controller mounted at /sys/fs/cgroup \
             (mount root /, this process in /user.slice/user-0.slice/session-3.scope)"
        );
        // The mount root first, then the slice holding our session scope.
        assert_eq!(
            v2_parents(
                Path::new("/sys/fs/cgroup"),
                "/",
                Some("/user.slice/user-0.slice/session-3.scope")
            ),
            vec![
                PathBuf::from("/sys/fs/cgroup"),
                PathBuf::from("/sys/fs/cgroup/user.slice/user-0.slice"),
            ]
        );
    }

    #[test]
    fn v2_only_without_memory() {
        let err = detect_host(
            V2_MOUNTINFO,
            V2_CGROUP,
            controllers(&[("/sys/fs/cgroup", "cpuset cpu io pids\n")]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "/proc/self/mountinfo has no cgroup v1 mount with the memory controller (v1 mounts: \
             none) and no cgroup2 mount whose cgroup.controllers lists memory (cgroup2 mounts: \
             /sys/fs/cgroup, whose cgroup.controllers is \"cpuset cpu io pids\")"
        );
        let err = detect_host(V2_MOUNTINFO, V2_CGROUP, |_| None).unwrap_err();
        assert!(
            err.ends_with(
                "(cgroup2 mounts: /sys/fs/cgroup, whose cgroup.controllers is unreadable)"
            ),
            "{err}"
        );
    }

    #[test]
    fn memory_bound_to_an_unmounted_v1_hierarchy() {
        // This machine with the v1 memory mount gone: memory stays bound to v1 (the
        // `4:memory:` line), so the cgroup2 hierarchy cannot have it.
        let mi: String = HYBRID_MOUNTINFO
            .lines()
            .filter(|l| !l.contains("/sys/fs/cgroup/memory "))
            .map(|l| format!("{l}\n"))
            .collect();
        let err = detect_host(
            &mi,
            HYBRID_CGROUP,
            controllers(&[("/sys/fs/cgroup/unified", "hugetlb\n")]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "/proc/self/mountinfo has no cgroup v1 mount with the memory controller (v1 mounts: \
             /sys/fs/cgroup/cpu (rw,cpu), /sys/fs/cgroup/cpuacct (rw,cpuacct), \
             /sys/fs/cgroup/cpuset (rw,cpuset), /sys/fs/cgroup/devices (rw,devices), \
             /sys/fs/cgroup/systemd (rw,name=systemd)) and no cgroup2 mount whose \
             cgroup.controllers lists memory (cgroup2 mounts: /sys/fs/cgroup/unified, whose \
             cgroup.controllers is \"hugetlb\"); /proc/self/cgroup has \
             \"4:memory:/process_api/e47438671bcc273d82b824ed4102bd0c\": the memory controller \
             is bound to a v1 hierarchy that is not mounted here"
        );
    }

    #[test]
    fn no_cgroup_mounts_at_all() {
        let mi = "22 1 253:0 / / rw,relatime - ext4 /dev/vda rw\n\
                  23 22 0:5 / /proc rw - proc proc rw\n";
        assert_eq!(
            detect_host(mi, "", never),
            Err("/proc/self/mountinfo has no cgroup or cgroup2 mount".to_string())
        );
    }

    #[test]
    fn v2_prefers_the_mount_holding_our_cgroup_and_decodes_escapes() {
        // A container bind-mounts someone else's cgroup first; ours is under the second mount,
        // whose mount point has a space (\040). `name=memory` is not the memory controller.
        let mi = "\
50 40 0:40 / /named rw - cgroup none rw,name=memory
51 40 0:30 /other /sys/fs/cgroup/other rw - cgroup2 cgroup2 rw
52 40 0:30 /kubepods/pod1 /sys/fs/my\\040cg rw - cgroup2 cgroup2 rw
";
        let host = detect_host(
            mi,
            "0::/kubepods/pod1/ctr\n",
            controllers(&[
                ("/sys/fs/cgroup/other", "memory"),
                ("/sys/fs/my cg", "cpu memory"),
            ]),
        );
        assert_eq!(
            host,
            Ok(Host::V2 {
                mount: "/sys/fs/my cg".into(),
                mount_root: "/kubepods/pod1".into(),
                own: Some("/kubepods/pod1/ctr".into()),
            })
        );
        // Our own cgroup sits right under the mount root: its parent is the mount itself.
        assert_eq!(
            v2_parents(
                Path::new("/sys/fs/my cg"),
                "/kubepods/pod1",
                Some("/kubepods/pod1/ctr")
            ),
            vec![PathBuf::from("/sys/fs/my cg")]
        );
        assert_eq!(
            v2_parents(
                Path::new("/sys/fs/my cg"),
                "/kubepods/pod1",
                Some("/kubepods/pod1/a/b")
            ),
            vec![
                PathBuf::from("/sys/fs/my cg"),
                PathBuf::from("/sys/fs/my cg/a")
            ]
        );
        // Outside the mount root (another namespace) or escaping upwards: no second candidate.
        assert_eq!(
            v2_parents(Path::new("/sys/fs/my cg"), "/kubepods/pod1", Some("/x/y/z")).len(),
            1
        );
        assert_eq!(
            v2_parents(Path::new("/sys/fs/cgroup"), "/", Some("/../a/b")).len(),
            1
        );
    }

    #[test]
    fn path_containment_is_component_wise() {
        assert!(path_contains("/", "/a"));
        assert!(path_contains("/a", "/a"));
        assert!(path_contains("/a/", "/a/b"));
        assert!(!path_contains("/a", "/ab"));
        assert!(!path_contains("/a/b", "/a"));
    }

    /// What this machine is: printed for the record, asserted only to be consistent.
    #[test]
    fn this_machine() {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let host = detect_host(&mountinfo, &proc_cgroup, |mount| {
            std::fs::read_to_string(mount.join("cgroup.controllers")).ok()
        });
        match &host {
            Ok(h) => println!("this machine: {}", h.describe()),
            Err(reason) => println!("this machine: {reason}"),
        }
        if let Ok(Host::V1 { mount }) = &host {
            assert!(mount.join("memory.limit_in_bytes").exists() || !mount.exists());
        }
    }
}
