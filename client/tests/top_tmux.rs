//! `stressctl top` in a real terminal: tmux runs it against a real stressd on a loopback port
//! while a run builds and holds; the pane must show the numbers, the chart and the log, follow a
//! resize to 80×24, and give the shell back on `q` (alternate screen left, cursor shown,
//! cooked mode).
//!
//! Needs tmux (`apt-get install tmux`); without it the test says SKIPPED, except under
//! `CI=true`, where it fails. With `TOP_SCREEN_OUT=FILE` it writes the 100×30 capture there
//! (how docs/top-screen.txt is made).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The run the view watches: a build slow enough to draw a slope, then a hold.
const TARGET_MIB: &str = "128";
const RAMP_MIB_PER_SECOND: &str = "32";
/// stressd's memory basis, so the limit line is on the chart's scale.
const LIMIT: &str = "256Mi";

/// stressd, killed when the test ends however it ends.
struct Stressd(Child);

impl Drop for Stressd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A tmux server of our own (its own socket), so the test never touches a user's sessions;
/// killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn capture(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", "top"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A tmux format variable of the pane, e.g. `alternate_on`.
    fn pane_flag(&self, name: &str) -> String {
        let format = format!("#{{{name}}}");
        let out = self.run(&["display-message", "-p", "-t", "top", &format]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Waits (30 s at most) until the pane satisfies `ok`, and returns that capture.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let t0 = Instant::now();
        loop {
            let screen = self.capture();
            if ok(&screen) {
                return screen;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "pane never showed {what}; last capture:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn tmux_installed() -> bool {
    Command::new("sh")
        .args(["-c", "command -v tmux"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// stressd beside stressctl: the workspace build puts every binary in one directory.
fn stressd_path() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_stressctl")).with_file_name("stressd");
    assert!(
        p.exists(),
        "{} not found: build the workspace first (cargo build --workspace --bins)",
        p.display()
    );
    p
}

/// Starts stressd on ephemeral loopback ports and returns it with its gRPC address.
fn start_stressd() -> (Stressd, String) {
    let mut child = Command::new(stressd_path())
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args(["--memory-limit", LIMIT])
        .env_remove("MEMORY_LIMIT_BYTES")
        .env_remove("STRESSD_STATE_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn stressd");
    let stdout = child.stdout.take().expect("stdout");
    let daemon = Stressd(child);
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
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("stressd printed its listening line");
    (daemon, addr)
}

fn braille(screen: &str) -> usize {
    screen
        .chars()
        .filter(|c| ('\u{2801}'..='\u{28FF}').contains(c))
        .count()
}

/// False (after saying SKIPPED) when tmux is missing; under `CI=true` that fails instead.
fn have_tmux() -> bool {
    if tmux_installed() {
        return true;
    }
    let line = "SKIPPED: tmux not installed (apt-get install tmux)";
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{line} (CI=true: tests never skip in CI)"
    );
    println!("{line}");
    false
}

/// Starts the test's run on `addr`.
fn start_run(addr: &str, target_mib: &str) {
    let start = Command::new(env!("CARGO_BIN_EXE_stressctl"))
        .env_remove("STRESSCTL_ADDR")
        .args(["--addr", addr, "start", "--memory-mb", target_mib])
        .args(["--ramp-mb-per-second", RAMP_MIB_PER_SECOND])
        .args(["--duration", "60"])
        .output()
        .unwrap();
    assert!(start.status.success(), "start: {start:?}");
}

/// A tmux session "top" of `label` running `stressctl --addr A… top` at 100×30; after top the
/// pane prints its exit code and the terminal's line discipline, then stays open.
fn open_top(label: &str, addrs: &[&str]) -> Tmux {
    let tmux = Tmux {
        socket: format!("memstress-top-test-{label}-{}", std::process::id()),
    };
    let script = r#"exe="$0"; for a in "$@"; do set -- "$@" --addr "$a"; shift; done; "$exe" "$@" top; echo "TOP-EXITED-$?"; echo "TTY $(stty -a | tr ' ;' '\n\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\n' ' ')"; sleep 60"#;
    let mut args = vec![
        "new-session",
        "-d",
        "-x",
        "100",
        "-y",
        "30",
        "-s",
        "top",
        "--",
    ];
    args.extend(["env", "-u", "STRESSCTL_ADDR", "sh", "-c", script]);
    args.push(env!("CARGO_BIN_EXE_stressctl"));
    args.extend(addrs);
    let out = tmux.run(&args);
    assert!(out.status.success(), "tmux new-session: {out:?}");
    tmux
}

/// Sends `q` and checks the shell got its terminal back: top exited 0, cooked mode with echo,
/// the view gone with the alternate screen, the cursor shown.
fn quit_and_check_restored(tmux: &Tmux) {
    let out = tmux.run(&["send-keys", "-t", "top", "q"]);
    assert!(out.status.success(), "tmux send-keys: {out:?}");
    // The TTY line comes last: once it is there, the exit line is too.
    let after = tmux.wait_for("the shell after q", |s| s.contains("TTY "));
    assert!(after.contains("TOP-EXITED-0"), "exit code:\n{after}");
    assert!(
        after.contains("TTY icanon echo"),
        "cooked mode restored:\n{after}"
    );
    assert!(
        !after.contains("stressctl top"),
        "view left on screen:\n{after}"
    );
    assert_eq!(braille(&after), 0, "chart left on screen:\n{after}");
    assert_eq!(tmux.pane_flag("alternate_on"), "0", "alternate screen left");
    assert_eq!(tmux.pane_flag("cursor_flag"), "1", "cursor shown again");
}

#[test]
fn top_in_tmux_shows_numbers_chart_and_log_and_q_restores_the_shell() {
    if !have_tmux() {
        return;
    }
    let (_stressd, addr) = start_stressd();
    start_run(&addr, TARGET_MIB);
    let tmux = open_top("one", &[&addr]);

    let wanted = |s: &str| {
        s.contains("SEARCHING")
            && s.contains("target 128.0 MiB")
            && s.contains("limit 256.0 MiB")
            && s.contains("RSS 12")
            && s.contains(" HOLD ")
            && braille(s) > 40
    };
    let screen = tmux.wait_for("the hold with numbers, chart and log", wanted);
    assert!(screen.contains("stressctl top  1 endpoint"), "{screen}");
    assert!(screen.contains(" START "), "log tail:\n{screen}");
    assert!(screen.contains("searches/s"), "activity rate:\n{screen}");
    assert_eq!(
        tmux.pane_flag("alternate_on"),
        "1",
        "top runs on the alternate screen"
    );
    if let Ok(path) = std::env::var("TOP_SCREEN_OUT") {
        // Let a few more polls draw the hold before the picture is taken.
        std::thread::sleep(Duration::from_secs(6));
        std::fs::write(path, tmux.capture()).unwrap();
    }

    let out = tmux.run(&["resize-window", "-t", "top", "-x", "80", "-y", "24"]);
    assert!(out.status.success(), "tmux resize-window: {out:?}");
    let small = tmux.wait_for("the view redrawn at 80×24", |s| {
        s.lines().count() <= 24
            && s.lines()
                .any(|l| l.trim_start().starts_with('└') && l.chars().count() == 80)
    });
    assert!(small.contains("RSS 12") && braille(&small) > 20, "{small}");

    quit_and_check_restored(&tmux);
}

/// Two stressd in one view: a table row each, one RSS line each; when one is killed its row
/// turns into the error while the other goes on.
#[test]
fn top_in_tmux_follows_two_endpoints_and_shows_the_one_that_died() {
    if !have_tmux() {
        return;
    }
    let (_a, first) = start_stressd();
    let (mut b, second) = start_stressd();
    start_run(&first, TARGET_MIB);
    start_run(&second, "64");
    let tmux = open_top("two", &[&first, &second]);
    let both = tmux.wait_for("both endpoints holding", |s| {
        s.contains("2 endpoints") && s.matches("SEARCHING").count() == 2 && braille(s) > 40
    });
    assert!(
        both.contains("NAME") && both.contains("WORKING SET"),
        "{both}"
    );
    assert!(
        both.contains("128.0 MiB") && both.contains("64.0 MiB"),
        "{both}"
    );
    assert!(
        both.contains(&format!("{first:<19}")),
        "rows named by address:\n{both}"
    );

    let _ = b.0.kill();
    let _ = b.0.wait();
    let row = format!("{second:<19}error: ");
    let one_down = tmux.wait_for("the killed endpoint's error row", |s| s.contains(&row));
    assert!(
        one_down.contains("SEARCHING"),
        "the other endpoint stays:\n{one_down}"
    );
    quit_and_check_restored(&tmux);
}

/// Without a terminal there is nothing to draw on: top says so and exits 1 instead of writing
/// escape codes into a pipe.
#[test]
fn top_without_a_terminal_refuses() {
    let out = Command::new(env!("CARGO_BIN_EXE_stressctl"))
        .env_remove("STRESSCTL_ADDR")
        .args(["--addr", "127.0.0.1:1", "top"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("stdout is not a terminal, and stressctl top draws a full screen"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing drawn into the pipe");
}
