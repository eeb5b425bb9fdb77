//! The process's own memory, read cheaply enough to sample after every build batch.
//!
//! `/proc/self/statm` is one short line the kernel formats without walking page tables
//! (unlike `smaps_rollup`), so reading it costs microseconds. The root is injectable so tests
//! can feed fixtures.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Reads RSS and friends of the current process under an injectable filesystem root.
#[derive(Debug, Clone)]
pub struct ProcMem {
    statm: PathBuf,
    smaps_rollup: PathBuf,
    meminfo: PathBuf,
    page_size: u64,
}

impl ProcMem {
    /// Reader for `<root>/proc/self/...`; production passes `/`.
    pub fn new(root: &Path) -> Self {
        // SAFETY: sysconf has no preconditions.
        let ps = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Self {
            statm: root.join("proc/self/statm"),
            smaps_rollup: root.join("proc/self/smaps_rollup"),
            meminfo: root.join("proc/meminfo"),
            page_size: u64::try_from(ps).ok().filter(|p| *p > 0).unwrap_or(4096),
        }
    }

    /// Resident set size in bytes, or None if statm cannot be read.
    pub fn rss_bytes(&self) -> Option<u64> {
        let mut buf = [0u8; 128];
        let n = File::open(&self.statm).ok()?.read(&mut buf).ok()?;
        parse_statm_resident(buf.get(..n)?).and_then(|pages| pages.checked_mul(self.page_size))
    }

    /// Anonymous memory backed by transparent huge pages, bytes. Walks page tables: call it
    /// rarely (log intervals), never per batch or per Status.
    pub fn anon_huge_bytes(&self) -> Option<u64> {
        let text = std::fs::read_to_string(&self.smaps_rollup).ok()?;
        parse_kb_field(&text, "AnonHugePages:")
    }

    /// The host's available memory (`MemAvailable` of `/proc/meminfo`), bytes, or None if it
    /// cannot be read or parsed. One small read; called once per Start.
    pub fn mem_available_bytes(&self) -> Option<u64> {
        let text = std::fs::read_to_string(&self.meminfo).ok()?;
        parse_mem_available(&text)
    }
}

/// `MemAvailable:` of `/proc/meminfo`, bytes.
fn parse_mem_available(text: &str) -> Option<u64> {
    parse_kb_field(text, "MemAvailable:")
}

/// Second field of statm: resident pages.
fn parse_statm_resident(raw: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(raw).ok()?;
    text.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// A `Name:   123 kB` line of a /proc status-style file, in bytes (None on overflow).
fn parse_kb_field(text: &str, name: &str) -> Option<u64> {
    let rest = text.lines().find_map(|l| l.strip_prefix(name))?;
    let kb: u64 = rest.split_ascii_whitespace().next()?.parse().ok()?;
    kb.checked_mul(1024)
}

/// CPU time (user + system) this process has used, seconds. `getrusage` is a syscall, not a
/// file read, so it is cheap enough for every Status.
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Makes glibc grow its heaps in 16 MiB steps instead of page by page. Each growth is an
/// `mprotect`/`brk` that takes the process's `mmap_lock` for writing; page by page, a build
/// of a million nodes would take it tens of thousands of times and make every other thread
/// (the gRPC runtime) queue behind the payload population. The padding is address space only:
/// untouched pages cost no RSS, and `trim_heap` still returns everything free.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, TOP_PAD);
    }
}

/// glibc's `M_TOP_PAD` as [`tune_allocator`] sets it (the workload's heap give-back lowers it
/// while freeing and restores this).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) const TOP_PAD: libc::c_int = 16 << 20;

/// Gives freed heap memory back to the OS. Tree nodes are small malloc blocks that glibc would
/// otherwise keep in its free lists (and per-thread arenas) forever.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own state.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_from_fixture_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        std::fs::write(
            dir.path().join("proc/self/statm"),
            "5000 1234 300 10 0 900 0\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("proc/self/smaps_rollup"),
            "Rss:  4936 kB\nAnonHugePages:    2048 kB\n",
        )
        .unwrap();
        let pm = ProcMem::new(dir.path());
        assert_eq!(pm.rss_bytes(), Some(1234 * pm.page_size));
        assert_eq!(pm.anon_huge_bytes(), Some(2048 * 1024));
    }

    #[test]
    fn malformed_or_missing_statm_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ProcMem::new(dir.path()).rss_bytes(), None);
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        std::fs::write(dir.path().join("proc/self/statm"), "garbage").unwrap();
        assert_eq!(ProcMem::new(dir.path()).rss_bytes(), None);
    }

    #[test]
    fn real_process_has_rss_and_cpu() {
        let pm = ProcMem::new(Path::new("/"));
        assert!(pm.rss_bytes().unwrap() > 0);
        assert!(process_cpu_seconds() >= 0.0);
    }

    /// Property tests: the statm and meminfo parsers take anything without panicking, and
    /// values formatted as the kernel writes them parse back.
    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn parsers_never_panic(
                raw in proptest::collection::vec(any::<u8>(), 0..200),
                s in prop_oneof![any::<String>(), "(MemAvailable:|AnonHugePages:| |kB|\n|[0-9]{1,22}){0,20}"],
            ) {
                let _ = parse_statm_resident(&raw);
                let _ = parse_statm_resident(s.as_bytes());
                let _ = parse_mem_available(&s);
                let _ = parse_kb_field(&s, "AnonHugePages:");
            }

            #[test]
            fn statm_round_trips(fields in proptest::collection::vec(any::<u64>(), 7)) {
                let line = fields.iter().map(u64::to_string).collect::<Vec<_>>().join(" ") + "\n";
                prop_assert_eq!(parse_statm_resident(line.as_bytes()), Some(fields[1]));
            }

            #[test]
            fn meminfo_round_trips(total in any::<u64>(), avail in any::<u64>(), pad in 1usize..12) {
                let text = format!(
                    "MemTotal:{:pad$}{total} kB\nMemFree:  1 kB\nMemAvailable:{:pad$}{avail} kB\n",
                    "", "",
                );
                prop_assert_eq!(parse_mem_available(&text), avail.checked_mul(1024));
            }
        }
    }
}
