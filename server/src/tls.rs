//! https served by Passgate itself (`PASSGATE_TLS_CERT`, `PASSGATE_TLS_KEY`):
//! rustls on ring, TLS 1.2 and 1.3, HTTP/1.1. A small deployment needs no
//! proxy in front, and a phone on the same network reaches a developer's
//! machine over https (WebAuthn needs a secure origin).
//!
//! The certificate is read at start, and again on each `SIGHUP`, so that
//! a renewal (certbot, an ACME client) takes effect without a restart:
//! new connections get the new certificate, open ones keep theirs. A
//! reload that fails (a file half-written, a key that does not match the
//! certificate) keeps the certificate in use and says why in the log;
//! a start that fails does not start.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{bail, Context};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Where the certificate chain and its private key are, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate first, then the intermediates.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The certificate served to new connections, replaced by [`Self::reload`].
pub struct Certificate {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate").field("files", &self.files).finish_non_exhaustive()
    }
}

impl Certificate {
    /// Reads `files`; fails if they do not hold a certificate chain and
    /// the private key of its first certificate.
    pub fn load(files: TlsFiles) -> anyhow::Result<Arc<Self>> {
        let provider = provider();
        let current = read(&files, &provider)?;
        Ok(Arc::new(Certificate { files, provider, current: RwLock::new(current) }))
    }

    /// Reads the files again. On failure the certificate in use stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = read(&self.files, &self.provider)?;
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// The acceptor of the server's connections, serving whatever
    /// certificate is current at each handshake.
    pub fn acceptor(self: &Arc<Self>) -> anyhow::Result<TlsAcceptor> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Reloads on every `SIGHUP` until the process ends.
    #[cfg(unix)]
    pub fn reload_on_sighup(self: &Arc<Self>) -> anyhow::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
        let certificate = self.clone();
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match certificate.reload() {
                    Ok(()) => tracing::info!(cert = %certificate.files.cert.display(), "TLS certificate reloaded"),
                    Err(e) => tracing::error!(error = format!("{e:#}"), "TLS certificate not reloaded; the previous one stays in use"),
                }
            }
        });
        Ok(())
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

/// ring, as the PostgreSQL client uses (no C build beyond ring's own).
fn provider() -> Arc<CryptoProvider> {
    // Deprecated in rustls 0.23.48 for lacking post-quantum key exchange
    // only (as in store/postgres/tls.rs).
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(files: &TlsFiles, provider: &CryptoProvider) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain = read_chain(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("PASSGATE_TLS_KEY {}: no PEM private key read", files.key.display()))?;
    let certified = CertifiedKey::from_der(chain, key, provider).with_context(|| {
        format!("PASSGATE_TLS_KEY {} is not the key of PASSGATE_TLS_CERT {}", files.key.display(), files.cert.display())
    })?;
    Ok(Arc::new(certified))
}

fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("PASSGATE_TLS_CERT {}: not a PEM certificate chain", path.display()))?;
    if chain.is_empty() {
        bail!("PASSGATE_TLS_CERT {} holds no certificate", path.display());
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    }

    fn self_signed(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap().self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused_at_start_and_at_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed("localhost");
        let (_, other_key) = self_signed("localhost");
        let files = TlsFiles { cert: write(dir.path(), "cert.pem", &cert), key: write(dir.path(), "key.pem", &other_key) };
        let err = Certificate::load(files.clone()).unwrap_err();
        assert!(format!("{err:#}").contains("is not the key of"), "{err:#}");

        write(dir.path(), "key.pem", &key);
        let certificate = Certificate::load(files.clone()).unwrap();
        let served = certificate.current.read().unwrap().clone();
        // A renewal half-written: the certificate in use stays.
        write(dir.path(), "key.pem", &other_key);
        assert!(certificate.reload().is_err());
        assert!(Arc::ptr_eq(&served, &certificate.current.read().unwrap()), "the served certificate changed");
        write(dir.path(), "cert.pem", "");
        let err = certificate.reload().unwrap_err();
        assert!(format!("{err:#}").contains("PASSGATE_TLS_CERT"), "{err:#}");
    }
}
