//! `passgate serve` speaking https itself (`PASSGATE_TLS_CERT`,
//! `PASSGATE_TLS_KEY`): a client that trusts the CA is served over TLS,
//! a renewed certificate is served after `SIGHUP` without a restart, and
//! a broken renewal keeps the certificate in use.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    fn hang_up(&self) {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.0.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    }
}

fn ca() -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    (params.self_signed(&key).unwrap(), key)
}

/// A certificate for `localhost` signed by `ca`, written where the server reads it.
fn issue(ca: &(rcgen::Certificate, KeyPair), dir: &Path) -> CertificateDer<'static> {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".into()]).unwrap().signed_by(&key, &ca.0, &ca.1).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    cert.der().clone()
}

fn connector(ca: &rcgen::Certificate) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    #[allow(deprecated)] // ring, as the server (rustls 0.23.48 deprecates it for lacking post-quantum KEX only)
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config =
        rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap().with_root_certificates(roots);
    let mut config = config.with_no_client_auth();
    // Each connection a full handshake: a resumed session would show the
    // certificate of the session it resumes.
    config.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

/// `GET /healthz` over TLS: the certificate the server presented, and the answer's status line.
async fn get_healthz(port: u16, tls: &TlsConnector) -> std::io::Result<(CertificateDer<'static>, String)> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut stream = tls.connect(ServerName::try_from("localhost").unwrap(), tcp).await?;
    let presented = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer);
    Ok((presented, answer.lines().next().unwrap_or_default().to_owned()))
}

#[tokio::test]
async fn passgate_serves_https_itself_and_takes_a_renewed_certificate_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let first = issue(&ca, dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_passgate"))
            .arg("serve")
            .env("DATABASE_URL", format!("sqlite://{}", dir.path().join("passgate.db").display()))
            .env("PASSGATE_MODE", "sandbox")
            .env("PASSGATE_BIND", format!("127.0.0.1:{port}"))
            .env("PASSGATE_ORIGIN", format!("https://localhost:{port}"))
            .env("PASSGATE_TLS_CERT", dir.path().join("cert.pem"))
            .env("PASSGATE_TLS_KEY", dir.path().join("key.pem"))
            .env("RUST_LOG", "passgate=error")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let tls = connector(&ca.0);
    let mut served = None;
    for _ in 0..400 {
        if let Ok(answer) = get_healthz(port, &tls).await {
            served = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (presented, status) = served.expect("passgate did not serve https");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(presented, first);

    // Plain HTTP on the https port is not served.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"), "served in clear");

    // A renewal, then SIGHUP: new connections get the new certificate.
    let second = issue(&ca, dir.path());
    assert_ne!(first, second);
    server.hang_up();
    let mut presented = first.clone();
    for _ in 0..400 {
        presented = get_healthz(port, &tls).await.unwrap().0;
        if presented != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(presented, second, "the renewed certificate was not served after SIGHUP");

    // A renewal half-written (a key that is not the certificate's): the
    // reload fails, and the certificate in use stays.
    let third_key = KeyPair::generate().unwrap();
    std::fs::write(dir.path().join("key.pem"), third_key.serialize_pem()).unwrap();
    issue_only_cert(&ca, dir.path());
    server.hang_up();
    for _ in 0..20 {
        let (presented, status) = get_healthz(port, &tls).await.unwrap();
        assert_eq!((presented, status.as_str()), (second.clone(), "HTTP/1.1 200 OK"));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Writes a new certificate without its key.
fn issue_only_cert(ca: &(rcgen::Certificate, KeyPair), dir: &Path) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".into()]).unwrap().signed_by(&key, &ca.0, &ca.1).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
}
