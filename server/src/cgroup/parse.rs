//! Reading and parsing the kernel's cgroup and proc files: small bounded reads, and parsers
//! that return `None` (never panic) on anything unexpected.

use super::*;

pub(super) fn read_string(path: &Path) -> Option<String> {
    read_small(path).ok()
}

/// Reads a small pseudo-file with open + read + close only. `fs::read_to_string` also stats
/// and seeks the file for a size hint (useless here: cgroupfs and procfs report size 0), and
/// Status reads several of these on every call.
pub(super) fn read_small(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut file = fs::File::open(path)?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        // `read_to_end` would stat and seek the file first; a plain read loop does not.
        let n = file.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub(super) fn read_limit(path: &Path, version: CgroupVersion) -> LimitRead {
    match read_small(path) {
        Ok(s) => parse_limit_value(&s, version),
        Err(e) if e.kind() == io::ErrorKind::NotFound => LimitRead::Missing,
        Err(_) => LimitRead::Unreadable,
    }
}

/// Parses a limit file body; garbage counts as unreadable, never as unlimited.
pub(super) fn parse_limit_value(s: &str, version: CgroupVersion) -> LimitRead {
    let t = s.trim();
    if version == CgroupVersion::V2 && t == "max" {
        return LimitRead::Unlimited;
    }
    if version == CgroupVersion::V1 && t == "-1" {
        return LimitRead::Unlimited;
    }
    match t.parse::<u64>() {
        Ok(v) if v >= UNLIMITED_THRESHOLD => LimitRead::Unlimited,
        Ok(v) => LimitRead::Limited(v),
        Err(_) => LimitRead::Unreadable,
    }
}

/// A single-number file such as `memory.current`.
pub(super) fn parse_u64(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

/// Value of `key` in a flat-keyed file (`memory.stat`, `memory.events`, `memory.oom_control`).
pub(super) fn flat_value(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|line| {
        let mut it = line.split_whitespace();
        if it.next()? != key {
            return None;
        }
        it.next()?.parse().ok()
    })
}

/// Parses `memory.pressure`; requires a well-formed `some` line, `full` is optional.
pub(super) fn parse_psi(content: &str) -> Option<Psi> {
    let mut some: Option<(f64, u64)> = None;
    let mut full: Option<(f64, u64)> = None;
    for line in content.lines() {
        let mut it = line.split_whitespace();
        let kind = it.next();
        let mut avg10 = None;
        let mut total = None;
        for kv in it {
            match kv.split_once('=') {
                Some(("avg10", v)) => {
                    avg10 = v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0);
                }
                Some(("total", v)) => total = v.parse::<u64>().ok(),
                _ => {}
            }
        }
        match kind {
            Some("some") if some.is_none() => {
                if let (Some(a), Some(t)) = (avg10, total) {
                    some = Some((a, t));
                }
            }
            Some("full") if full.is_none() => {
                if let (Some(a), Some(t)) = (avg10, total) {
                    full = Some((a, t));
                }
            }
            _ => {}
        }
    }
    let (some_avg10, some_total_us) = some?;
    let (full_avg10, full_total_us) = full.unwrap_or((0.0, 0));
    Some(Psi {
        some_avg10,
        full_avg10,
        some_total_us,
        full_total_us,
    })
}

/// The memory-relevant lines of `/proc/self/cgroup`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ProcCgroup {
    pub(super) v1_memory: Option<String>,
    pub(super) v2: Option<String>,
}

pub(super) fn parse_proc_cgroup(content: &str) -> ProcCgroup {
    let mut out = ProcCgroup::default();
    for line in content.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if !path.starts_with('/') {
            continue;
        }
        if id == "0" && controllers.is_empty() {
            out.v2.get_or_insert_with(|| path.to_string());
        } else if controllers.split(',').any(|c| c == "memory") {
            out.v1_memory.get_or_insert_with(|| path.to_string());
        }
    }
    out
}

/// The fields of a mountinfo line this module needs (escapes already decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mount {
    pub(super) root: String,
    pub(super) mountpoint: String,
    pub(super) fstype: String,
    pub(super) superopts: String,
}

pub(super) fn parse_mountinfo(content: &str) -> Vec<Mount> {
    content
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let root = fields.get(3)?;
            let mountpoint = fields.get(4)?;
            let sep = 6 + fields.get(6..)?.iter().position(|f| *f == "-")?;
            let fstype = fields.get(sep + 1)?;
            let superopts = fields.get(sep + 3)?;
            if !mountpoint.starts_with('/') {
                return None;
            }
            Some(Mount {
                root: unescape_octal(root),
                mountpoint: unescape_octal(mountpoint),
                fstype: (*fstype).to_string(),
                superopts: (*superopts).to_string(),
            })
        })
        .collect()
}

/// Decodes the kernel's `\ooo` escapes (space, tab, newline, backslash) in mountinfo.
pub(super) fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(d) = b.get(i + 1..i + 4)
            && d.iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v =
                u32::from(d[0] - b'0') * 64 + u32::from(d[1] - b'0') * 8 + u32::from(d[2] - b'0');
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Path components, or `None` if the path escapes upwards (`..`, seen for processes outside
/// their cgroup namespace root), which cannot be mapped below a mount.
pub(super) fn components(path: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// The cgroup path relative to the mount's root, component-wise; empty (= the mount point
/// itself) when the path is not below the root.
pub(super) fn relative_components(mount_root: &str, cgroup_path: &str) -> Vec<String> {
    match (components(mount_root), components(cgroup_path)) {
        (Some(root), Some(path)) if path.starts_with(&root) => path
            .get(root.len()..)
            .unwrap_or_default()
            .iter()
            .map(|c| (*c).to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// Prefers the mount whose root contains the cgroup path (longest root wins, then file
/// order); otherwise the first candidate, whose mount point is then used as-is.
pub(super) fn pick_mount<'a>(
    candidates: impl Iterator<Item = &'a Mount>,
    cgroup_path: &str,
) -> Option<&'a Mount> {
    let path = components(cgroup_path);
    let mut first = None;
    let mut best: Option<(usize, &Mount)> = None;
    for m in candidates {
        first.get_or_insert(m);
        if let (Some(path), Some(root)) = (&path, components(&m.root))
            && path.starts_with(&root)
            && best.is_none_or(|(len, _)| root.len() > len)
        {
            best = Some((root.len(), m));
        }
    }
    best.map(|(_, m)| m).or(first)
}

/// Parses `MEMORY_LIMIT_BYTES`-style values: a plain byte count, or a Kubernetes quantity
/// (`2Gi`, `512Mi`, `1G`, `1500M`, `129e6`, `123Ki`, `1k`, `0.5Gi`), because the downward
/// API and humans both write these. Fractions round up, like Kubernetes' `Value()`.
/// Returns `None` for garbage, zero, negative, empty or values beyond `u64`.
#[must_use]
pub fn parse_limit_env(value: &str) -> Option<u64> {
    let s = value.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (int_part, rest) = s.split_at(int_end);
    let (frac_part, suffix) = match rest.strip_prefix('.') {
        Some(r) => r.split_at(r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len())),
        None => ("", rest),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let (bin_shift, suffix_exp): (u32, i32) = match suffix {
        "" => (0, 0),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        other => {
            let exp = other.strip_prefix(['e', 'E'])?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|c| c.is_ascii_digit())
            {
                return None;
            }
            (0, exp.parse().ok()?)
        }
    };
    let frac_part = frac_part.trim_end_matches('0');
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 36 {
        return None;
    }
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let num = mantissa.checked_mul(1u128 << bin_shift)?;
    let frac_len = i32::try_from(frac_part.len()).ok()?;
    let dec = suffix_exp - frac_len;
    let value = if dec >= 0 {
        num.checked_mul(10u128.checked_pow(dec.unsigned_abs())?)?
    } else {
        match 10u128.checked_pow(dec.unsigned_abs()) {
            Some(p) => num.div_ceil(p),
            // 10^39 and beyond exceed any u128 numerator: a positive value rounds up to 1.
            None => u128::from(num > 0),
        }
    };
    if value == 0 {
        return None;
    }
    u64::try_from(value).ok()
}
