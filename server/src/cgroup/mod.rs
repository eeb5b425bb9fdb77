//! The container's own memory cgroup, read the way the kubelet and the kernel read it.
//!
//! Percent targets, working-set tracking and OOM detection are only meaningful when they
//! are measured against the same numbers that drive eviction (`kubectl top`, the kubelet's
//! working set) and the OOM killer (the effective cgroup limit). `/proc/meminfo` and sysinfo
//! report the *host*, which inside a container is the wrong basis, so this module resolves
//! the process's own cgroup on cgroup v2 (unified), v1 and hybrid machines and reads its
//! memory files directly.
//!
//! Resolution happens once ([`CgroupProbe::discover`]) from `<root>/proc/self/cgroup` and
//! `<root>/proc/self/mountinfo`; afterwards every read is a plain file read of a precomputed
//! path, cheap enough to run after every allocation batch. All OS access goes through an
//! injectable filesystem root (`/` in production) so tests can feed fixture trees.
//!
//! Nothing here panics or fails: content that cannot be read or parsed simply yields `None`.
//!
//! The percent basis ([`CgroupProbe::basis`]) prefers a cgroup limit, then the downward-API
//! env value *only* if the cgroup files could not be read at all, then host total. A cgroup
//! that is readable and says "unlimited" yields host total, because Kubernetes' downward API
//! reports node allocatable for containers without a limit.

pub use parse::parse_limit_env;
use parse::*;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Values at or above this are "no limit" (v1 reports `PAGE_COUNTER_MAX` pages as a byte
/// count such as 9223372036854771712; nothing real is 1 EiB).
const UNLIMITED_THRESHOLD: u64 = 1 << 60;

/// cgroup version of the memory controller in use.
///
/// The two versions name their files differently and have different "unlimited" encodings,
/// so callers that display or log paths need to know which one was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Legacy per-controller hierarchy (`memory.limit_in_bytes` & co).
    V1,
    /// Unified hierarchy (`memory.max` & co).
    V2,
}

impl CgroupVersion {
    /// Short stable label for logs, metrics and API responses.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        }
    }

    fn basis_source(self) -> BasisSource {
        match self {
            CgroupVersion::V1 => BasisSource::CgroupV1,
            CgroupVersion::V2 => BasisSource::CgroupV2,
        }
    }
}

/// Where the memory basis came from.
///
/// Reported alongside percent targets so an operator can tell whether "50%" meant half of
/// the container limit or half of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasisSource {
    /// A limit set in the cgroup v2 hierarchy.
    CgroupV2,
    /// A limit set in the cgroup v1 memory hierarchy.
    CgroupV1,
    /// `MEMORY_LIMIT_BYTES` (Kubernetes downward API), used only when cgroup files were unreadable.
    DownwardApi,
    /// Host physical memory: no cgroup limit applies.
    HostTotal,
}

/// The number a percent target is taken of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryBasis {
    /// Bytes that 100% corresponds to.
    pub limit_bytes: u64,
    /// Which source won.
    pub source: BasisSource,
    /// Human-readable provenance: the in-container path of the file read (no injected root
    /// prefix), `env MEMORY_LIMIT_BYTES`, or `host MemTotal (no cgroup limit)`.
    pub detail: String,
}

/// PSI memory pressure of the cgroup.
///
/// Pressure rises before the OOM killer acts, so it is the early signal that a stress target
/// is pushing the container into reclaim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Psi {
    /// Share of the last 10 s in which at least one task stalled on memory, in percent.
    pub some_avg10: f64,
    /// Share of the last 10 s in which all non-idle tasks stalled on memory, in percent
    /// (0.0 when the kernel does not report a `full` line).
    pub full_avg10: f64,
    /// Cumulative "some" stall time in microseconds; monotonic, so deltas are exact.
    pub some_total_us: u64,
    /// Cumulative "full" stall time in microseconds (0 when the kernel reports no `full` line).
    pub full_total_us: u64,
}

/// A snapshot of the container's memory. Every field is `None` where the file is
/// absent/unreadable, so callers never mistake "unknown" for zero.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerMemory {
    /// cgroup version resolved at discovery; `None` when no memory cgroup was found.
    pub version: Option<CgroupVersion>,
    /// The process's cgroup path as in `/proc/self/cgroup` (empty when unknown).
    pub cgroup_path: String,
    /// Effective limit: minimum over the own cgroup and its ancestors up to the mount point
    /// that set one (on v1 also `memory.stat` `hierarchical_memory_limit`, which sees
    /// ancestors hidden above the mount root); `None` = unlimited or unknown.
    pub limit_bytes: Option<u64>,
    /// In-container path of the file that gave `limit_bytes`.
    pub limit_file: Option<String>,
    /// v2 `memory.current` / v1 `memory.usage_in_bytes`.
    pub usage_bytes: Option<u64>,
    /// v2 `memory.stat` `inactive_file` / v1 `memory.stat` `total_inactive_file`.
    pub inactive_file_bytes: Option<u64>,
    /// `usage - inactive_file`, saturating at 0: the number eviction and `kubectl top` use.
    /// `None` unless both inputs were read.
    pub working_set_bytes: Option<u64>,
    /// OOM kills in this cgroup (v2 `memory.events`, v1 `memory.oom_control`).
    pub oom_kills: Option<u64>,
    /// PSI from `memory.pressure` (v2; on v1 only if such a file exists).
    pub pressure: Option<Psi>,
}

/// Which cgroup a checkpoint was taken in. The inode tells a cgroup from a new one at the same
/// path: inside a cgroup namespace every container's path is "/", and a restarted container
/// gets a fresh cgroup whose oom_kill counter starts at 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupIdentity {
    /// v1 or v2.
    pub version: CgroupVersion,
    /// Path as in `/proc/self/cgroup`.
    pub path: String,
    /// Inode of the cgroup directory.
    pub inode: u64,
}

/// Resolved once at start-up; cheap to call afterwards (paths precomputed, no re-discovery
/// per read). Limits are still re-read on every call, so in-place pod resizes are seen.
#[derive(Debug, Clone)]
pub struct CgroupProbe {
    cgroup_path: String,
    env_limit_bytes: Option<u64>,
    resolved: Option<Resolved>,
}

/// A file inside the cgroup filesystem: where to read it and how to show it.
#[derive(Debug, Clone)]
struct CgFile {
    /// Path on disk (with the injected root).
    path: PathBuf,
    /// In-container absolute path (without the injected root).
    display: String,
}

#[derive(Debug, Clone)]
struct Resolved {
    version: CgroupVersion,
    /// Limit files from the own directory up to and including the mount point.
    limit_files: Vec<CgFile>,
    usage: PathBuf,
    stat: CgFile,
    events: PathBuf,
    pressure: PathBuf,
    inactive_key: &'static str,
    /// v2: the hierarchy has the memory controller, so `memory.max` missing everywhere means
    /// "root cgroup / controller not enabled here", i.e. unlimited, not "unreadable".
    missing_limit_means_unlimited: bool,
}

/// Outcome of reading one limit file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LimitRead {
    Limited(u64),
    Unlimited,
    Missing,
    Unreadable,
}

/// Effective limit over the chain of limit files.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EffectiveLimit {
    /// At least one source said something definite (a limit or "unlimited").
    known: bool,
    /// Smallest limit and the in-container path of the file that set it.
    limit: Option<(u64, String)>,
}

impl CgroupProbe {
    /// Resolves the own memory cgroup under `root`. Never fails: where nothing can be
    /// resolved, every read returns `None` and [`basis`](Self::basis) falls back to
    /// `env_limit_bytes` then host total.
    #[must_use]
    pub fn discover(root: &Path, env_limit_bytes: Option<u64>) -> CgroupProbe {
        let env_limit_bytes = env_limit_bytes.filter(|&b| b > 0);
        let proc_cgroup = read_string(&root.join("proc/self/cgroup")).unwrap_or_default();
        let mountinfo = read_string(&root.join("proc/self/mountinfo")).unwrap_or_default();
        let lines = parse_proc_cgroup(&proc_cgroup);
        let mounts = parse_mountinfo(&mountinfo);

        let v1 = lines.v1_memory.as_deref().and_then(|path| {
            let mount = pick_mount(
                mounts.iter().filter(|m| {
                    m.fstype == "cgroup" && m.superopts.split(',').any(|o| o == "memory")
                }),
                path,
            )?;
            Some(build_resolved(root, CgroupVersion::V1, mount, path))
        });
        let v2 = lines.v2.as_deref().and_then(|path| {
            let mount = pick_mount(mounts.iter().filter(|m| m.fstype == "cgroup2"), path)?;
            Some(build_resolved(root, CgroupVersion::V2, mount, path))
        });

        // Hybrid hosts have both; the v1 memory controller is authoritative whenever it is
        // really there, since memory cannot be bound to both hierarchies at once.
        let (resolved, path) = match (v1, v2) {
            (Some(r), _) if r.has_memory_files() => (Some(r), lines.v1_memory),
            (_, Some(r)) if r.has_memory_files() => (Some(r), lines.v2),
            _ => (None, lines.v1_memory.or(lines.v2)),
        };
        CgroupProbe {
            cgroup_path: path.unwrap_or_default(),
            env_limit_bytes,
            resolved,
        }
    }

    /// Full snapshot (reads all files).
    #[must_use]
    pub fn read(&self) -> ContainerMemory {
        self.read_with_basis(0).0
    }

    /// Full snapshot plus the memory basis, from one pass over the files (Status wants both,
    /// and reading the limit chain and `memory.stat` twice doubles its cost).
    #[must_use]
    pub fn read_with_basis(&self, host_total_bytes: u64) -> (ContainerMemory, MemoryBasis) {
        let Some(r) = &self.resolved else {
            return (
                ContainerMemory {
                    cgroup_path: self.cgroup_path.clone(),
                    ..ContainerMemory::default()
                },
                self.fallback_basis(host_total_bytes),
            );
        };
        let stat = read_string(&r.stat.path);
        let eff = r.effective_limit(stat.as_deref());
        let basis = self.basis_from(r.version, &eff, host_total_bytes);
        let usage_bytes = read_string(&r.usage).and_then(|s| parse_u64(&s));
        let inactive_file_bytes = stat.as_deref().and_then(|s| flat_value(s, r.inactive_key));
        let (limit_bytes, limit_file) = match eff.limit {
            Some((bytes, file)) => (Some(bytes), Some(file)),
            None => (None, None),
        };
        let memory = ContainerMemory {
            version: Some(r.version),
            cgroup_path: self.cgroup_path.clone(),
            limit_bytes,
            limit_file,
            usage_bytes,
            inactive_file_bytes,
            working_set_bytes: working_set(usage_bytes, inactive_file_bytes),
            oom_kills: r.oom_kills(),
            pressure: read_string(&r.pressure).and_then(|s| parse_psi(&s)),
        };
        (memory, basis)
    }

    /// Fast path used after every build batch: `usage - inactive_file` only (2 small reads).
    #[must_use]
    pub fn working_set_bytes(&self) -> Option<u64> {
        let r = self.resolved.as_ref()?;
        let usage = read_string(&r.usage).and_then(|s| parse_u64(&s))?;
        let inactive = read_string(&r.stat.path).and_then(|s| flat_value(&s, r.inactive_key));
        working_set(Some(usage), inactive)
    }

    /// Fast path: the `oom_kill` counter only, so OOM kills of sibling processes are noticed
    /// without a full snapshot.
    #[must_use]
    pub fn oom_kills(&self) -> Option<u64> {
        self.resolved.as_ref()?.oom_kills()
    }

    /// The memory basis: the cgroup limit when one is set (source `CgroupV2`/`CgroupV1`);
    /// else the explicit limit (`--memory-limit` / `MEMORY_LIMIT_BYTES`, source
    /// `DownwardApi`), whether the cgroup is unlimited or unreadable; else `host_total_bytes`
    /// (`HostTotal`).
    ///
    /// An explicit limit beats a readable "unlimited" cgroup: someone set it on purpose (for
    /// a container without a limit the downward API gives node allocatable, which is what
    /// such a pod can really use before the node runs out).
    #[must_use]
    pub fn basis(&self, host_total_bytes: u64) -> MemoryBasis {
        let Some(r) = &self.resolved else {
            return self.fallback_basis(host_total_bytes);
        };
        let stat = match r.version {
            CgroupVersion::V1 => read_string(&r.stat.path),
            CgroupVersion::V2 => None,
        };
        self.basis_from(
            r.version,
            &r.effective_limit(stat.as_deref()),
            host_total_bytes,
        )
    }

    fn basis_from(
        &self,
        version: CgroupVersion,
        eff: &EffectiveLimit,
        host_total_bytes: u64,
    ) -> MemoryBasis {
        if !eff.known {
            return self.fallback_basis(host_total_bytes);
        }
        match &eff.limit {
            Some((limit_bytes, detail)) => MemoryBasis {
                limit_bytes: *limit_bytes,
                source: version.basis_source(),
                detail: detail.clone(),
            },
            None => self.fallback_basis(host_total_bytes),
        }
    }

    /// No cgroup limit (none set, or unreadable): the explicit limit, else the host's total.
    fn fallback_basis(&self, host_total_bytes: u64) -> MemoryBasis {
        match self.env_limit_bytes {
            Some(limit_bytes) => MemoryBasis {
                limit_bytes,
                source: BasisSource::DownwardApi,
                detail: "--memory-limit / MEMORY_LIMIT_BYTES".to_string(),
            },
            None => host_basis(host_total_bytes),
        }
    }

    /// The version in use, if resolved.
    #[must_use]
    pub fn version(&self) -> Option<CgroupVersion> {
        self.resolved.as_ref().map(|r| r.version)
    }

    /// Which cgroup this is, down to the directory's inode (see [`CgroupIdentity`]); `None`
    /// when no memory cgroup was resolved or its directory cannot be read.
    #[must_use]
    pub fn identity(&self) -> Option<CgroupIdentity> {
        use std::os::unix::fs::MetadataExt;
        let r = self.resolved.as_ref()?;
        let dir = r.limit_files.first()?.path.parent()?;
        let inode = std::fs::metadata(dir).ok()?.ino();
        Some(CgroupIdentity {
            version: r.version,
            path: self.cgroup_path.clone(),
            inode,
        })
    }
}

fn host_basis(host_total_bytes: u64) -> MemoryBasis {
    MemoryBasis {
        limit_bytes: host_total_bytes,
        source: BasisSource::HostTotal,
        detail: "host MemTotal (no cgroup limit)".to_string(),
    }
}

fn working_set(usage: Option<u64>, inactive: Option<u64>) -> Option<u64> {
    Some(usage?.saturating_sub(inactive?))
}

impl Resolved {
    /// Whether the own directory really carries this controller's files (a mount line alone
    /// can be stale or point at a hierarchy without memory).
    fn has_memory_files(&self) -> bool {
        let own_has = |name: &str| {
            self.limit_files
                .first()
                .and_then(|f| f.path.parent())
                .is_some_and(|dir| dir.join(name).exists())
        };
        match self.version {
            CgroupVersion::V1 => {
                own_has("memory.limit_in_bytes") || own_has("memory.usage_in_bytes")
            }
            CgroupVersion::V2 => {
                own_has("memory.max")
                    || own_has("memory.current")
                    || self.missing_limit_means_unlimited
            }
        }
    }

    fn oom_kills(&self) -> Option<u64> {
        read_string(&self.events).and_then(|s| flat_value(&s, "oom_kill"))
    }

    /// Minimum over the chain; `stat` is the v1 `memory.stat` content, whose
    /// `hierarchical_memory_limit` also covers ancestors hidden above the mount root.
    fn effective_limit(&self, stat: Option<&str>) -> EffectiveLimit {
        let mut known = false;
        let mut all_missing = true;
        let mut best: Option<(u64, &str)> = None;
        for f in &self.limit_files {
            match read_limit(&f.path, self.version) {
                LimitRead::Limited(v) => {
                    known = true;
                    all_missing = false;
                    offer(&mut best, v, &f.display);
                }
                LimitRead::Unlimited => {
                    known = true;
                    all_missing = false;
                }
                LimitRead::Missing => {}
                LimitRead::Unreadable => all_missing = false,
            }
        }
        if self.version == CgroupVersion::V1
            && let Some(h) = stat.and_then(|s| flat_value(s, "hierarchical_memory_limit"))
        {
            known = true;
            if h < UNLIMITED_THRESHOLD {
                offer(&mut best, h, &self.stat.display);
            }
        }
        if !known && all_missing && self.missing_limit_means_unlimited {
            known = true;
        }
        EffectiveLimit {
            known,
            limit: best.map(|(b, d)| (b, d.to_string())),
        }
    }
}

/// Keeps the smaller limit; strictly smaller wins, so on ties the file nearest the process
/// (visited first) is the one reported.
fn offer<'a>(best: &mut Option<(u64, &'a str)>, bytes: u64, display: &'a str) {
    if best.is_none_or(|(b, _)| bytes < b) {
        *best = Some((bytes, display));
    }
}

/// Builds the precomputed file set for `cgroup_path` under `mount`.
fn build_resolved(
    root: &Path,
    version: CgroupVersion,
    mount: &Mount,
    cgroup_path: &str,
) -> Resolved {
    let rel = relative_components(&mount.root, cgroup_path);
    let mount_disk = root.join(mount.mountpoint.trim_start_matches('/'));
    let dir_disk = |n: usize| -> PathBuf {
        let mut p = mount_disk.clone();
        p.extend(rel.iter().take(n));
        p
    };
    let dir_display = |n: usize| -> String {
        let mut s = mount.mountpoint.trim_end_matches('/').to_string();
        for c in rel.iter().take(n) {
            s.push('/');
            s.push_str(c);
        }
        s
    };
    let file = |n: usize, name: &str| CgFile {
        path: dir_disk(n).join(name),
        display: format!("{}/{}", dir_display(n), name),
    };
    let (limit_name, usage_name, events_name, inactive_key) = match version {
        CgroupVersion::V1 => (
            "memory.limit_in_bytes",
            "memory.usage_in_bytes",
            "memory.oom_control",
            "total_inactive_file",
        ),
        CgroupVersion::V2 => (
            "memory.max",
            "memory.current",
            "memory.events",
            "inactive_file",
        ),
    };
    let own = rel.len();
    let missing_limit_means_unlimited = version == CgroupVersion::V2
        && read_string(&mount_disk.join("cgroup.controllers"))
            .is_some_and(|s| s.split_whitespace().any(|c| c == "memory"));
    Resolved {
        version,
        limit_files: (0..=own).rev().map(|n| file(n, limit_name)).collect(),
        usage: dir_disk(own).join(usage_name),
        stat: file(own, "memory.stat"),
        events: dir_disk(own).join(events_name),
        pressure: dir_disk(own).join("memory.pressure"),
        inactive_key,
        missing_limit_means_unlimited,
    }
}

mod parse;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
