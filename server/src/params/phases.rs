//! Target profiles: a Start with `phases` grows or shrinks to each phase's target in turn and
//! holds it, `repeat` times. Every phase's target passes exactly the single-target rules
//! (limit, `allow_oom`, host headroom); a refusal names the phase, e.g.
//! `phases[2].memory_mb` (indices from 0, as in the request's list).

use super::{
    HostGuard, MAX_RAMP_MB_PER_SECOND, RunParams, StartSpec, Target, resolve_target, target_bytes,
};
use crate::cgroup::MemoryBasis;
use crate::error::EngineError;
use std::time::Duration;

/// Most phases in a profile.
pub const MAX_PHASES: usize = 64;
/// Most repetitions of a profile (0 = until stopped).
pub const MAX_REPEAT: u32 = 10_000;
/// Hold range of a phase, seconds (0 moves on at once).
pub const PHASE_HOLD_RANGE: (u32, u32) = (0, 86_400);

/// One phase as asked (`target` is None when the request left it unset).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PhaseSpec {
    /// The phase's target.
    pub target: Option<Target>,
    /// Seconds the target is held once reached.
    pub hold_seconds: u32,
    /// Growth rate toward the target, MiB/s; None = the request's ramp.
    pub ramp_mb_per_second: Option<f64>,
}

/// One phase, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// The phase's target.
    pub target: Target,
    /// Seconds the target is held once reached.
    pub hold_seconds: u32,
    /// Growth rate toward the target, MiB/s; None = the request's ramp.
    pub ramp_mb_per_second: Option<f64>,
}

/// One step of what a run does: reach `target_bytes`, then hold it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedPhase {
    /// Target, bytes.
    pub target_bytes: u64,
    /// How long the target is held; None = until stopped.
    pub hold: Option<Duration>,
    /// Growth rate, MiB/s (0 = as fast as possible); shrinking is always at full speed.
    pub ramp_mb_per_second: f64,
}

/// Everything a run does, resolved in bytes. A single-target run is one phase, repeat 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The phases in order (at least one).
    pub phases: Vec<PlannedPhase>,
    /// How often the phases run; 0 = until stopped.
    pub repeat: u32,
}

impl Plan {
    /// The largest phase target: the run's target for the history and the OOM verdict.
    pub fn peak_bytes(&self) -> u64 {
        self.phases
            .iter()
            .map(|p| p.target_bytes)
            .max()
            .unwrap_or(0)
    }

    /// Each phase's target in order.
    pub fn targets(&self) -> Vec<u64> {
        self.phases.iter().map(|p| p.target_bytes).collect()
    }
}

/// What `params` (validated against `basis`) asks the engine to do.
pub fn plan(params: &RunParams, basis: &MemoryBasis) -> Plan {
    if params.phases.is_empty() {
        let hold = (params.duration_seconds > 0)
            .then(|| Duration::from_secs(u64::from(params.duration_seconds)));
        return Plan {
            phases: vec![PlannedPhase {
                target_bytes: target_bytes(params.target, basis),
                hold,
                ramp_mb_per_second: params.ramp_mb_per_second,
            }],
            repeat: 1,
        };
    }
    Plan {
        phases: params
            .phases
            .iter()
            .map(|p| PlannedPhase {
                target_bytes: target_bytes(p.target, basis),
                hold: Some(Duration::from_secs(u64::from(p.hold_seconds))),
                ramp_mb_per_second: p.ramp_mb_per_second.unwrap_or(params.ramp_mb_per_second),
            })
            .collect(),
        repeat: params.repeat,
    }
}

/// Checks a profile: (phases, repeat, the largest phase's target, its bytes).
pub(super) fn check(
    spec: &StartSpec,
    basis: &MemoryBasis,
    host: &HostGuard,
) -> Result<(Vec<Phase>, u32, Target, u64), EngineError> {
    refuse_single_target_fields(spec)?;
    if spec.phases.len() > MAX_PHASES {
        return Err(EngineError::invalid(
            "phases",
            format!("{} phases", spec.phases.len()),
            format!("1..={MAX_PHASES} phases"),
            "too many phases",
        ));
    }
    let repeat = spec.repeat.unwrap_or(1);
    if repeat > MAX_REPEAT {
        return Err(EngineError::invalid(
            "repeat",
            repeat,
            format!("0 (until stopped) to {MAX_REPEAT}"),
            "out of range",
        ));
    }
    let mut phases = Vec::with_capacity(spec.phases.len());
    let mut largest: Option<(Target, u64)> = None;
    for (i, p) in spec.phases.iter().enumerate() {
        let (phase, bytes) =
            check_phase(spec, p, basis, host).map_err(|e| e.within(&format!("phases[{i}]")))?;
        if largest.is_none_or(|(_, b)| bytes > b) {
            largest = Some((phase.target, bytes));
        }
        phases.push(phase);
    }
    if repeat == 0 && phases.iter().all(|p| p.hold_seconds == 0) {
        return Err(EngineError::invalid(
            "repeat",
            0,
            format!("1..={MAX_REPEAT} when no phase holds"),
            "a profile repeated until stopped needs a phase with hold_seconds > 0, or it would \
             grow and shrink without pause",
        ));
    }
    let (target, bytes) = largest.ok_or_else(|| {
        EngineError::invalid("phases", "0 phases", format!("1..={MAX_PHASES}"), "empty")
    })?;
    Ok((phases, repeat, target, bytes))
}

/// A profile replaces the target and the hold duration; both at once is ambiguous.
fn refuse_single_target_fields(spec: &StartSpec) -> Result<(), EngineError> {
    let why = "phases replace the target and duration_seconds; send one or the other";
    match spec.target {
        Some(Target::MemoryMb(mb)) => {
            return Err(EngineError::invalid(
                "memory_mb",
                mb,
                "unset when phases are given",
                why,
            ));
        }
        Some(Target::Percent(p)) => {
            return Err(EngineError::invalid(
                "memory_percent",
                p,
                "unset when phases are given",
                why,
            ));
        }
        None => {}
    }
    if let Some(d) = spec.duration_seconds {
        return Err(EngineError::invalid(
            "duration_seconds",
            d,
            "unset when phases are given (each phase has hold_seconds)",
            why,
        ));
    }
    Ok(())
}

/// One phase against exactly the single-target rules; errors name the phase's own fields.
fn check_phase(
    spec: &StartSpec,
    p: &PhaseSpec,
    basis: &MemoryBasis,
    host: &HostGuard,
) -> Result<(Phase, u64), EngineError> {
    if !(PHASE_HOLD_RANGE.0..=PHASE_HOLD_RANGE.1).contains(&p.hold_seconds) {
        return Err(EngineError::invalid(
            "hold_seconds",
            p.hold_seconds,
            format!("{}..={}", PHASE_HOLD_RANGE.0, PHASE_HOLD_RANGE.1),
            "out of range",
        ));
    }
    if let Some(ramp) = p.ramp_mb_per_second
        && (!ramp.is_finite() || !(0.0..=MAX_RAMP_MB_PER_SECOND).contains(&ramp))
    {
        return Err(EngineError::invalid(
            "ramp_mb_per_second",
            ramp,
            format!("0 (as fast as possible) to {MAX_RAMP_MB_PER_SECOND}, or unset"),
            "out of range",
        ));
    }
    let as_single = StartSpec {
        target: p.target,
        phases: Vec::new(),
        ..spec.clone()
    };
    let bytes = resolve_target(&as_single, basis)?;
    host.check_headroom(&as_single, bytes, basis)?;
    let Some(target) = p.target else {
        return Err(super::no_target());
    };
    Ok((
        Phase {
            target,
            hold_seconds: p.hold_seconds,
            ramp_mb_per_second: p.ramp_mb_per_second,
        },
        bytes,
    ))
}
