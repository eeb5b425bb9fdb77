//! TLS for the gRPC port (`--tls-cert`, `--tls-key`, `--tls-client-ca`): rustls with the
//! `ring` provider, ALPN `h2`.
//!
//! The certificate and key are checked at startup (an unusable pair refuses the start) and
//! re-read by path when their metadata changes, at most once per [`RECHECK`] and only when a
//! handshake asks for the certificate — the same pattern as the token files
//! (`auth/token.rs`), so a renewed Kubernetes Secret needs no restart. A re-read that fails
//! keeps the last good pair and logs one NOTICE until a re-read succeeds.

use crate::auth::RECHECK;
use crate::file_stamp::FileStamp;
use crate::server::ServeError;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;
use tokio_rustls::TlsAcceptor;

/// Where a NOTICE about the certificate goes (the engine's log once it exists).
pub type NoticeSink = Arc<dyn Fn(String) + Send + Sync>;

/// The files named by the TLS flags.
#[derive(Debug, Clone)]
pub struct TlsPaths {
    /// `--tls-cert`: PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// `--tls-key`: PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// `--tls-client-ca`: PEM CA certificates; when set, clients must present a certificate
    /// that chains to one of them (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// A loaded TLS setup: the acceptor for the gRPC port and its reloading certificate.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    resolver: Arc<Reloading>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("resolver", &self.resolver)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads and checks every file; any problem names the flag, the file and what is wrong.
    pub fn load(paths: &TlsPaths) -> Result<Self, ServeError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pair = read_pair(&paths.cert, &paths.key, &provider)?;
        let resolver = Arc::new(Reloading {
            cert: paths.cert.clone(),
            key: paths.key.clone(),
            provider: Arc::clone(&provider),
            state: Mutex::new(PairState {
                pair,
                checked: Instant::now(),
                failing: false,
            }),
            notice: OnceLock::new(),
        });
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| ServeError::Tls(e.to_string()))?;
        let builder = match &paths.client_ca {
            Some(ca) => builder.with_client_cert_verifier(client_verifier(ca, &provider)?),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::clone(&resolver) as _);
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            resolver,
        })
    }

    /// Sends later NOTICEs (certificate replaced, re-read failed) to `sink`; before this they
    /// go to stderr.
    pub fn set_notice_sink(&self, sink: NoticeSink) {
        let _ = self.resolver.notice.set(sink);
    }

    /// The acceptor for the gRPC port's connections.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }
}

/// One certificate/key pair as served, with the stamps of the files it came from.
#[derive(Debug)]
struct Pair {
    key: Arc<CertifiedKey>,
    stamps: (FileStamp, FileStamp),
}

fn file_error(flag: &'static str, path: &Path, reason: impl ToString) -> ServeError {
    ServeError::TlsFile {
        flag,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Reads the PEM certificates of `path` (at least one).
fn read_certs(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    // Read first so a missing file is reported as such, not as a PEM problem.
    let pem = std::fs::read(path).map_err(|e| file_error(flag, path, e))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(flag, path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(flag, path, "holds no PEM CERTIFICATE block"));
    }
    Ok(certs)
}

/// Reads and checks a certificate/key pair: both parse and the key belongs to the
/// certificate.
fn read_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Pair, ServeError> {
    // Stamps first: if a file changes between the two, the next check sees a new stamp.
    let stamps = (
        FileStamp::of_path(cert).map_err(|e| file_error("--tls-cert", cert, e))?,
        FileStamp::of_path(key).map_err(|e| file_error("--tls-key", key, e))?,
    );
    let chain = read_certs("--tls-cert", cert)?;
    let key_pem = std::fs::read(key).map_err(|e| file_error("--tls-key", key, e))?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        file_error(
            "--tls-key",
            key,
            format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })?;
    let certified = CertifiedKey::from_der(chain, key_der, provider).map_err(|e| {
        file_error(
            "--tls-cert",
            cert,
            format!(
                "certificate and --tls-key {} do not fit: {e}",
                key.display()
            ),
        )
    })?;
    Ok(Pair {
        key: Arc::new(certified),
        stamps,
    })
}

/// The verifier that requires a client certificate chaining to `--tls-client-ca`.
fn client_verifier(
    ca: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, ServeError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs("--tls-client-ca", ca)? {
        roots
            .add(cert)
            .map_err(|e| file_error("--tls-client-ca", ca, format!("unusable CA: {e}")))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|e| file_error("--tls-client-ca", ca, e))
}

#[derive(Debug)]
struct PairState {
    pair: Pair,
    checked: Instant,
    /// A re-read failed and was reported; no further NOTICE until one succeeds.
    failing: bool,
}

/// The certificate resolver: serves the last good pair, re-reading the files when they
/// change.
struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    state: Mutex<PairState>,
    notice: OnceLock<NoticeSink>,
}

impl std::fmt::Debug for Reloading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Reloading {
    /// The pair to serve now, after a re-read if [`RECHECK`] has passed and a file changed;
    /// plus the NOTICE that re-read produced, if any.
    fn current(&self, now: Instant) -> (Arc<CertifiedKey>, Option<String>) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if now.saturating_duration_since(st.checked) < RECHECK {
            return (Arc::clone(&st.pair.key), None);
        }
        st.checked = now;
        let unchanged = matches!(
            (FileStamp::of_path(&self.cert), FileStamp::of_path(&self.key)),
            (Ok(c), Ok(k)) if (c, k) == st.pair.stamps
        );
        if unchanged {
            return (Arc::clone(&st.pair.key), None);
        }
        let notice = match read_pair(&self.cert, &self.key, &self.provider) {
            Ok(pair) => {
                st.pair = pair;
                st.failing = false;
                Some(format!(
                    "--tls-cert {}: new certificate in force",
                    self.cert.display()
                ))
            }
            Err(e) if !st.failing => {
                st.failing = true;
                Some(format!("{e}; keeping the last good certificate"))
            }
            Err(_) => None,
        };
        (Arc::clone(&st.pair.key), notice)
    }

    fn notify(&self, message: String) {
        match self.notice.get() {
            Some(sink) => sink(message),
            None => eprintln!("stressd: {message}"),
        }
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let (key, notice) = self.current(Instant::now());
        // Outside the lock: the sink takes the log hub's.
        if let Some(message) = notice {
            self.notify(message);
        }
        Some(key)
    }
}
