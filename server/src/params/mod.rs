//! Run parameters: what a Start asks for, its defaults, and the validation that refuses
//! anything out of range before a single byte is allocated.

mod host;
mod phases;

pub use crate::workload::WorkloadKind;
pub use host::{HOST_HEADROOM_PERCENT, HostGuard};
pub use phases::{
    MAX_PHASES, MAX_REPEAT, PHASE_HOLD_RANGE, Phase, PhaseSpec, Plan, PlannedPhase, plan,
};

use crate::cgroup::{BasisSource, MemoryBasis};
use crate::error::EngineError;

/// One MiB; "MB" in this API is binary, as in the original design (X MB ≈ X*1024/100 nodes).
pub const MIB: u64 = 1 << 20;
/// Smallest target accepted, MiB.
pub const MIN_MEMORY_MB: u64 = 10;
/// Percent range of the basis.
pub const PERCENT_RANGE: (f64, f64) = (1.0, 95.0);
/// Hold duration range in seconds (0 = until stopped).
pub const DURATION_RANGE: (u32, u32) = (5, 86_400);
/// Log interval range in seconds.
pub const LOG_INTERVAL_RANGE: (u32, u32) = (1, 60);
/// Payload size range in KiB.
pub const PAYLOAD_KB_RANGE: (u32, u32) = (1, 65_536);
/// Largest ramp rate, MiB/s.
pub const MAX_RAMP_MB_PER_SECOND: f64 = 100_000.0;
/// Largest search rate, per second.
pub const MAX_SEARCH_RATE: u64 = 10_000_000;
/// Defaults as in the original design.
pub const DEFAULT_DURATION_SECONDS: u32 = 60;
/// Default progress log interval.
pub const DEFAULT_LOG_INTERVAL_SECONDS: u32 = 5;
/// Default payload per node.
pub const DEFAULT_PAYLOAD_KB: u32 = 100;
/// Searches per second while holding: enough to keep the tree busy, ~1% of one core.
pub const DEFAULT_SEARCH_RATE: u64 = 1000;

/// Whose memory the target is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// stressd's own RSS reaches the target.
    #[default]
    Process,
    /// The container's working set is brought to the target and held there.
    Container,
}

/// The target as asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// MiB.
    MemoryMb(u64),
    /// Percent of the basis.
    Percent(f64),
}

/// A Start request in domain terms (optional fields are None when not sent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StartSpec {
    /// Exactly one target is required.
    pub target: Option<Target>,
    /// Hold duration, seconds.
    pub duration_seconds: Option<u32>,
    /// Progress log interval, seconds.
    pub log_interval_seconds: Option<u32>,
    /// Payload per node, KiB.
    pub payload_size_kb: Option<u32>,
    /// Growth rate MiB/s, 0 = full speed.
    pub ramp_mb_per_second: f64,
    /// Searches/s while holding, 0 = unthrottled.
    pub search_rate: Option<u64>,
    /// Re-read payload pages every log interval.
    pub keep_hot: bool,
    /// Transparent huge pages for payloads.
    pub huge_pages: bool,
    /// Target scope.
    pub scope: Scope,
    /// Allow a target at or above the limit.
    pub allow_oom: bool,
    /// The structure that holds the memory.
    pub workload: WorkloadKind,
    /// A target profile instead of `target` and `duration_seconds` (empty: a single target).
    pub phases: Vec<PhaseSpec>,
    /// How often `phases` runs (only with phases); 0 = until stopped.
    pub repeat: Option<u32>,
}

/// Validated parameters with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct RunParams {
    /// The target as asked.
    pub target: Target,
    /// Hold duration, seconds (0 = until stopped).
    pub duration_seconds: u32,
    /// Progress log interval, seconds.
    pub log_interval_seconds: u32,
    /// Payload per node, KiB.
    pub payload_size_kb: u32,
    /// Growth rate MiB/s, 0 = full speed.
    pub ramp_mb_per_second: f64,
    /// Searches/s while holding, 0 = unthrottled.
    pub search_rate: u64,
    /// Re-read payload pages every log interval.
    pub keep_hot: bool,
    /// Transparent huge pages for payloads.
    pub huge_pages: bool,
    /// Target scope.
    pub scope: Scope,
    /// Target at or above the limit allowed.
    pub allow_oom: bool,
    /// The structure that holds the memory.
    pub workload: WorkloadKind,
    /// The target profile as asked (empty for a single-target run).
    pub phases: Vec<Phase>,
    /// How often the profile runs; 0 = until stopped (1 for a single-target run).
    pub repeat: u32,
}

/// The fields that do not depend on the memory basis, checked and with defaults filled.
struct Fields {
    duration_seconds: u32,
    log_interval_seconds: u32,
    payload_size_kb: u32,
    ramp_mb_per_second: f64,
    search_rate: u64,
}

/// Checks every field, fills defaults and resolves the target in bytes against `basis`.
/// `container_readable` says whether the cgroup working set can be read (CONTAINER scope needs it);
/// `host` guards the host when no memory limit applies (see [`HostGuard`]). For a target
/// profile the bytes are those of its largest phase ([`plan`] resolves every phase).
pub fn validate(
    spec: &StartSpec,
    basis: &MemoryBasis,
    container_readable: bool,
    host: &HostGuard,
) -> Result<(RunParams, u64), EngineError> {
    let fields = check_fields(spec)?;
    if spec.scope == Scope::Container && !container_readable {
        return Err(EngineError::invalid(
            "scope",
            "SCOPE_CONTAINER",
            "SCOPE_PROCESS here",
            "the container's cgroup memory files cannot be read on this host, so its working set is unknown",
        ));
    }
    host.check_allow_oom(spec, basis)?;
    if !spec.phases.is_empty() {
        let (phases, repeat, largest, bytes) = phases::check(spec, basis, host)?;
        return Ok((fields.into_params(spec, largest, 0, phases, repeat), bytes));
    }
    if let Some(repeat) = spec.repeat {
        return Err(EngineError::invalid(
            "repeat",
            repeat,
            "unset without phases",
            "repeat says how often a target profile runs; send phases with it",
        ));
    }
    let target_bytes = resolve_target(spec, basis)?;
    host.check_headroom(spec, target_bytes, basis)?;
    let Some(target) = spec.target else {
        return Err(no_target());
    };
    let duration = fields.duration_seconds;
    Ok((
        fields.into_params(spec, target, duration, Vec::new(), 1),
        target_bytes,
    ))
}

fn no_target() -> EngineError {
    EngineError::invalid(
        "memory_mb/memory_percent",
        "neither set",
        "exactly one of memory_mb or memory_percent",
        "a target is required",
    )
}

impl Fields {
    fn into_params(
        self,
        spec: &StartSpec,
        target: Target,
        duration_seconds: u32,
        phases: Vec<Phase>,
        repeat: u32,
    ) -> RunParams {
        RunParams {
            target,
            duration_seconds,
            log_interval_seconds: self.log_interval_seconds,
            payload_size_kb: self.payload_size_kb,
            ramp_mb_per_second: self.ramp_mb_per_second,
            search_rate: self.search_rate,
            keep_hot: spec.keep_hot,
            huge_pages: spec.huge_pages,
            scope: spec.scope,
            allow_oom: spec.allow_oom,
            workload: spec.workload,
            phases,
            repeat,
        }
    }
}

/// Range checks of the basis-independent fields, defaults filled in.
fn check_fields(spec: &StartSpec) -> Result<Fields, EngineError> {
    let duration_seconds = spec.duration_seconds.unwrap_or(DEFAULT_DURATION_SECONDS);
    if duration_seconds != 0 && !(DURATION_RANGE.0..=DURATION_RANGE.1).contains(&duration_seconds) {
        return Err(EngineError::invalid(
            "duration_seconds",
            duration_seconds,
            format!(
                "0 (hold until stopped) or {}..={}",
                DURATION_RANGE.0, DURATION_RANGE.1
            ),
            "out of range",
        ));
    }
    let log_interval_seconds = spec
        .log_interval_seconds
        .unwrap_or(DEFAULT_LOG_INTERVAL_SECONDS);
    if !(LOG_INTERVAL_RANGE.0..=LOG_INTERVAL_RANGE.1).contains(&log_interval_seconds) {
        return Err(EngineError::invalid(
            "log_interval_seconds",
            log_interval_seconds,
            format!("{}..={}", LOG_INTERVAL_RANGE.0, LOG_INTERVAL_RANGE.1),
            "out of range",
        ));
    }
    let payload_size_kb = spec.payload_size_kb.unwrap_or(DEFAULT_PAYLOAD_KB);
    if !(PAYLOAD_KB_RANGE.0..=PAYLOAD_KB_RANGE.1).contains(&payload_size_kb) {
        return Err(EngineError::invalid(
            "payload_size_kb",
            payload_size_kb,
            format!("{}..={}", PAYLOAD_KB_RANGE.0, PAYLOAD_KB_RANGE.1),
            "out of range",
        ));
    }
    let ramp = spec.ramp_mb_per_second;
    if !ramp.is_finite() || !(0.0..=MAX_RAMP_MB_PER_SECOND).contains(&ramp) {
        return Err(EngineError::invalid(
            "ramp_mb_per_second",
            ramp,
            format!("0 (as fast as possible) to {MAX_RAMP_MB_PER_SECOND}"),
            "out of range",
        ));
    }
    let search_rate = spec.search_rate.unwrap_or(DEFAULT_SEARCH_RATE);
    if search_rate > MAX_SEARCH_RATE {
        return Err(EngineError::invalid(
            "search_rate",
            search_rate,
            format!("0 (unthrottled) to {MAX_SEARCH_RATE}"),
            "out of range",
        ));
    }
    Ok(Fields {
        duration_seconds,
        log_interval_seconds,
        payload_size_kb,
        ramp_mb_per_second: ramp,
        search_rate,
    })
}

fn basis_words(basis: &MemoryBasis) -> String {
    let what = match basis.source {
        BasisSource::CgroupV2 | BasisSource::CgroupV1 => "the memory limit",
        BasisSource::DownwardApi => {
            "the explicit memory limit (--memory-limit / MEMORY_LIMIT_BYTES)"
        }
        BasisSource::HostTotal => "the host's total memory (no cgroup limit)",
    };
    format!(
        "{what} is {} MiB ({})",
        basis.limit_bytes / MIB,
        basis.detail
    )
}

fn resolve_target(spec: &StartSpec, basis: &MemoryBasis) -> Result<u64, EngineError> {
    match spec.target {
        None => Err(no_target()),
        Some(Target::MemoryMb(mb)) => {
            // The largest whole MiB strictly below the limit.
            let below_limit = basis.limit_bytes.div_ceil(MIB).saturating_sub(1);
            let max = if spec.allow_oom {
                (basis.limit_bytes / MIB)
                    .saturating_mul(2)
                    .max(MIN_MEMORY_MB)
            } else {
                below_limit
            };
            if mb < MIN_MEMORY_MB {
                return Err(EngineError::invalid(
                    "memory_mb",
                    mb,
                    format!("{MIN_MEMORY_MB}..={max}"),
                    "below the smallest target",
                ));
            }
            if !spec.allow_oom && mb > below_limit {
                return Err(EngineError::invalid(
                    "memory_mb",
                    mb,
                    format!("{MIN_MEMORY_MB}..={below_limit}"),
                    format!(
                        "{}; a target at or above it would be OOM-killed (set allow_oom to hunt the OOM line)",
                        basis_words(basis)
                    ),
                ));
            }
            if mb > max {
                return Err(EngineError::invalid(
                    "memory_mb",
                    mb,
                    format!("{MIN_MEMORY_MB}..={max} with allow_oom"),
                    format!("{}; allow_oom goes up to twice that", basis_words(basis)),
                ));
            }
            Ok(mb.saturating_mul(MIB))
        }
        Some(Target::Percent(p)) => resolve_percent(p, basis),
    }
}

/// Bytes of a target already validated (used again by [`plan`] for every phase).
fn target_bytes(target: Target, basis: &MemoryBasis) -> u64 {
    match target {
        Target::MemoryMb(mb) => mb.saturating_mul(MIB),
        Target::Percent(p) => percent_bytes(p, basis),
    }
}

fn percent_bytes(p: f64, basis: &MemoryBasis) -> u64 {
    (basis.limit_bytes as f64 * p / 100.0) as u64
}

fn resolve_percent(p: f64, basis: &MemoryBasis) -> Result<u64, EngineError> {
    if !p.is_finite() || !(PERCENT_RANGE.0..=PERCENT_RANGE.1).contains(&p) {
        return Err(EngineError::invalid(
            "memory_percent",
            p,
            format!(
                "{}..={} (fractions allowed)",
                PERCENT_RANGE.0, PERCENT_RANGE.1
            ),
            format!("out of range; {}", basis_words(basis)),
        ));
    }
    let bytes = percent_bytes(p, basis);
    if bytes < MIN_MEMORY_MB * MIB {
        return Err(EngineError::invalid(
            "memory_percent",
            p,
            format!("a percent giving at least {MIN_MEMORY_MB} MiB"),
            format!("resolves to {} bytes; {}", bytes, basis_words(basis)),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
