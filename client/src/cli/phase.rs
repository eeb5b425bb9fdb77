//! `start --phase`: a target profile step as `MiB:SECONDS[:RAMP]` or `P%:SECONDS[:RAMP]`.
//!
//! Pure parsers; every refusal names the phase (its position and text), the bad part and what
//! is allowed.

use memstress_proto::v1::{Phase, phase::Target};

/// Most phases in a profile.
pub const MAX_PHASES: usize = 64;
/// Longest hold of one phase, seconds.
pub const MAX_HOLD_SECONDS: u32 = 86_400;
/// Fastest ramp, MiB/s.
pub const MAX_RAMP: f64 = 100_000.0;
/// Most repetitions of a profile (0 = until stopped).
pub const MAX_REPEAT: u32 = 10_000;

/// Parses the `n`-th `--phase` (counting from 1) as given on the command line.
pub fn parse_phase(n: usize, s: &str) -> Result<Phase, String> {
    let fail = |why: String| format!("--phase #{n} '{s}': {why}");
    let parts: Vec<&str> = s.trim().split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(fail(
            "expected MiB:SECONDS[:RAMP] or P%:SECONDS[:RAMP], e.g. 1024:60 or 50%:30:100".into(),
        ));
    }
    let target = parse_target(parts[0]).map_err(&fail)?;
    let hold: u32 = parts[1]
        .trim()
        .parse()
        .ok()
        .filter(|h| *h <= MAX_HOLD_SECONDS)
        .ok_or_else(|| {
            fail(format!(
                "hold '{}' is not whole seconds (allowed: 0..={MAX_HOLD_SECONDS})",
                parts[1]
            ))
        })?;
    let ramp = match parts.get(2) {
        None => None,
        Some(r) => Some(
            r.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && (0.0..=MAX_RAMP).contains(v))
                .ok_or_else(|| {
                    fail(format!(
                        "ramp '{r}' is not MiB/s (allowed: 0..={MAX_RAMP}, 0 = full speed)"
                    ))
                })?,
        ),
    };
    Ok(Phase {
        target: Some(target),
        hold_seconds: hold,
        ramp_mb_per_second: ramp,
    })
}

/// A phase's target: whole MiB, or a percent ending in `%`.
fn parse_target(t: &str) -> Result<Target, String> {
    let t = t.trim();
    if let Some(p) = t.strip_suffix('%') {
        return p
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0 && *v <= 100.0)
            .map(Target::MemoryPercent)
            .ok_or_else(|| format!("target '{t}' is not a percent (allowed: above 0 up to 100%)"));
    }
    t.parse::<u64>()
        .ok()
        .filter(|v| *v > 0)
        .map(Target::MemoryMb)
        .ok_or_else(|| {
            format!("target '{t}' is neither whole MiB (1 or more) nor a percent such as 50%")
        })
}

/// Parses every `--phase` in order, and checks their number and `--repeat`.
pub fn parse_profile(phases: &[String], repeat: Option<u32>) -> Result<Vec<Phase>, String> {
    if phases.len() > MAX_PHASES {
        return Err(format!(
            "--phase given {} times (allowed: 1..={MAX_PHASES})",
            phases.len()
        ));
    }
    if let Some(r) = repeat
        && r > MAX_REPEAT
    {
        return Err(format!(
            "--repeat {r} is out of range (allowed: 0..={MAX_REPEAT}, 0 = until stopped)"
        ));
    }
    phases
        .iter()
        .enumerate()
        .map(|(i, s)| parse_phase(i + 1, s))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn phases_parse() {
        let p = parse_phase(1, "1024:60").unwrap();
        assert_eq!(p.target, Some(Target::MemoryMb(1024)));
        assert_eq!(p.hold_seconds, 60);
        assert_eq!(p.ramp_mb_per_second, None);
        let p = parse_phase(2, " 50%:30:100.5 ").unwrap();
        assert_eq!(p.target, Some(Target::MemoryPercent(50.0)));
        assert_eq!(p.hold_seconds, 30);
        assert_eq!(p.ramp_mb_per_second, Some(100.5));
        let p = parse_phase(3, "12.5%:0:0").unwrap();
        assert_eq!(p.target, Some(Target::MemoryPercent(12.5)));
        assert_eq!((p.hold_seconds, p.ramp_mb_per_second), (0, Some(0.0)));
    }

    #[test]
    fn bad_phases_name_the_phase_and_the_part() {
        let e = parse_phase(2, "1024:x").unwrap_err();
        assert_eq!(
            e,
            "--phase #2 '1024:x': hold 'x' is not whole seconds (allowed: 0..=86400)"
        );
        let e = parse_phase(1, "1024").unwrap_err();
        assert!(
            e.starts_with("--phase #1 '1024': expected MiB:SECONDS[:RAMP]"),
            "{e}"
        );
        assert!(parse_phase(1, "1:2:3:4").is_err());
        let e = parse_phase(3, "0:5").unwrap_err();
        assert!(e.contains("target '0' is neither whole MiB"), "{e}");
        let e = parse_phase(1, "150%:5").unwrap_err();
        assert!(
            e.contains("target '150%' is not a percent (allowed: above 0 up to 100%)"),
            "{e}"
        );
        assert!(parse_phase(1, "-5%:5").is_err());
        assert!(parse_phase(1, "1.5:5").is_err());
        assert!(parse_phase(1, "10:86401").is_err());
        let e = parse_phase(4, "10:5:-1").unwrap_err();
        assert!(
            e.contains("ramp '-1' is not MiB/s (allowed: 0..=100000"),
            "{e}"
        );
        assert!(parse_phase(1, "10:5:inf").is_err());
    }

    #[test]
    fn profiles_check_count_and_repeat() {
        let two = vec!["100:5".to_owned(), "50%:5".to_owned()];
        assert_eq!(parse_profile(&two, Some(3)).unwrap().len(), 2);
        assert_eq!(parse_profile(&two, Some(0)).unwrap().len(), 2);
        let e = parse_profile(&two, Some(10_001)).unwrap_err();
        assert!(
            e.contains("--repeat 10001 is out of range (allowed: 0..=10000"),
            "{e}"
        );
        let many = vec!["100:1".to_owned(); 65];
        assert!(parse_profile(&many, None).unwrap_err().contains("65 times"));
        let bad = vec!["100:5".to_owned(), "1024:x".to_owned()];
        assert!(
            parse_profile(&bad, None)
                .unwrap_err()
                .starts_with("--phase #2 '1024:x'")
        );
    }
}
