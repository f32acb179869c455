//! Secrets the server must read back (an authenticator app's key), sealed
//! at rest: AES-256-GCM under the configured key (`PASSGATE_SECRETS_KEY`),
//! a fresh random nonce per value, and the owner's identity as associated
//! data, so that a sealed value copied onto another row does not open.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::rngs::OsRng;
use rand::TryRngCore;

/// The format's version, first in each sealed value.
const PREFIX: &str = "v1.";
const NONCE_BYTES: usize = 12;

/// A 256-bit key. `Debug` never shows it.
#[derive(Clone)]
pub struct SealingKey(Key<Aes256Gcm>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("PASSGATE_SECRETS_KEY must be 32 bytes in base64 (e.g. `openssl rand -base64 32`)")]
    InvalidKey,
    #[error("the operating system's random generator failed")]
    Randomness,
    /// Not sealed by this key for this owner, or altered.
    #[error("a sealed value does not open with the configured key")]
    Unreadable,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(<redacted>)")
    }
}

impl SealingKey {
    /// A key as configured: 32 bytes in standard base64.
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| SealError::InvalidKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| SealError::InvalidKey)?;
        Ok(SealingKey(bytes.into()))
    }

    /// The sandbox's key when none is configured: public, so a sandbox's
    /// sealed values protect nothing. Production refuses to start without
    /// a key of its own.
    pub fn sandbox() -> Self {
        SealingKey((*b"passgate sandbox key: not secret").into())
    }

    /// A key of its own for another use (`label`), derived from this one
    /// (HMAC-SHA256 as HKDF's expand step), so that one configured secret
    /// serves several purposes without any two sharing a key.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = crate::token::hmac_sha256(self.0.as_slice());
        mac.update(label.as_bytes());
        mac.update(&[1]);
        mac.finalize().into_bytes().into()
    }

    pub fn seal(&self, plaintext: &[u8], owner: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        OsRng.try_fill_bytes(&mut nonce).map_err(|_| SealError::Randomness)?;
        let cipher = Aes256Gcm::new(&self.0);
        let sealed =
            cipher.encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: owner.as_bytes() }).map_err(|_| SealError::Unreadable)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn open(&self, sealed: &str, owner: &str) -> Result<Vec<u8>, SealError> {
        let bytes = sealed.strip_prefix(PREFIX).and_then(|b| URL_SAFE_NO_PAD.decode(b).ok()).ok_or(SealError::Unreadable)?;
        if bytes.len() < NONCE_BYTES {
            return Err(SealError::Unreadable);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Unreadable)?;
        let cipher = Aes256Gcm::new(&self.0);
        cipher.decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad: owner.as_bytes() }).map_err(|_| SealError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SealingKey {
        SealingKey::parse(&STANDARD.encode([byte; 32])).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_for_its_owner_only() {
        let sealed = key(1).seal(b"JBSWY3DPEHPK3PXP", "user-a").unwrap();
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("JBSWY3DP"));
        assert_eq!(key(1).open(&sealed, "user-a").unwrap(), b"JBSWY3DPEHPK3PXP");
        assert_eq!(key(2).open(&sealed, "user-a"), Err(SealError::Unreadable));
        assert_eq!(key(1).open(&sealed, "user-b"), Err(SealError::Unreadable));
        // A fresh nonce each time: the same secret never seals the same way.
        assert_ne!(key(1).seal(b"JBSWY3DPEHPK3PXP", "user-a").unwrap(), sealed);
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(key(1).open(&String::from_utf8(altered).unwrap(), "user-a"), Err(SealError::Unreadable));
        assert_eq!(key(1).open("v1.", "user-a"), Err(SealError::Unreadable));
    }

    #[test]
    fn a_key_is_32_bytes_of_base64() {
        assert!(SealingKey::parse(&STANDARD.encode([7u8; 32])).is_ok());
        assert_eq!(SealingKey::parse(&STANDARD.encode([7u8; 16])).err(), Some(SealError::InvalidKey));
        assert_eq!(SealingKey::parse("not base64!").err(), Some(SealError::InvalidKey));
        assert!(!format!("{:?}", key(1)).contains('1'));
    }
}
