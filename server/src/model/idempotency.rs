//! `X-Qonto-Idempotency-Key`, parsed.

/// A partner's idempotency key: 1 to 255 visible ASCII characters (a UUID,
/// typically).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an idempotency key is 1 to 255 visible ASCII characters, e.g. a UUID")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(raw: &[u8]) -> Result<Self, InvalidIdempotencyKey> {
        let visible = raw.iter().all(|b| (0x21..=0x7e).contains(b));
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !visible {
            return Err(InvalidIdempotencyKey);
        }
        std::str::from_utf8(raw).map(|s| IdempotencyKey(s.to_owned())).map_err(|_| InvalidIdempotencyKey)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_and_short_tokens_are_keys_and_blank_or_odd_values_are_not() {
        assert_eq!(
            IdempotencyKey::parse(b"4f1c6b2e-7d1a-4a55-9a53-0b7e3c4d5e6f").unwrap().as_str(),
            "4f1c6b2e-7d1a-4a55-9a53-0b7e3c4d5e6f"
        );
        assert!(IdempotencyKey::parse(b"k").is_ok());
        for bad in [&b""[..], b"with space", b"tab\t", "é".as_bytes(), &[b'a'; 256][..]] {
            assert_eq!(IdempotencyKey::parse(bad), Err(InvalidIdempotencyKey), "{bad:?}");
        }
    }
}
