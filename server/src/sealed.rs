//! The secrets key (`PASSGATE_SECRETS_KEY`) and what it keys.
//!
//! **Sealing**: secrets the server must read back (an authenticator app's
//! key), sealed at rest with AES-256-GCM, a fresh random nonce per value,
//! and the owner's identity as associated data, so that a sealed value
//! copied onto another row does not open. Each value names the key that
//! sealed it (`v2.<key id>.<nonce and ciphertext>`), so the key can be
//! rotated: the new key seals, the earlier ones
//! (`PASSGATE_SECRETS_KEY_PREVIOUS`) still open what they sealed, and
//! `passgate secrets reseal` moves every value to the new key, after which
//! the earlier ones may go. (`v1.` values, sealed before key ids, used the
//! configured key itself as the AES key; they still open.)
//!
//! **Subkeys**: no two uses share a key. Each is HKDF-SHA256's expand step
//! (RFC 5869) over the configured key with a label of its own: the sealing
//! key, the key id, and the MAC keys ([`SecretsKey::derive`]: audit chain,
//! evidence binding, recovery codes, device cookies, one-time codes). A
//! MAC made under a key cannot be re-made under another without what it
//! covers (a recovery code, a cookie), which Passgate does not keep: so the
//! MAC keys come from the **oldest** key of the ring, which must stay in
//! `PASSGATE_SECRETS_KEY_PREVIOUS` for as long as those values live.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::rngs::OsRng;
use rand::TryRngCore;

/// Values sealed with the configured key itself (before key ids).
const V1: &str = "v1.";
/// Values sealed under a subkey, naming their key: `v2.<key id>.…`.
const V2: &str = "v2.";
const NONCE_BYTES: usize = 12;

/// The key ring: the current key seals, every key opens what it sealed.
/// `Debug` shows the key ids, never a key.
#[derive(Clone)]
pub struct SecretsKey {
    current: RingKey,
    /// Earlier keys, newest first.
    previous: Vec<RingKey>,
}

/// One configured 32-byte key and what is derived from it.
#[derive(Clone)]
struct RingKey {
    raw: [u8; 32],
    id: KeyId,
    sealing: Key<Aes256Gcm>,
}

/// A key's public name: the first 4 bytes of a subkey of its own, in hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 4]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("PASSGATE_SECRETS_KEY must be 32 bytes in base64 (e.g. `openssl rand -base64 32`)")]
    InvalidKey,
    #[error("PASSGATE_SECRETS_KEY_PREVIOUS must be comma-separated keys of 32 bytes in base64, each different from the others")]
    InvalidPrevious,
    #[error("the operating system's random generator failed")]
    Randomness,
    /// Not sealed by this key for this owner, or altered.
    #[error("a sealed value does not open with the configured key")]
    Unreadable,
    /// Sealed by a key that is not in the ring.
    #[error("a value is sealed by key {0}, which is neither PASSGATE_SECRETS_KEY nor in PASSGATE_SECRETS_KEY_PREVIOUS")]
    UnknownKey(String),
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let previous: Vec<String> = self.previous.iter().map(|k| k.id.to_string()).collect();
        f.debug_struct("SecretsKey").field("current", &self.current.id.to_string()).field("previous", &previous).finish()
    }
}

impl RingKey {
    fn new(raw: [u8; 32]) -> Self {
        let mut id = [0u8; 4];
        id.copy_from_slice(&expand(&raw, "passgate key id v2")[..4]);
        RingKey { raw, id: KeyId(id), sealing: expand(&raw, "passgate sealing v2").into() }
    }

    fn parse(text: &str) -> Option<Self> {
        let bytes = STANDARD.decode(text.trim()).ok()?;
        Some(RingKey::new(bytes.try_into().ok()?))
    }
}

/// HKDF-SHA256's expand step to 32 bytes, the configured key as its
/// pseudorandom key (it is 32 uniformly random bytes already, which
/// RFC 5869 section 3.3 lets skip the extract step).
fn expand(prk: &[u8; 32], label: &str) -> [u8; 32] {
    let mut okm = [0u8; 32];
    // A 32-byte PRK and a 32-byte output are always valid lengths.
    if let Ok(hkdf) = hkdf::Hkdf::<sha2::Sha256>::from_prk(prk) {
        let _ = hkdf.expand(label.as_bytes(), &mut okm);
    }
    okm
}

impl SecretsKey {
    /// A key as configured: 32 bytes in standard base64.
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let current = RingKey::parse(text).ok_or(SealError::InvalidKey)?;
        Ok(SecretsKey { current, previous: Vec::new() })
    }

    /// The ring with the earlier keys (comma-separated, newest first).
    pub fn with_previous(mut self, text: &str) -> Result<Self, SealError> {
        for piece in text.split(',').filter(|p| !p.trim().is_empty()) {
            let key = RingKey::parse(piece).ok_or(SealError::InvalidPrevious)?;
            if self.keys().any(|k| k.id == key.id) {
                return Err(SealError::InvalidPrevious);
            }
            self.previous.push(key);
        }
        Ok(self)
    }

    /// The sandbox's key when none is configured: public, so a sandbox's
    /// sealed values protect nothing. Production refuses to start without
    /// a key of its own.
    pub fn sandbox() -> Self {
        SecretsKey { current: RingKey::new(*b"passgate sandbox key: not secret"), previous: Vec::new() }
    }

    /// The id of the key that seals.
    pub fn key_id(&self) -> KeyId {
        self.current.id
    }

    fn keys(&self) -> impl Iterator<Item = &RingKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// A MAC key of its own for `label`, from the oldest key of the ring
    /// (see the module's doc).
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let oldest = self.previous.last().unwrap_or(&self.current);
        expand(&oldest.raw, label)
    }

    pub fn seal(&self, plaintext: &[u8], owner: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        OsRng.try_fill_bytes(&mut nonce).map_err(|_| SealError::Randomness)?;
        let cipher = Aes256Gcm::new(&self.current.sealing);
        let sealed =
            cipher.encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: owner.as_bytes() }).map_err(|_| SealError::Unreadable)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{V2}{}.{}", self.current.id, URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn open(&self, sealed: &str, owner: &str) -> Result<Vec<u8>, SealError> {
        if let Some(rest) = sealed.strip_prefix(V2) {
            let (id, body) = rest.split_once('.').ok_or(SealError::Unreadable)?;
            let key = self.keys().find(|k| k.id.to_string() == id).ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
            return open_with(&key.sealing, body, owner);
        }
        let body = sealed.strip_prefix(V1).ok_or(SealError::Unreadable)?;
        self.keys().find_map(|k| open_with(&Key::<Aes256Gcm>::from(k.raw), body, owner).ok()).ok_or(SealError::Unreadable)
    }

    /// Whether `sealed` is sealed by another key than the current one (or
    /// in the format before key ids): `passgate secrets reseal` moves it.
    pub fn needs_resealing(&self, sealed: &str) -> bool {
        !sealed.starts_with(&format!("{V2}{}.", self.current.id))
    }
}

fn open_with(key: &Key<Aes256Gcm>, body: &str, owner: &str) -> Result<Vec<u8>, SealError> {
    let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| SealError::Unreadable)?;
    if bytes.len() < NONCE_BYTES {
        return Err(SealError::Unreadable);
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Unreadable)?;
    let cipher = Aes256Gcm::new(key);
    cipher.decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad: owner.as_bytes() }).map_err(|_| SealError::Unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    fn key(byte: u8) -> SecretsKey {
        SecretsKey::parse(&text(byte)).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_for_its_owner_only() {
        let sealed = key(1).seal(b"JBSWY3DPEHPK3PXP", "user-a").unwrap();
        assert!(sealed.starts_with(&format!("v2.{}.", key(1).key_id())), "{sealed}");
        assert!(!sealed.contains("JBSWY3DP"));
        assert_eq!(key(1).open(&sealed, "user-a").unwrap(), b"JBSWY3DPEHPK3PXP");
        assert_eq!(key(1).open(&sealed, "user-b"), Err(SealError::Unreadable));
        // A fresh nonce each time: the same secret never seals the same way.
        assert_ne!(key(1).seal(b"JBSWY3DPEHPK3PXP", "user-a").unwrap(), sealed);
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(key(1).open(&String::from_utf8(altered).unwrap(), "user-a"), Err(SealError::Unreadable));
        assert_eq!(key(1).open("v2.", "user-a"), Err(SealError::Unreadable));
        // Another key's id names what is missing.
        let other = key(2).open(&sealed, "user-a").unwrap_err();
        assert_eq!(other, SealError::UnknownKey(key(1).key_id().to_string()));
    }

    #[test]
    fn a_rotated_ring_seals_with_the_new_key_and_opens_with_every_key() {
        let by_old = key(1).seal(b"old secret", "user-a").unwrap();
        let ring = key(2).with_previous(&text(1)).unwrap();
        assert_eq!(ring.open(&by_old, "user-a").unwrap(), b"old secret");
        assert!(ring.needs_resealing(&by_old));
        let by_new = ring.seal(b"new secret", "user-a").unwrap();
        assert!(by_new.starts_with(&format!("v2.{}.", key(2).key_id())));
        assert!(!ring.needs_resealing(&by_new));
        assert_eq!(key(2).open(&by_new, "user-a").unwrap(), b"new secret");
        // Without the old key, its values are named as unreadable.
        assert!(matches!(key(2).open(&by_old, "user-a"), Err(SealError::UnknownKey(_))));
    }

    #[test]
    fn values_sealed_before_key_ids_still_open() {
        // v1: the configured key itself was the AES key.
        let raw = [1u8; 32];
        let cipher = Aes256Gcm::new(&raw.into());
        let nonce = [9u8; NONCE_BYTES];
        let ciphertext = cipher.encrypt(&Nonce::from(nonce), Payload { msg: b"JBSWY3DP", aad: b"user-a" }).unwrap();
        let v1 = format!("v1.{}", URL_SAFE_NO_PAD.encode([nonce.as_slice(), &ciphertext].concat()));
        assert_eq!(key(1).open(&v1, "user-a").unwrap(), b"JBSWY3DP");
        assert_eq!(key(2).with_previous(&text(1)).unwrap().open(&v1, "user-a").unwrap(), b"JBSWY3DP");
        assert_eq!(key(2).open(&v1, "user-a"), Err(SealError::Unreadable));
        assert!(key(1).needs_resealing(&v1));
    }

    #[test]
    fn mac_keys_are_hkdf_subkeys_of_the_oldest_key_and_unchanged_by_rotation() {
        // HKDF-Expand with a 32-byte output is HMAC(key, label || 0x01):
        // the keys derived before this ring existed, so stored MACs hold.
        use hmac::Mac;
        let mut mac = crate::token::hmac_sha256(&[1u8; 32]);
        mac.update(b"passgate audit chain v1\x01");
        let before: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(key(1).derive("passgate audit chain v1"), before);
        assert_ne!(key(1).derive("passgate audit chain v1"), key(1).derive("passgate device cookie v1"));
        let rotated = key(3).with_previous(&format!("{},{}", text(2), text(1))).unwrap();
        assert_eq!(rotated.derive("passgate audit chain v1"), before, "the oldest key keys the MACs");
        // The sealing key is a subkey too, not the configured key.
        assert_ne!(key(1).current.sealing.as_slice(), [1u8; 32].as_slice());
    }

    #[test]
    fn keys_are_32_bytes_of_base64_and_never_shown() {
        assert!(SecretsKey::parse(&text(7)).is_ok());
        assert_eq!(SecretsKey::parse(&STANDARD.encode([7u8; 16])).err(), Some(SealError::InvalidKey));
        assert_eq!(SecretsKey::parse("not base64!").err(), Some(SealError::InvalidKey));
        assert_eq!(key(1).with_previous("short").err(), Some(SealError::InvalidPrevious));
        assert_eq!(key(1).with_previous(&text(1)).err(), Some(SealError::InvalidPrevious), "the current key again");
        assert_eq!(key(1).with_previous(&format!("{}, {}", text(2), text(2))).err(), Some(SealError::InvalidPrevious));
        let ring = key(1).with_previous(&text(2)).unwrap();
        let shown = format!("{ring:?}");
        assert!(!shown.contains(&text(1)[..8]) && !shown.contains(&text(2)[..8]), "{shown}");
        assert!(shown.contains(&key(2).key_id().to_string()), "{shown}");
    }
}
