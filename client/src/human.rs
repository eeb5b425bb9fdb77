//! Humanised numbers for text output: binary sizes, durations, rates and UTC timestamps.
//!
//! Everything here is pure so the exact strings are pinned by unit tests; the text renderer and
//! (if they want to) integration tests build on these.

use std::time::Duration;

const KIB: f64 = 1024.0;
const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const TIB: f64 = 1024.0 * 1024.0 * 1024.0 * 1024.0;

/// A byte count in the largest binary unit that keeps it at or above 1: "1.00 GiB",
/// "512.0 MiB", "37.5 MiB", "4.0 KiB", "512 B". GiB and TiB get two decimals (a 1% change is
/// still visible at a glance), KiB and MiB one.
pub(crate) fn bytes(n: u64) -> String {
    let f = n as f64;
    if f >= TIB {
        format!("{:.2} TiB", f / TIB)
    } else if f >= GIB {
        format!("{:.2} GiB", f / GIB)
    } else if f >= MIB {
        format!("{:.1} MiB", f / MIB)
    } else if f >= KIB {
        format!("{:.1} KiB", f / KIB)
    } else {
        format!("{n} B")
    }
}

/// A bytes field the proto marks `optional`: "-" when the server did not know it.
pub(crate) fn opt_bytes(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_owned(), bytes)
}

/// A byte count always in MiB with one decimal ("2041.6 MiB"), for run history, where runs are
/// compared side by side and a unit change between rows would hide the difference.
pub(crate) fn bytes_mib(n: u64) -> String {
    mib(n as f64 / MIB)
}

/// [`bytes_mib`] of a bytes field the proto marks `optional`: "-" when the server did not know it.
pub(crate) fn opt_bytes_mib(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_owned(), bytes_mib)
}

/// A size the server reports in MiB (log entries): always MiB with one decimal, so successive
/// log lines line up and compare directly ("1024.3 MiB").
pub(crate) fn mib(v: f64) -> String {
    format!("{v:.1} MiB")
}

/// A fill rate in MiB/s with one decimal ("1843.2 MiB/s").
pub(crate) fn mib_rate(v: f64) -> String {
    format!("{v:.1} MiB/s")
}

/// An integer with `,` between groups of three digits ("1,234,567").
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count with its unit: "1,000 lookups".
pub(crate) fn count_of(n: u64, unit: &str) -> String {
    format!("{} {unit}", thousands(n))
}

/// A duration as a person would say it: "850 ms" below a second, "5s" / "12.5s" below a
/// minute, then two units: "2m 05s", "1h 02m", "3d 04h".
pub(crate) fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let secs = d.as_secs();
    if secs < 60 {
        let tenths = (ms % 1000) / 100;
        return if tenths == 0 {
            format!("{secs}s")
        } else {
            format!("{secs}.{tenths}s")
        };
    }
    if secs < 3600 {
        return format!("{}m {:02}s", secs / 60, secs % 60);
    }
    if secs < 86_400 {
        return format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60);
    }
    format!("{}d {:02}h", secs / 86_400, (secs % 86_400) / 3600)
}

/// [`duration`] of a millisecond count as the proto carries it.
pub(crate) fn duration_ms(ms: u64) -> String {
    duration(Duration::from_millis(ms))
}

/// A whole-second parameter where 0 has a meaning of its own (e.g. "until stopped").
pub(crate) fn seconds_or(secs: u32, zero: &str) -> String {
    if secs == 0 {
        zero.to_owned()
    } else {
        duration(Duration::from_secs(u64::from(secs)))
    }
}

/// A percentage without trailing zeros ("25%", "12.5%").
pub(crate) fn percent(v: f64) -> String {
    format!("{v}%")
}

/// A yes/no flag for text output.
pub(crate) fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(4096), "4.0 KiB");
        assert_eq!(bytes(1 << 30), "1.00 GiB");
        assert_eq!(bytes(512 << 20), "512.0 MiB");
        assert_eq!(bytes(37 * (1 << 20) + (1 << 19)), "37.5 MiB");
        assert_eq!(bytes(3 * (1 << 30) + (1 << 29)), "3.50 GiB");
        assert_eq!(bytes(2 << 40), "2.00 TiB");
        assert_eq!(opt_bytes(None), "-");
        assert_eq!(opt_bytes(Some(1 << 20)), "1.0 MiB");
        assert_eq!(mib(1024.3), "1024.3 MiB");
        assert_eq!(bytes_mib(0), "0.0 MiB");
        assert_eq!(bytes_mib(2 << 30), "2048.0 MiB");
        assert_eq!(bytes_mib(2041 * (1 << 20) + 629_146), "2041.6 MiB");
        assert_eq!(opt_bytes_mib(None), "-");
        assert_eq!(opt_bytes_mib(Some(512 << 10)), "0.5 MiB");
    }

    #[test]
    fn rates_and_counts() {
        assert_eq!(mib_rate(1843.24), "1843.2 MiB/s");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(count_of(1000, "lookups"), "1,000 lookups");
        assert_eq!(count_of(0, "searches"), "0 searches");
        assert_eq!(percent(25.0), "25%");
        assert_eq!(percent(12.5), "12.5%");
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ms(0), "0 ms");
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(1000), "1s");
        assert_eq!(duration_ms(12_500), "12.5s");
        assert_eq!(duration_ms(59_999), "59.9s");
        assert_eq!(duration_ms(125_000), "2m 05s");
        assert_eq!(duration_ms(120_000), "2m 00s");
        assert_eq!(duration_ms(3_720_000), "1h 02m");
        assert_eq!(duration_ms(86_400_000 + 4 * 3_600_000), "1d 04h");
        assert_eq!(seconds_or(0, "until stopped"), "until stopped");
        assert_eq!(seconds_or(120, "x"), "2m 00s");
    }
}
