//! From `--addr` values to endpoint addresses: `dns:///NAME:PORT` becomes every A/AAAA record
//! of NAME (through the system resolver, as every other program on the host resolves it).

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::cli::DNS_PREFIX;

/// The endpoints the `--addr` values stand for now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// Addresses to call (`http://IP:PORT`, or the `--addr` as given), each once, in the
    /// order given; a name's records sorted.
    pub(crate) endpoints: Vec<String>,
    /// `dns:///` names that resolved to nothing: (name, why).
    pub(crate) failures: Vec<(String, String)>,
}

/// Whether the `--addr` values name more than one stressd (or may: any `dns:///` name), which
/// switches every command to one row per endpoint.
pub(crate) fn is_fleet(addrs: &[String]) -> bool {
    addrs.len() != 1 || addrs.iter().any(|a| a.starts_with(DNS_PREFIX))
}

/// Whether any `--addr` is a name to resolve again as pods come and go.
pub(crate) fn has_names(addrs: &[String]) -> bool {
    addrs.iter().any(|a| a.starts_with(DNS_PREFIX))
}

/// Resolves every `dns:///` value; other values pass through unchanged.
pub(crate) async fn resolve(addrs: &[String]) -> Resolved {
    let mut out = Resolved::default();
    let mut seen = BTreeSet::new();
    for addr in addrs {
        let Some(name) = addr.strip_prefix(DNS_PREFIX) else {
            if seen.insert(addr.clone()) {
                out.endpoints.push(addr.clone());
            }
            continue;
        };
        match tokio::net::lookup_host(name).await {
            Ok(records) => {
                let urls = record_urls(records);
                if urls.is_empty() {
                    out.failures
                        .push((addr.clone(), "the name has no A/AAAA record".to_owned()));
                }
                for url in urls {
                    if seen.insert(url.clone()) {
                        out.endpoints.push(url);
                    }
                }
            }
            Err(e) => out.failures.push((addr.clone(), e.to_string())),
        }
    }
    out
}

/// `http://` URLs of resolved records, sorted and without duplicates (getaddrinfo returns one
/// record per socket type).
pub(crate) fn record_urls(records: impl IntoIterator<Item = SocketAddr>) -> Vec<String> {
    let set: BTreeSet<SocketAddr> = records.into_iter().collect();
    set.into_iter().map(|sa| format!("http://{sa}")).collect()
}

/// An address as shown to a person: without `http://` (`https://` stays, it matters).
pub(crate) fn display_addr(url: &str) -> &str {
    url.strip_prefix("http://").unwrap_or(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn fleet_mode_is_several_addresses_or_any_name() {
        let one = vec!["http://127.0.0.1:50051".to_owned()];
        assert!(!is_fleet(&one));
        assert!(!has_names(&one));
        let two = vec!["http://a:1".to_owned(), "http://b:1".to_owned()];
        assert!(is_fleet(&two));
        let dns = vec!["dns:///stressd:50051".to_owned()];
        assert!(is_fleet(&dns) && has_names(&dns));
    }

    #[test]
    fn records_become_sorted_unique_urls() {
        let a: SocketAddr = "127.0.0.3:7000".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:7000".parse().unwrap();
        let v6: SocketAddr = "[::1]:7000".parse().unwrap();
        assert_eq!(
            record_urls([a, b, a, v6]),
            vec![
                "http://127.0.0.2:7000",
                "http://127.0.0.3:7000",
                "http://[::1]:7000"
            ]
        );
        assert_eq!(display_addr("http://127.0.0.2:7000"), "127.0.0.2:7000");
        assert_eq!(display_addr("https://x:1"), "https://x:1");
    }

    #[tokio::test]
    async fn names_resolve_and_plain_addresses_pass_through() {
        let r = resolve(&[
            "http://10.0.0.1:1".to_owned(),
            "dns:///localhost:7000".to_owned(),
            "http://10.0.0.1:1".to_owned(),
            "dns:///no-such-host.invalid:7000".to_owned(),
        ])
        .await;
        assert_eq!(r.endpoints[0], "http://10.0.0.1:1");
        assert!(r.endpoints.len() >= 2, "{r:?}");
        assert!(
            r.endpoints[1..]
                .iter()
                .all(|e| e.ends_with(":7000") && (e.contains("127.0.0.1") || e.contains("::1"))),
            "{r:?}"
        );
        assert_eq!(r.failures.len(), 1);
        assert_eq!(r.failures[0].0, "dns:///no-such-host.invalid:7000");
    }
}
