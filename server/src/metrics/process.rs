//! Process facts that Prometheus's standard `process_*` metrics expect and that the engine's
//! Status does not carry: when the process started and how many file descriptors it holds.
//!
//! Read from `/proc` under an injectable root so tests can feed fixtures. Every parser returns
//! `None` on anything unexpected: a scrape must never panic on a strange kernel file.

use std::path::{Path, PathBuf};

/// What one scrape reads about the process (each `None` when unreadable).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct ProcessFacts {
    /// Start time, seconds since the Unix epoch (as the Go and Python clients export it), so
    /// a dashboard can tell restarts apart and `time() - start` gives the uptime.
    pub start_time_seconds: Option<f64>,
    /// Open file descriptors, so a leak of connections or files shows up before EMFILE.
    pub open_fds: Option<u64>,
}

/// Reads [`ProcessFacts`] under a filesystem root ("/" in production).
#[derive(Debug, Clone)]
pub(crate) struct ProcessReader {
    self_stat: PathBuf,
    proc_stat: PathBuf,
    fd_dir: PathBuf,
    clock_ticks_per_second: Option<u64>,
}

impl ProcessReader {
    /// Reader for `<root>/proc/self/stat`, `<root>/proc/stat` and `<root>/proc/self/fd`.
    pub(crate) fn new(root: &Path) -> Self {
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Self::with_clock_ticks(root, u64::try_from(ticks).ok().filter(|t| *t > 0))
    }

    /// As [`Self::new`] with a given `CLK_TCK` (tests pin it; `None` = unknown).
    pub(crate) fn with_clock_ticks(root: &Path, clock_ticks_per_second: Option<u64>) -> Self {
        Self {
            self_stat: root.join("proc/self/stat"),
            proc_stat: root.join("proc/stat"),
            fd_dir: root.join("proc/self/fd"),
            clock_ticks_per_second,
        }
    }

    /// Reads the facts now (three small reads; no panics, `None` for what is unreadable).
    pub(crate) fn read(&self) -> ProcessFacts {
        ProcessFacts {
            start_time_seconds: self.start_time_seconds(),
            open_fds: count_entries(&self.fd_dir),
        }
    }

    fn start_time_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(&self.self_stat).ok()?;
        let proc_stat = std::fs::read_to_string(&self.proc_stat).ok()?;
        start_time(
            parse_start_ticks(&stat)?,
            self.clock_ticks_per_second?,
            parse_boot_time(&proc_stat)?,
        )
    }
}

/// Field 22 (`starttime`, clock ticks after boot) of `/proc/<pid>/stat`.
///
/// Field 2 (`comm`) is in parentheses and may itself contain spaces and `)`, so the fields
/// are counted from the last `)`: field 3 (`state`) is the first word after it.
fn parse_start_ticks(stat: &str) -> Option<u64> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    after_comm
        .split_ascii_whitespace()
        .nth(22 - 3)?
        .parse()
        .ok()
}

/// The `btime` line of `/proc/stat`: boot time, seconds since the Unix epoch.
fn parse_boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat.lines().find_map(|line| {
        let mut it = line.split_ascii_whitespace();
        match (it.next(), it.next(), it.next()) {
            (Some("btime"), Some(v), None) => v.parse().ok(),
            _ => None,
        }
    })
}

/// Boot time plus the start offset; `None` for a zero tick rate.
fn start_time(start_ticks: u64, ticks_per_second: u64, boot_time: u64) -> Option<f64> {
    if ticks_per_second == 0 {
        return None;
    }
    Some(boot_time as f64 + start_ticks as f64 / ticks_per_second as f64)
}

/// Entries of a directory (the reading itself holds one descriptor, which the Go and Python
/// clients count as well).
fn count_entries(dir: &Path) -> Option<u64> {
    let entries = std::fs::read_dir(dir).ok()?;
    Some(entries.filter(Result::is_ok).count() as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (stress d) S 1 4242 4242 0 -1 4194560 1200 0 0 0 35 12 0 0 \
                        39 19 9 0 123456 1000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 \
                        0 0 0 0 17 1 0 0 0 0 0\n";
    const PROC_STAT: &str = "cpu  1 2 3 4 5 6 7 0 0 0\ncpu0 1 2 3 4 5 6 7 0 0 0\n\
                             intr 12345\nctxt 999\nbtime 1700000000\nprocesses 77\n";

    fn root(files: &[(&str, &str)], fds: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/self/fd")).unwrap();
        for (rel, content) in files {
            std::fs::write(dir.path().join(rel), content).unwrap();
        }
        for i in 0..fds {
            std::fs::write(dir.path().join(format!("proc/self/fd/{i}")), "").unwrap();
        }
        dir
    }

    #[test]
    fn reads_start_time_and_fds_from_a_fixture_root() {
        let dir = root(&[("proc/self/stat", STAT), ("proc/stat", PROC_STAT)], 7);
        let facts = ProcessReader::with_clock_ticks(dir.path(), Some(100)).read();
        assert_eq!(facts.start_time_seconds, Some(1_700_000_000.0 + 1234.56));
        assert_eq!(facts.open_fds, Some(7));
    }

    #[test]
    fn comm_with_spaces_and_parentheses_does_not_shift_fields() {
        let tricky = STAT.replace("stress d", "a) b) (c");
        assert_eq!(parse_start_ticks(&tricky), Some(123_456));
        assert_eq!(parse_start_ticks(STAT), Some(123_456));
    }

    #[test]
    fn missing_files_give_none_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let facts = ProcessReader::with_clock_ticks(dir.path(), Some(100)).read();
        assert_eq!(facts, ProcessFacts::default());
        let dir = root(&[("proc/self/stat", STAT)], 0);
        let facts = ProcessReader::with_clock_ticks(dir.path(), Some(100)).read();
        assert_eq!(facts.start_time_seconds, None, "no /proc/stat");
        assert_eq!(facts.open_fds, Some(0));
    }

    #[test]
    fn unknown_or_zero_clock_rate_gives_none() {
        let dir = root(&[("proc/self/stat", STAT), ("proc/stat", PROC_STAT)], 1);
        assert_eq!(
            ProcessReader::with_clock_ticks(dir.path(), None)
                .read()
                .start_time_seconds,
            None
        );
        assert_eq!(start_time(1, 0, 1), None);
    }

    #[test]
    fn garbage_is_none() {
        for bad in [
            "",
            "garbage",
            "1 (x",
            "1 (x) S 1 2",
            "1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -5 20",
            "1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 1e3 20",
            ")))))))))))))))))))))))))))",
            "\u{0}\u{fffd}é)",
        ] {
            assert_eq!(parse_start_ticks(bad), None, "{bad:?}");
        }
        for bad in [
            "",
            "btime",
            "btime x",
            "btime -1",
            "btime 1 2",
            "xbtime 5",
            "cpu 1 2 3\n",
        ] {
            assert_eq!(parse_boot_time(bad), None, "{bad:?}");
        }
        assert_eq!(parse_boot_time("a 1\n  btime   42  \n"), Some(42));
    }

    #[test]
    fn garbage_files_read_as_none() {
        let dir = root(
            &[
                ("proc/self/stat", "\u{1}\u{2} not a stat line"),
                ("proc/stat", "btime soon"),
            ],
            0,
        );
        let facts = ProcessReader::with_clock_ticks(dir.path(), Some(100)).read();
        assert_eq!(facts.start_time_seconds, None);
        // A non-UTF-8 file is unreadable as text, not a panic.
        std::fs::write(dir.path().join("proc/self/stat"), [0xff, 0xfe, 0x29, 0x20]).unwrap();
        std::fs::write(dir.path().join("proc/stat"), PROC_STAT).unwrap();
        let facts = ProcessReader::with_clock_ticks(dir.path(), Some(100)).read();
        assert_eq!(facts.start_time_seconds, None);
    }

    #[test]
    fn the_real_process_has_facts() {
        let facts = ProcessReader::new(Path::new("/")).read();
        let start = facts.start_time_seconds.unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(start > 1e9 && start <= now + 1.0, "{start} vs {now}");
        assert!(facts.open_fds.unwrap() >= 3);
    }

    /// Property tests: the /proc parsers take anything without panicking, and a stat line
    /// with any `comm` (spaces, parentheses) gives back its start time.
    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn parsers_never_panic(
                s in prop_oneof![any::<String>(), "(btime| |\\)|\\(|\n|-|[0-9]{1,22}){0,60}"],
                ticks in any::<u64>(),
                rate in any::<u64>(),
                boot in any::<u64>(),
            ) {
                let _ = parse_start_ticks(&s);
                let _ = parse_boot_time(&s);
                if let Some(t) = start_time(ticks, rate, boot) {
                    prop_assert!(t.is_finite());
                }
            }

            #[test]
            fn stat_and_btime_round_trip(
                comm in "[a-z ()]{0,15}",
                start in any::<u64>(),
                btime in any::<u64>(),
            ) {
                let before: String = (4..22).map(|i| format!(" {i}")).collect();
                let stat = format!("4242 ({comm}) S{before} {start} 1000 2000 0\n");
                prop_assert_eq!(parse_start_ticks(&stat), Some(start));
                let proc_stat = format!("cpu  1 2 3\nbtime {btime}\nprocesses 9\n");
                prop_assert_eq!(parse_boot_time(&proc_stat), Some(btime));
            }
        }
    }
}
