//! TLS on the gRPC port: stressctl over https://, the plaintext --health-addr, mutual TLS,
//! certificate reload without restart, and auth together with TLS. Certificates are made at
//! run time with rcgen.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SerialNumber,
};
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A test CA and the files a test writes into its directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "memstress test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pki = Self {
            dir: tempfile::tempdir().unwrap(),
            ca,
        };
        std::fs::write(pki.path("ca.pem"), pki.ca.pem()).unwrap();
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// Issues a leaf certificate with `serial`, writes `<name>.pem` and `<name>-key.pem`, and
    /// returns its DER.
    fn issue(&self, name: &str, serial: u64, client: bool) -> CertificateDer<'static> {
        let names = if client {
            vec!["stressctl".to_owned()]
        } else {
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
        };
        let mut params = CertificateParams::new(names).unwrap();
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        // Key first, cert second, each by rename: a reload never sees a half-written file.
        for (file, text) in [
            (format!("{name}-key.pem"), key.serialize_pem()),
            (format!("{name}.pem"), cert.pem()),
        ] {
            let tmp = self.path(&format!("{file}.tmp"));
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, self.path(&file)).unwrap();
        }
        cert.der().clone()
    }

    /// stressd with TLS on its gRPC port (plus `extra` flags).
    fn stressd(&self, extra: &[String]) -> Stressd {
        let args = [
            "--tls-cert".to_owned(),
            self.arg("server.pem"),
            "--tls-key".to_owned(),
            self.arg("server-key.pem"),
        ];
        Stressd::spawn_with(|cmd| {
            cmd.args(args).args(extra);
        })
    }
}

fn https(s: &Stressd) -> String {
    format!("https://{}", s.grpc)
}

/// The certificate a fresh TLS connection to `addr` is served.
async fn peer_certificate(pki: &Pki, addr: &str) -> CertificateDer<'static> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

#[test]
fn stressctl_speaks_tls_and_names_an_unknown_ca() {
    let pki = Pki::new();
    pki.issue("server", 1, false);
    let s = pki.stressd(&[]);
    let ca = pki.arg("ca.pem");

    let (code, out, err) = stressctl(&https(&s), &["status", "--ca-file", &ca]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("IDLE"), "{out}");

    // System roots (the built-in Mozilla roots) do not know the test CA.
    let (code, _, err) = stressctl(&https(&s), &["status"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("certificate") && err.contains("--ca-file"),
        "{err}"
    );

    // Plaintext against the TLS port fails as a connection problem.
    let (code, _, err) = stressctl(&s.url(), &["status"]);
    assert_eq!(code, 2, "{err}");

    // The HTTP side port stays plaintext.
    let mut tcp = std::net::TcpStream::connect(&s.http).unwrap();
    use std::io::{Read, Write};
    tcp.write_all(b"GET /health HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"),
        "{reply}"
    );
}

#[tokio::test]
async fn health_addr_answers_in_plaintext_while_grpc_is_tls() {
    let pki = Pki::new();
    pki.issue("server", 1, false);
    let s = pki.stressd(&["--health-addr".to_owned(), "127.0.0.1:0".to_owned()]);
    let line = s.wait_line(" listening grpc=");
    let health = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("health="))
        .expect("health= in the listening line")
        .to_owned();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{health}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    for service in ["", "memstress.v1.StressService"] {
        let status = client
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let (code, _, err) = stressctl(&https(&s), &["status", "--ca-file", &pki.arg("ca.pem")]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn mutual_tls_needs_a_client_certificate() {
    let pki = Pki::new();
    pki.issue("server", 1, false);
    pki.issue("client", 2, true);
    let s = pki.stressd(&["--tls-client-ca".to_owned(), pki.arg("ca.pem")]);
    let ca = pki.arg("ca.pem");

    let (code, _, err) = stressctl(&https(&s), &["status", "--ca-file", &ca]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("client certificate"), "{err}");

    let (code, out, err) = stressctl(
        &https(&s),
        &[
            "status",
            "--ca-file",
            &ca,
            "--client-cert",
            &pki.arg("client.pem"),
            "--client-key",
            &pki.arg("client-key.pem"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test]
async fn replaced_certificates_are_served_without_restart() {
    let pki = Pki::new();
    let first = pki.issue("server", 1, false);
    let s = pki.stressd(&[]);
    assert_eq!(peer_certificate(&pki, &s.grpc).await, first);

    let second = pki.issue("server", 2, false);
    assert_ne!(first, second);
    let deadline = Instant::now() + Duration::from_secs(5);
    while peer_certificate(&pki, &s.grpc).await != second {
        assert!(Instant::now() < deadline, "new certificate not served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.wait_line("new certificate in force");

    // A broken replacement keeps the last good pair (and says so once).
    std::fs::write(pki.path("server.pem"), "garbage").unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(peer_certificate(&pki, &s.grpc).await, second);
    s.wait_line("keeping the last good certificate");
}

#[test]
fn auth_and_tls_work_together() {
    let pki = Pki::new();
    pki.issue("server", 1, false);
    let token = pki.path("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let s = pki.stressd(&["--auth-token-file".to_owned(), token.display().to_string()]);
    let ca = pki.arg("ca.pem");
    let token = token.display().to_string();

    let (code, _, err) = stressctl(&https(&s), &["stop", "--ca-file", &ca]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("UNAUTHENTICATED"), "{err}");
    let (code, out, err) = stressctl(
        &https(&s),
        &["stop", "--ca-file", &ca, "--token-file", &token],
    );
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn unusable_certificates_refuse_the_start() {
    let pki = Pki::new();
    pki.issue("server", 1, false);
    pki.issue("other", 2, false);
    let run = |cert: &Path, key: &Path| {
        let out = Command::new(bin("stressd"))
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .stdout(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    std::fs::write(pki.path("garbage.pem"), "not a certificate").unwrap();
    let (code, err) = run(&pki.path("garbage.pem"), &pki.path("server-key.pem"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--tls-cert") && err.contains("garbage.pem"),
        "{err}"
    );

    let (code, err) = run(&pki.path("server.pem"), &pki.path("other-key.pem"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("do not fit"), "{err}");

    let (code, err) = run(&pki.path("server.pem"), &pki.path("missing.pem"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--tls-key") && err.contains("missing.pem"),
        "{err}"
    );
}
