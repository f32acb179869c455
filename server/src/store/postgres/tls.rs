//! TLS to PostgreSQL: rustls (ring) under tokio-postgres, driven by
//! libpq's `sslmode` and `sslrootcert` in `DATABASE_URL`.
//!
//! | `sslmode` | encrypted | verified |
//! | --- | --- | --- |
//! | `disable` | never | — |
//! | `allow`, `prefer` (the default) | when the server offers it; else in clear | nothing (the chain if `sslrootcert` is given) |
//! | `require` | always | nothing (the chain if `sslrootcert` is given, as libpq) |
//! | `verify-ca` | always | the chain, against `sslrootcert` |
//! | `verify-full` | always | the chain, against `sslrootcert`, and the host name |
//!
//! Unverified TLS (`require` without a CA) protects against passive
//! eavesdropping only: anyone on the path can present a certificate of
//! their own. `verify-full` also stops an active attacker. `allow` is
//! read as `prefer` (TLS first), and `sslrootcert` must name a PEM file
//! (libpq's `system` and `~/.postgresql/root.crt` default are not read).
//! A Unix socket never uses TLS (as libpq). tokio-postgres knows neither
//! `verify-*` nor `sslrootcert`: both are taken out of the URL here and
//! it sees `sslmode=require`.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{bail, Context as _};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    Nothing,
    Chain,
    ChainAndName,
}

/// `DATABASE_URL` split: what tokio-postgres reads, and libpq's TLS
/// parameters it does not.
struct Split {
    /// The URL with `sslmode` and `sslrootcert` taken out.
    rest: String,
    mode: Mode,
    root_cert: Option<String>,
}

fn split(url: &str) -> anyhow::Result<Split> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut root_cert, mut kept) = (None, None, Vec::new());
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match decode(key)?.as_str() {
            "sslmode" => mode = Some(decode(value)?),
            "sslrootcert" => root_cert = Some(decode(value)?),
            _ => kept.push(pair),
        }
    }
    let mode = match mode.as_deref() {
        None | Some("prefer" | "allow") => Mode::Prefer,
        Some("disable") => Mode::Disable,
        Some("require") => Mode::Require,
        Some("verify-ca") => Mode::VerifyCa,
        Some("verify-full") => Mode::VerifyFull,
        Some(other) => {
            bail!("DATABASE_URL: sslmode={other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full")
        }
    };
    let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok(Split { rest, mode, root_cert })
}

/// Percent-decoding, as libpq reads a URL (no `+` for a space).
fn decode(text: &str) -> anyhow::Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(byte) = hex else { bail!("DATABASE_URL has an invalid percent-encoding in its parameters") };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).context("DATABASE_URL has a parameter that is not UTF-8")
}

/// The connection settings of `url` and the TLS connector its `sslmode`
/// and `sslrootcert` ask for.
pub(crate) fn connect_settings(url: &str) -> anyhow::Result<(tokio_postgres::Config, MakeRustls)> {
    let Split { rest, mode, root_cert } = split(url)?;
    let mut config: tokio_postgres::Config = rest.parse().context("DATABASE_URL is not a PostgreSQL URL")?;
    config.ssl_mode(match mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    });
    // A Unix socket never uses TLS (the server refuses it there).
    let hosts = config.get_hosts();
    if !hosts.is_empty() && config.get_hostaddrs().is_empty() && hosts.iter().all(|h| !matches!(h, Host::Tcp(_))) {
        config.ssl_mode(SslMode::Disable);
    }
    let verify = match (mode, &root_cert) {
        (Mode::VerifyFull, _) => Verify::ChainAndName,
        (Mode::VerifyCa, _) | (Mode::Prefer | Mode::Require, Some(_)) => Verify::Chain,
        (Mode::Disable, _) | (Mode::Prefer | Mode::Require, None) => Verify::Nothing,
    };
    let roots = match root_cert.as_deref() {
        None if verify != Verify::Nothing => {
            bail!("DATABASE_URL: sslmode=verify-ca and verify-full need sslrootcert=/path/to/ca.pem (the CA that signed the server's certificate)")
        }
        None => None,
        Some("system") => bail!("DATABASE_URL: sslrootcert=system is not supported: name the CA's PEM file"),
        Some(path) => Some(read_roots(path)?),
    };
    Ok((config, MakeRustls::new(verify, roots)?))
}

fn read_roots(path: &str) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).with_context(|| format!("DATABASE_URL: reading sslrootcert {path}"))?;
    for cert in certs {
        let cert = cert.with_context(|| format!("DATABASE_URL: sslrootcert {path} is not PEM certificates"))?;
        roots.add(cert).with_context(|| format!("DATABASE_URL: a certificate of sslrootcert {path} is not usable"))?;
    }
    if roots.is_empty() {
        bail!("DATABASE_URL: sslrootcert {path} holds no certificate");
    }
    Ok(roots)
}

/// The first network host `url` may reach without TLS (its `sslmode`
/// neither `require` nor `verify-*`), loopback and Unix sockets aside;
/// `None` if there is none, or if the URL does not parse (opening the
/// store then fails on it).
pub(crate) fn cleartext_host(url: &str) -> Option<String> {
    let split = split(url).ok()?;
    if matches!(split.mode, Mode::Require | Mode::VerifyCa | Mode::VerifyFull) {
        return None;
    }
    let config: tokio_postgres::Config = split.rest.parse().ok()?;
    let loopback = |name: &str| {
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        bare.eq_ignore_ascii_case("localhost")
            || bare.to_ascii_lowercase().ends_with(".localhost")
            || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    };
    if !config.get_hostaddrs().is_empty() {
        return config.get_hostaddrs().iter().find(|ip| !ip.is_loopback()).map(ToString::to_string);
    }
    config.get_hosts().iter().find_map(|host| match host {
        Host::Tcp(name) if !loopback(name) => Some(name.clone()),
        _ => None,
    })
}

/// tokio-postgres's TLS: rustls on ring.
#[derive(Clone)]
pub(crate) struct MakeRustls {
    config: Arc<ClientConfig>,
    check_name: bool,
}

impl MakeRustls {
    fn new(verify: Verify, roots: Option<RootCertStore>) -> anyhow::Result<Self> {
        // ring, not aws-lc-rs (which needs cmake to build); deprecated in
        // rustls 0.23.48 for lacking post-quantum key exchange only.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (verify, roots) {
            (Verify::Nothing, _) | (_, None) => Arc::new(Unverified(provider.clone())),
            (Verify::Chain, Some(roots)) => Arc::new(ChainOnly(webpki(roots, &provider)?)),
            (Verify::ChainAndName, Some(roots)) => webpki(roots, &provider)?,
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS to PostgreSQL: the protocol versions")?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustls { config: Arc::new(config), check_name: verify == Verify::ChainAndName })
    }
}

fn webpki(roots: RootCertStore, provider: &Arc<CryptoProvider>) -> anyhow::Result<Arc<WebPkiServerVerifier>> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("TLS to PostgreSQL: the certificate verifier")
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        // Called for every connection, TLS or not (a Unix socket's is
        // empty): a bad name fails only the handshake that needs it.
        let name = match ServerName::try_from(domain.to_owned()) {
            Ok(name) => Ok(name),
            // Unchecked: any name does (rustls sends no SNI for an address).
            Err(_) if !self.check_name => Ok(ServerName::IpAddress(IpAddr::from([0, 0, 0, 0]).into())),
            Err(_) => Err(format!("sslmode=verify-full: {domain:?} is not a host name to verify")),
        };
        Ok(RustlsConnect { config: self.config.clone(), name })
    }
}

pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: Result<ServerName<'static>, String>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = self.name.map_err(io::Error::other)?;
            let stream = tokio_rustls::TlsConnector::from(self.config).connect(name, stream).await?;
            Ok(RustlsStream(stream))
        })
    }
}

pub(crate) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    /// No `tls-server-end-point` binding: SCRAM runs without it.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// `require` without a CA: any certificate, as long as the server holds
/// its key (the handshake's signatures are still checked).
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain against the CA, whatever name the certificate
/// is for (webpki checks the chain before the name, so a wrong name
/// means a good chain).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn libpqs_tls_parameters_are_taken_out_for_tokio_postgres() {
        let s = split("postgres://u:p@db.internal:5432/app?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem").unwrap();
        assert_eq!(s.rest, "postgres://u:p@db.internal:5432/app?application_name=x");
        assert_eq!(s.mode, Mode::VerifyFull);
        assert_eq!(s.root_cert.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(split("postgres://h/db").unwrap().mode, Mode::Prefer, "libpq's default");
        assert_eq!(split("postgres://h/db?sslmode=allow").unwrap().mode, Mode::Prefer);
        assert_eq!(split("postgres://h/db?sslmode=disable").unwrap().rest, "postgres://h/db");
        let err = split("postgres://h/db?sslmode=strict").err().unwrap();
        assert!(err.to_string().contains("sslmode"), "{err}");
    }

    #[test]
    fn verification_needs_a_ca() {
        for mode in ["verify-ca", "verify-full"] {
            let err = connect_settings(&format!("postgres://h/db?sslmode={mode}")).err().unwrap();
            assert!(err.to_string().contains("sslrootcert"), "{err}");
        }
        let err = connect_settings("postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem").err().unwrap();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let (config, _) = connect_settings("postgres://h/db?sslmode=require").unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        let (config, _) = connect_settings("postgres://h/db").unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Prefer);
        let (config, _) = connect_settings("postgres://%2Frun%2Fpostgresql/db?sslmode=require").unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Disable, "no TLS on a Unix socket");
    }

    #[test]
    fn cleartext_hosts_are_the_network_ones_without_required_tls() {
        assert_eq!(cleartext_host("postgres://u@db.internal/app").as_deref(), Some("db.internal"));
        assert_eq!(cleartext_host("postgres://u@db.internal/app?sslmode=prefer").as_deref(), Some("db.internal"));
        assert_eq!(cleartext_host("postgres://u@10.0.0.5:5432/app?sslmode=disable").as_deref(), Some("10.0.0.5"));
        assert_eq!(cleartext_host("postgres://u@localhost,db.internal/app").as_deref(), Some("db.internal"));
        for safe in [
            "postgres://u@db.internal/app?sslmode=require",
            "postgres://u@db.internal/app?sslmode=verify-full&sslrootcert=/ca.pem",
            "postgres://u@db.internal/app?sslmode=verify-ca&sslrootcert=/ca.pem",
            "postgres://u@localhost/app",
            "postgres://u@127.0.0.1:5432/app",
            "postgres://u@[::1]:5432/app",
            "postgres://u@%2Frun%2Fpostgresql/app",
            "postgresql:///app?host=/run/postgresql",
        ] {
            assert_eq!(cleartext_host(safe), None, "{safe}");
        }
    }
}
