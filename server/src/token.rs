//! Random secrets (access tokens, SCA session tokens, approval links): 256
//! bits from the operating system's CSPRNG, base64url without padding, stored
//! only as SHA-256 hashes. Lookups go by hash, so the database never holds a
//! usable secret and no secret is compared byte by byte in our code.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::TryRngCore;
use sha2::{Digest, Sha256};

const SECRET_BYTES: usize = 32;
/// Length of the base64url text of [`SECRET_BYTES`] bytes.
const SECRET_CHARS: usize = 43;

/// A secret as the holder sees it. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// The SHA-256 of a secret: what the database keeps.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash(pub [u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a Passgate secret")]
pub struct MalformedSecret;

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random generator failed: {0}")]
pub struct RandomnessUnavailable(String);

impl RandomnessUnavailable {
    pub fn new(reason: String) -> Self {
        RandomnessUnavailable(reason)
    }
}

impl Secret {
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        let mut bytes = [0u8; SECRET_BYTES];
        OsRng.try_fill_bytes(&mut bytes).map_err(|e| RandomnessUnavailable(e.to_string()))?;
        Ok(Secret(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Accepts exactly what [`Secret::generate`] produces.
    pub fn parse(text: &str) -> Result<Self, MalformedSecret> {
        if text.len() != SECRET_CHARS {
            return Err(MalformedSecret);
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| MalformedSecret)?;
        if bytes.len() != SECRET_BYTES {
            return Err(MalformedSecret);
        }
        Ok(Secret(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

/// HMAC-SHA256 keyed with `key`, a key of at most one SHA-256 block (64
/// bytes): HMAC pads a shorter key with zeros, so the padded key is the
/// key itself. Longer keys are a caller's mistake: cut to one block.
pub fn hmac_sha256(key: &[u8]) -> hmac::Hmac<Sha256> {
    use hmac::KeyInit;
    const BLOCK: usize = 64;
    let mut padded = [0u8; BLOCK];
    let used = key.len().min(BLOCK);
    padded[..used].copy_from_slice(&key[..used]);
    <hmac::Hmac<Sha256> as KeyInit>::new(&padded.into())
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_generated_secret_carries_256_bits_in_base64url() {
        let secret = Secret::generate().unwrap_or_else(|_| Secret(String::new()));
        assert_eq!(secret.expose().len(), SECRET_CHARS);
        let decoded = URL_SAFE_NO_PAD.decode(secret.expose()).unwrap_or_default();
        assert_eq!(decoded.len(), 32);
        assert_eq!(Secret::parse(secret.expose()), Ok(secret));
    }

    #[test]
    fn generated_secrets_do_not_repeat() {
        let seen: HashSet<String> = (0..1000).filter_map(|_| Secret::generate().ok()).map(|s| s.expose().to_owned()).collect();
        assert_eq!(seen.len(), 1000);
    }

    #[test]
    fn parse_refuses_anything_that_is_not_a_secret() {
        for bad in ["", "abc", &"A".repeat(42), &"A".repeat(44), &format!("{}!", "A".repeat(42))] {
            assert_eq!(Secret::parse(bad), Err(MalformedSecret), "{bad:?}");
        }
    }

    #[test]
    fn the_hash_is_sha256_of_the_text_and_debug_hides_the_secret() {
        let secret = Secret::parse(&"A".repeat(43)).unwrap_or_else(|_| Secret(String::new()));
        let expected: [u8; 32] = Sha256::digest("A".repeat(43).as_bytes()).into();
        assert!(secret.hash() == SecretHash(expected));
        assert!(!format!("{secret:?}").contains("AAAA"));
    }
}
