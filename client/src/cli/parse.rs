//! Parsers for `--addr` and `--timeout`.

use std::time::Duration;

use super::DEFAULT_PORT;

/// Normalises `--addr`: a bare `host[:port]` gets `http://` (and port 50051 if it had none);
/// a trailing `/` is dropped. `http://` is plaintext, `https://` TLS; other schemes are refused.
pub fn parse_addr(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("address is empty".to_owned());
    }
    let with_scheme = match s.split_once("://") {
        Some(("http" | "https", _)) => s.to_owned(),
        Some((scheme, _)) => {
            return Err(format!(
                "unsupported scheme \"{scheme}\": use http://HOST:PORT, https://HOST:PORT or HOST:PORT"
            ));
        }
        None => {
            if has_port(s) {
                format!("http://{s}")
            } else {
                format!("http://{s}:{DEFAULT_PORT}")
            }
        }
    };
    let authority = with_scheme
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    if authority.is_empty() || authority.starts_with('/') {
        return Err(format!("invalid address \"{s}\": no host"));
    }
    let trimmed = with_scheme
        .strip_suffix('/')
        .unwrap_or(&with_scheme)
        .to_owned();
    let uri: tonic::transport::Uri = trimmed
        .parse()
        .map_err(|e| format!("invalid address \"{s}\": {e}"))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("invalid address \"{s}\": no host"));
    }
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(format!(
            "invalid address \"{s}\": a gRPC address has no path (got \"{}\")",
            uri.path()
        ));
    }
    Ok(trimmed)
}

/// Whether a scheme-less address already names a port ("host:80", "[::1]:80" but not "[::1]").
fn has_port(s: &str) -> bool {
    let after_host = match s.rfind(']') {
        Some(i) => &s[i + 1..],
        None => s,
    };
    after_host.contains(':')
}

/// Parses `--timeout`: a positive number with an optional unit `ms`, `s`, `m` or `h`
/// (no unit = seconds), e.g. "500ms", "10s", "2m", "1.5".
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!("invalid duration \"{s}\": expected e.g. \"500ms\", \"10s\", \"2m\" or seconds")
    })?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "invalid duration \"{s}\": unknown unit \"{other}\" (use ms, s, m or h)"
            ));
        }
    };
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("invalid duration \"{s}\": must be greater than 0"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration \"{s}\": {e}"))
}

/// The prefix of an address that stands for every A/AAAA record of a name.
pub const DNS_PREFIX: &str = "dns:///";

/// Parses one `--addr`: a `dns:///NAME[:PORT]` stays as it is (port 50051 added when missing),
/// anything else goes through [`parse_addr`].
pub fn parse_target(s: &str) -> Result<String, String> {
    let s = s.trim();
    let Some(rest) = s.strip_prefix(DNS_PREFIX) else {
        if s.starts_with("dns:") {
            return Err(format!(
                "invalid address \"{s}\": write dns:///NAME:PORT (three slashes, no DNS server)"
            ));
        }
        return parse_addr(s);
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = if has_port(rest) {
        let (h, p) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port: u16 = p
            .parse()
            .map_err(|_| format!("invalid address \"{s}\": port \"{p}\" is not 1..=65535"))?;
        (h, port)
    } else {
        (rest, DEFAULT_PORT)
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(['/', ' ']) {
        return Err(format!(
            "invalid address \"{s}\": no host name after dns:///"
        ));
    }
    if port == 0 {
        return Err(format!("invalid address \"{s}\": port 0 is not 1..=65535"));
    }
    Ok(format!("{DNS_PREFIX}{host}:{port}"))
}

/// Parses `top --refresh`: a duration from 100 ms to 1 s.
pub fn parse_refresh(s: &str) -> Result<Duration, String> {
    bounded(
        s,
        Duration::from_millis(100),
        Duration::from_secs(1),
        "100ms..=1s",
    )
}

/// Parses `top --window`: a duration from 10 s to 24 h.
pub fn parse_window(s: &str) -> Result<Duration, String> {
    bounded(
        s,
        Duration::from_secs(10),
        Duration::from_secs(86_400),
        "10s..=24h",
    )
}

/// [`parse_timeout`] limited to `lo..=hi` (`range` names it in the refusal).
fn bounded(s: &str, lo: Duration, hi: Duration, range: &str) -> Result<Duration, String> {
    let d = parse_timeout(s)?;
    if d < lo || d > hi {
        return Err(format!(
            "\"{}\" is out of range (allowed: {range})",
            s.trim()
        ));
    }
    Ok(d)
}
