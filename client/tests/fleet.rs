//! stressctl against several real stressd at once: three on 127.0.0.2, 127.0.0.3 and
//! 127.0.0.4, all on the same port, reached by repeated --addr and by one name that the
//! system resolver turns into all three (lines added to /etc/hosts, which needs root; without
//! root that part is SKIPPED, never under CI=true).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::stressctl_raw;
use common::stressd::{Stressd, temp_dir};

const IPS: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
/// Pod names given through POD_NAME: the third has none, so it is shown by its address.
const PODS: [Option<&str>; 3] = [Some("fleet-a"), Some("fleet-b"), None];

/// Three stressd on the same port of three loopback addresses.
struct Fleet {
    port: u16,
    daemons: Vec<Option<Stressd>>,
    dirs: Vec<std::path::PathBuf>,
}

impl Fleet {
    fn start(tag: &str) -> Fleet {
        for _ in 0..10 {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
                l.local_addr().unwrap().port()
            };
            let dirs: Vec<_> = (0..3).map(|i| temp_dir(&format!("{tag}-{i}"))).collect();
            let daemons: Vec<Option<Stressd>> = (0..3)
                .map(|i| Stressd::start(&format!("{}:{port}", IPS[i]), &dirs[i], PODS[i]))
                .collect();
            if daemons.iter().all(Option::is_some) {
                return Fleet {
                    port,
                    daemons,
                    dirs,
                };
            }
        }
        panic!("no port free on all of 127.0.0.2-4");
    }

    fn addr(&self, i: usize) -> String {
        format!("{}:{}", IPS[i], self.port)
    }

    fn restart(&mut self, i: usize) {
        self.daemons[i] = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(d) = Stressd::start(&self.addr(i), &self.dirs[i], PODS[i]) {
                self.daemons[i] = Some(d);
                return;
            }
            assert!(Instant::now() < deadline, "stressd {i} did not restart");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.daemons.clear();
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Lines appended to /etc/hosts, removed again when dropped (also on a failed assertion);
/// only this guard's lines go, whatever else changed the file meanwhile.
struct HostsGuard {
    name: String,
}

impl HostsGuard {
    fn add(name: &str, ips: &[&str]) -> HostsGuard {
        let mut text = std::fs::read_to_string("/etc/hosts").unwrap();
        if !text.ends_with('\n') && !text.is_empty() {
            text.push('\n');
        }
        for ip in ips {
            text.push_str(&format!("{ip} {name}\n"));
        }
        std::fs::write("/etc/hosts", text).unwrap();
        HostsGuard {
            name: name.to_owned(),
        }
    }
}

impl HostsGuard {
    /// Removes the line mapping this guard's name to `ip`.
    fn remove(&self, ip: &str) {
        let text = std::fs::read_to_string("/etc/hosts").unwrap();
        let kept: String = text
            .lines()
            .filter(|l| {
                let mut w = l.split_whitespace();
                !(w.next() == Some(ip) && w.next() == Some(self.name.as_str()))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write("/etc/hosts", kept).unwrap();
    }

    /// Adds a line mapping this guard's name to `ip`.
    fn append(&self, ip: &str) {
        let mut text = std::fs::read_to_string("/etc/hosts").unwrap();
        text.push_str(&format!("{ip} {}\n", self.name));
        std::fs::write("/etc/hosts", text).unwrap();
    }
}

impl Drop for HostsGuard {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string("/etc/hosts") {
            let kept: String = text
                .lines()
                .filter(|l| l.split_whitespace().nth(1) != Some(self.name.as_str()))
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write("/etc/hosts", kept);
        }
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// The row of `name` in a fleet table.
fn row<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no row for {name} in\n{table}"))
}

/// Repeated --addr: rows, totals, JSON per endpoint, start/stop/clear/health on all; one down
/// gives exit 4 with rows for the others; none reachable gives exit 2.
#[tokio::test]
async fn repeated_addr_fans_out_and_adds_up_exit_codes() {
    let mut fleet = Fleet::start("addr");
    let addrs: Vec<String> = (0..3).map(|i| fleet.addr(i)).collect();
    let with = |cmd: &[&str]| -> Vec<String> {
        let mut v = Vec::new();
        for a in &addrs {
            v.push("--addr".to_owned());
            v.push(a.clone());
        }
        v.extend(cmd.iter().map(|s| (*s).to_owned()));
        v
    };
    let run = |cmd: &[&str]| {
        let args = with(cmd);
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            stressctl_raw(&refs).await
        }
    };

    let r = run(&["start", "--memory-mb", "20", "--duration", "0"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("ENDPOINT"), "{}", r.stdout);
    assert!(
        row(&r.stdout, "fleet-a").contains("20.0 MiB"),
        "{}",
        r.stdout
    );
    assert!(
        row(&r.stdout, "TOTAL 3/3").contains("60.0 MiB"),
        "{}",
        r.stdout
    );

    let r = run(&["status"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for name in ["fleet-a", "fleet-b", &addrs[2]] {
        let line = row(&r.stdout, name);
        assert!(line.contains("20.0 MiB"), "{line}");
        assert!(line.contains("tree"), "{line}");
    }
    assert!(
        row(&r.stdout, "TOTAL 3/3").contains("60.0 MiB"),
        "{}",
        r.stdout
    );
    assert!(row(&r.stdout, "MIN").contains("20.0 MiB"), "{}", r.stdout);
    assert!(row(&r.stdout, "MAX").contains("20.0 MiB"), "{}", r.stdout);

    let r = run(&["status", "-o", "json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let docs: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 3, "{}", r.stdout);
    let mut names: Vec<&str> = docs
        .iter()
        .map(|d| d["endpoint"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, [addrs[2].as_str(), "fleet-a", "fleet-b"]);
    assert!(
        docs.iter()
            .all(|d| d["target_bytes"] == 20u64 << 20 && d["error"].is_null())
    );

    // Kept logs of every endpoint, each line prefixed with its name.
    let r = run(&["logs"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for name in ["fleet-a", "fleet-b", &addrs[2]] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with(name) && l.contains(" START ")),
            "{name} in\n{}",
            r.stdout
        );
    }
    let r = run(&["history"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        row(&r.stdout, "fleet-b").contains("running"),
        "{}",
        r.stdout
    );

    // start --follow on all three: one progress line per endpoint until every run ends.
    let r = run(&["stop"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        row(&r.stdout, "fleet-a").contains("Stopped run"),
        "{}",
        r.stdout
    );
    let r = run(&["start", "--memory-mb", "12", "--duration", "5", "--follow"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for name in ["fleet-a", "fleet-b", &addrs[2]] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with(name) && l.contains("COMPLETED")),
            "{name} completed in\n{}",
            r.stdout
        );
    }

    // The same with --output json: the start documents, then progress documents per endpoint.
    let r = run(&[
        "-o",
        "json",
        "start",
        "--memory-mb",
        "12",
        "--duration",
        "5",
        "--follow",
    ])
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let docs: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for name in ["fleet-a", "fleet-b", addrs[2].as_str()] {
        let last = docs
            .iter()
            .rfind(|d| d["endpoint"] == name && !d["status"].is_null())
            .unwrap_or_else(|| panic!("no progress document of {name}:\n{}", r.stdout));
        assert_eq!(last["status"]["state"], "STATE_COMPLETED", "{last}");
        assert_eq!(last["status"]["run_id"], last["run_id"], "{last}");
    }

    let r = run(&["health"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.matches("SERVING").count(), 6, "{}", r.stdout);

    // One endpoint down: exit 4, its row says why, the others have theirs.
    fleet.daemons[1] = None;
    let r = run(&["status"]).await;
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(
        row(&r.stdout, &addrs[1]).contains("error: cannot reach stressd"),
        "{}",
        r.stdout
    );
    assert!(
        row(&r.stdout, "fleet-a").contains("12.0 MiB"),
        "{}",
        r.stdout
    );
    assert!(
        row(&r.stdout, "TOTAL 2/3").contains("24.0 MiB"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("1 of 3 endpoints failed"), "{}", r.stderr);
    let r = run(&["-o", "json", "stop"]).await;
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    let failed: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|d| !d["error"].is_null())
        .collect();
    assert_eq!(failed.len(), 1, "{}", r.stdout);
    assert_eq!(failed[0]["endpoint"], addrs[1].as_str());

    let r = run(&["clear"]).await;
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(row(&r.stdout, "fleet-a").contains(" MiB"), "{}", r.stdout);

    // None reachable: exit 2.
    fleet.daemons[0] = None;
    fleet.daemons[2] = None;
    let r = run(&["status"]).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout.matches("error: cannot reach stressd").count(),
        3,
        "{}",
        r.stdout
    );
}

/// Reads a child's stdout lines into a shared list.
fn collect_lines(stdout: std::process::ChildStdout) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// Waits until a line satisfies `pred`; returns it.
fn wait_line(lines: &Arc<Mutex<Vec<String>>>, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(l) = lines.lock().unwrap().iter().find(|l| pred(l)) {
            return l.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no line with {what} in:\n{}",
            lines.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One name for all three through the system resolver: status rows for all; `logs --follow`
/// merges the three streams, reports a killed and restarted stressd with the outcome of the
/// run it died in, and follows the new process.
#[tokio::test]
async fn dns_name_resolves_to_every_endpoint_and_follow_survives_a_restart() {
    if !is_root() {
        common::skip(
            "fleet::dns_name_resolves_to_every_endpoint_and_follow_survives_a_restart",
            "needs root to add a name to /etc/hosts",
            "sudo cargo test -p memstress-client --test fleet",
        );
        return;
    }
    let mut fleet = Fleet::start("dns");
    let name = format!("memstress-fleet-test-{}", std::process::id());
    let _hosts = HostsGuard::add(&name, &IPS);
    let target = format!("dns:///{name}:{}", fleet.port);

    let r = stressctl_raw(&["--addr", &target, "status"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    row(&r.stdout, "fleet-a");
    row(&r.stdout, "fleet-b");
    row(&r.stdout, &fleet.addr(2));
    row(&r.stdout, "TOTAL 3/3");

    // A long run on fleet-b, so killing it leaves a run the next process closes as killed.
    let run_id = start_20_mib(&fleet.addr(1), "0").await;

    let mut follower = Command::new(env!("CARGO_BIN_EXE_stressctl"))
        .env_remove("STRESSCTL_ADDR")
        .env("NO_COLOR", "1")
        .args(["--addr", &target, "logs", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = collect_lines(follower.stdout.take().unwrap());
    wait_line(&lines, "fleet-b's run start", |l| {
        l.starts_with("fleet-b") && l.contains(" START ")
    });
    wait_line(&lines, "fleet-a's entries", |l| l.starts_with("fleet-a "));
    wait_line(&lines, "the third's entries", |l| {
        l.starts_with(&fleet.addr(2))
    });

    fleet.daemons[1].as_mut().unwrap().kill();
    fleet.restart(1);
    let note = wait_line(&lines, "the restart", |l| l.contains("restarted"));
    assert!(note.starts_with("fleet-b"), "{note}");
    assert!(
        note.contains(&format!(
            "pod fleet-b restarted; previous run {run_id} killed"
        )),
        "{note}"
    );

    // The new process is followed: a run started on it shows up under its name.
    let new_run = start_20_mib(&fleet.addr(1), "5").await;
    assert_ne!(new_run, run_id);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = lines.lock().unwrap().clone();
        let restart_at = all.iter().position(|l| l.contains("restarted")).unwrap();
        if all[restart_at..]
            .iter()
            .any(|l| l.starts_with("fleet-b") && l.contains(" START "))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new process's run never showed:\n{}",
            all.join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("{}", lines.lock().unwrap().join("\n"));

    // Ctrl-C ends the follow with 130.
    sigint(follower.id());
    let status = follower.wait().unwrap();
    assert_eq!(status.code(), Some(130));

    // Pods join and leave: the name is resolved again while following.
    let name2 = format!("memstress-fleet-join-{}", std::process::id());
    let hosts2 = HostsGuard::add(&name2, &IPS[..1]);
    let mut follower = Command::new(env!("CARGO_BIN_EXE_stressctl"))
        .env_remove("STRESSCTL_ADDR")
        .env("NO_COLOR", "1")
        .args([
            "--addr",
            &format!("dns:///{name2}:{}", fleet.port),
            "logs",
            "--follow",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = collect_lines(follower.stdout.take().unwrap());
    wait_line(&lines, "fleet-a joining", |l| {
        l.starts_with("fleet-a") && l.ends_with("joined")
    });
    hosts2.append(IPS[2]);
    let third = fleet.addr(2);
    wait_line(&lines, "the third joining", |l| {
        l.starts_with(&third) && l.ends_with("joined")
    });
    hosts2.remove(IPS[0]);
    wait_line(&lines, "fleet-a leaving", |l| {
        l.starts_with("fleet-a") && l.contains("left")
    });
    sigint(follower.id());
    assert_eq!(follower.wait().unwrap().code(), Some(130));
}

/// Sends SIGINT through kill(1) (no libc in this crate's tests).
fn sigint(pid: u32) {
    let ok = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -INT {pid}");
}

/// Starts a 20 MiB run held `duration` seconds on one endpoint; returns its run id.
async fn start_20_mib(addr: &str, duration: &str) -> String {
    let r = stressctl_raw(&[
        "--addr",
        addr,
        "start",
        "--memory-mb",
        "20",
        "--duration",
        duration,
    ])
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    r.stdout
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("Started run ")
        .to_owned()
}
