//! TLS for `https://` addresses: the options (`--ca-file`, `--client-cert`, `--client-key`),
//! the endpoint setup, and handshake failures in words.
//!
//! Without `--ca-file` the server's certificate is checked against the system's roots (tonic's
//! `tls-native-roots`: /etc/ssl/certs and the like), the trust an operator already manages —
//! a private cluster CA installed there works with no flag at all.

use crate::error::CliError;
use clap::Args;
use rustls::{AlertDescription, CertificateError};
use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// TLS options (for `https://` addresses only).
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// PEM CA certificate(s) that issued stressd's certificate (https:// only); without it the
    /// built-in public (Mozilla) roots are used.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "STRESSCTL_CA_FILE",
        value_name = "PATH"
    )]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with --client-key; https:// only).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "STRESSCTL_CLIENT_CERT",
        value_name = "PATH",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "STRESSCTL_CLIENT_KEY",
        value_name = "PATH",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
}

impl TlsArgs {
    fn any(&self) -> bool {
        self.ca_file.is_some() || self.client_cert.is_some() || self.client_key.is_some()
    }
}

fn read(flag: &str, path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|e| CliError::TlsSetup(format!("cannot read {flag} {}: {e}", path.display())))
}

/// Adds TLS to `endpoint` when `addr` is `https://`; TLS options with another address are
/// refused rather than silently ignored.
pub(crate) fn configure(
    endpoint: Endpoint,
    addr: &str,
    args: &TlsArgs,
) -> Result<Endpoint, CliError> {
    if !addr.starts_with("https://") {
        if args.any() {
            return Err(CliError::TlsSetup(format!(
                "--ca-file, --client-cert and --client-key need an https:// address (got {addr})"
            )));
        }
        return Ok(endpoint);
    }
    let mut config = ClientTlsConfig::new();
    config = match &args.ca_file {
        Some(ca) => config.ca_certificate(Certificate::from_pem(read("--ca-file", ca)?)),
        None => config.with_native_roots(),
    };
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        config = config.identity(Identity::from_pem(
            read("--client-cert", cert)?,
            read("--client-key", key)?,
        ));
    }
    endpoint
        .tls_config(config)
        .map_err(|e| CliError::TlsSetup(format!("TLS setup failed: {}", innermost(&e))))
}

fn innermost<'a>(err: &'a (dyn StdError + 'static)) -> String {
    std::iter::successors(Some(err), |e: &&'a (dyn StdError + 'static)| (*e).source())
        .last()
        .map_or_else(|| err.to_string(), ToString::to_string)
}

/// The rustls error somewhere in `err`'s chain (rustls errors travel inside `io::Error`s,
/// whose `source` skips them, hence the `get_ref`).
fn rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    std::iter::successors(Some(err), |e: &&'a (dyn StdError + 'static)| (*e).source()).find_map(
        |e| {
            e.downcast_ref::<rustls::Error>().or_else(|| {
                e.downcast_ref::<std::io::Error>()
                    .and_then(std::io::Error::get_ref)
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            })
        },
    )
}

/// An alert the server sent, recognised by its words: once the handshake is done (TLS 1.3
/// checks the client certificate after it), h2 passes the failure on as text only.
fn alert_in_words<'a>(err: &'a (dyn StdError + 'static)) -> Option<rustls::Error> {
    const ALERTS: [AlertDescription; 4] = [
        AlertDescription::CertificateRequired,
        AlertDescription::BadCertificate,
        AlertDescription::UnknownCA,
        AlertDescription::CertificateUnknown,
    ];
    let texts: Vec<String> =
        std::iter::successors(Some(err), |e: &&'a (dyn StdError + 'static)| (*e).source())
            .map(ToString::to_string)
            .collect();
    ALERTS
        .into_iter()
        .map(rustls::Error::AlertReceived)
        .find(|alert| {
            let words = alert.to_string();
            texts.iter().any(|t| t.contains(&words))
        })
}

/// A TLS handshake failure in `err`'s chain, in words naming the cause; `None` if there is
/// none.
pub(crate) fn handshake_failure(err: &(dyn StdError + 'static)) -> Option<String> {
    let in_words;
    let tls = match rustls_error(err) {
        Some(tls) => tls,
        None => {
            in_words = alert_in_words(err)?;
            &in_words
        }
    };
    let cause = match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => "the server's certificate is not issued by a \
                 trusted CA (give the issuing CA with --ca-file)"
                .to_owned(),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the server's certificate does not name this host (name mismatch)".to_owned()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".to_owned()
            }
            other => format!("the server's certificate is invalid: {other:?}"),
        },
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server requires a client certificate (give --client-cert and --client-key)"
                .to_owned()
        }
        rustls::Error::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown,
        ) => "the server refused the client certificate (not issued by its --tls-client-ca)"
            .to_owned(),
        other => other.to_string(),
    };
    Some(format!("TLS handshake failed: {cause}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_failures_name_their_cause() {
        let wrapped = |e: rustls::Error| std::io::Error::other(e);
        let unknown = wrapped(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        let msg = handshake_failure(&unknown).unwrap_or_default();
        assert!(msg.contains("--ca-file"), "{msg}");
        let required = wrapped(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired,
        ));
        let msg = handshake_failure(&required).unwrap_or_default();
        assert!(msg.contains("--client-cert"), "{msg}");
        let name = wrapped(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName,
        ));
        let msg = handshake_failure(&name).unwrap_or_default();
        assert!(msg.contains("name mismatch"), "{msg}");
        assert!(handshake_failure(&std::io::Error::other("plain")).is_none());
        // As h2 reports it: the alert's words only.
        let text = std::io::Error::other(format!(
            "connection error: {}",
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired)
        ));
        let msg = handshake_failure(&text).unwrap_or_default();
        assert!(msg.contains("--client-cert"), "{msg}");
    }

    #[test]
    fn tls_options_need_https() {
        let args = TlsArgs {
            ca_file: Some(PathBuf::from("/nonexistent")),
            ..TlsArgs::default()
        };
        let endpoint = Endpoint::from_static("http://127.0.0.1:1");
        let err = configure(endpoint.clone(), "http://127.0.0.1:1", &args).err();
        assert!(matches!(err, Some(CliError::TlsSetup(m)) if m.contains("https://")));
        let err = configure(endpoint, "https://127.0.0.1:1", &args).err();
        assert!(matches!(err, Some(CliError::TlsSetup(m)) if m.contains("/nonexistent")));
    }
}
