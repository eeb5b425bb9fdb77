//! Host safety when stressd has no memory limit at all (basis source `HostTotal`: no cgroup
//! limit and no `--memory-limit` / `MEMORY_LIMIT_BYTES`).
//!
//! With a limit, an OOM kill is the cgroup's OOM killer taking stressd alone. Without one it
//! is the kernel's *global* OOM killer, which may pick any process on the host. So there:
//! a target above [`HOST_HEADROOM_PERCENT`] % of the host's available memory (MemAvailable)
//! needs `allow_oom`, and `allow_oom` itself is refused unless the operator started stressd
//! with `--allow-host-oom`.

use super::{MIB, MIN_MEMORY_MB, PERCENT_RANGE, StartSpec, Target};
use crate::cgroup::{BasisSource, MemoryBasis};
use crate::error::EngineError;

/// Share of the host's MemAvailable, in percent, that a target may take without `allow_oom`
/// when stressd has no memory limit.
pub const HOST_HEADROOM_PERCENT: u64 = 90;

/// What guards the host when no memory limit applies; ignored under any limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostGuard {
    /// The host's MemAvailable (`/proc/meminfo`) now, bytes; `None` when unreadable, in
    /// which case only the basis bounds apply.
    pub available_bytes: Option<u64>,
    /// `--allow-host-oom`: the operator lets clients use `allow_oom` without a limit.
    pub allow_host_oom: bool,
}

impl HostGuard {
    /// The largest target accepted without `allow_oom` when there is no limit:
    /// [`HOST_HEADROOM_PERCENT`] % of MemAvailable (`None` when MemAvailable is unknown).
    #[must_use]
    pub fn headroom_bytes(&self) -> Option<u64> {
        self.available_bytes.map(|a| {
            u64::try_from(u128::from(a) * u128::from(HOST_HEADROOM_PERCENT) / 100)
                .unwrap_or(u64::MAX)
        })
    }

    /// Refuses `allow_oom` without a limit unless the server allows host OOM.
    pub(super) fn check_allow_oom(
        &self,
        spec: &StartSpec,
        basis: &MemoryBasis,
    ) -> Result<(), EngineError> {
        if basis.source != BasisSource::HostTotal || !spec.allow_oom || self.allow_host_oom {
            return Ok(());
        }
        Err(EngineError::invalid(
            "allow_oom",
            true,
            "false, unless stressd has a memory limit or runs with --allow-host-oom",
            "stressd has no memory limit (no cgroup limit, no --memory-limit), so an OOM kill \
             would be the host's global OOM killer; start stressd with --allow-host-oom to \
             allow it, or give it a limit",
        ))
    }

    /// Refuses a target above the headroom of an unlimited host unless `allow_oom` (which
    /// [`Self::check_allow_oom`] has already vetted).
    pub(super) fn check_headroom(
        &self,
        spec: &StartSpec,
        target_bytes: u64,
        basis: &MemoryBasis,
    ) -> Result<(), EngineError> {
        if basis.source != BasisSource::HostTotal || spec.allow_oom {
            return Ok(());
        }
        let (Some(available), Some(headroom)) = (self.available_bytes, self.headroom_bytes())
        else {
            return Ok(());
        };
        if target_bytes <= headroom {
            return Ok(());
        }
        let reason = format!(
            "stressd has no memory limit (no cgroup limit, no --memory-limit) and the host has \
             {} MiB available (MemAvailable); a target above {HOST_HEADROOM_PERCENT} % of it \
             ({} MiB) would push the host toward its global OOM killer (allow_oom lifts this, \
             and needs stressd started with --allow-host-oom)",
            available / MIB,
            headroom / MIB,
        );
        Err(match spec.target {
            Some(Target::Percent(p)) => {
                let total = basis.limit_bytes.max(1) as f64;
                let max = (headroom as f64 * 100.0 / total * 100.0).floor() / 100.0;
                EngineError::invalid(
                    "memory_percent",
                    p,
                    format!("{}..={:.2}", PERCENT_RANGE.0, max.min(PERCENT_RANGE.1)),
                    format!(
                        "{p} % of the host's {} MiB is {} MiB; {reason}",
                        basis.limit_bytes / MIB,
                        target_bytes / MIB
                    ),
                )
            }
            Some(Target::MemoryMb(mb)) => EngineError::invalid(
                "memory_mb",
                mb,
                format!("{MIN_MEMORY_MB}..={}", headroom / MIB),
                reason,
            ),
            None => EngineError::invalid(
                "memory_mb/memory_percent",
                "neither set",
                "exactly one of memory_mb or memory_percent",
                "a target is required",
            ),
        })
    }
}
