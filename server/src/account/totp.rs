//! Authenticator apps (TOTP, RFC 6238, through `totp-rs`): HMAC-SHA-1, six
//! digits, 30-second steps, one step of tolerance either side, a 160-bit
//! key from the operating system's CSPRNG. What totp-rs leaves to its
//! caller, Passgate does in storage: each step is accepted once per user
//! (a compare-and-set on the last accepted step), and an attempt is
//! reserved before its check so that five wrong codes in a row lock the
//! factor for a while, under concurrent guesses too. Recovery codes: ten,
//! shown once, kept as SHA-256 hashes (50 random bits each: a fast hash
//! is enough, and attempts are limited with the codes').

use std::fmt;

use rand::rngs::OsRng;
use rand::TryRngCore;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Totp};

use crate::clock::Millis;
use crate::token::{RandomnessUnavailable, SecretHash};

pub const ISSUER: &str = "Passgate";
pub const DIGITS: u8 = 6;
pub const STEP_SECS: u64 = 30;
/// Steps accepted either side of the current one (clock drift, typing time).
pub const SKEW: u16 = 1;
/// Wrong codes in a row that lock the factor...
pub const MAX_FAILURES: u32 = 5;
/// ... for this long.
pub const LOCK_MS: i64 = 15 * Millis::MINUTE;
pub const RECOVERY_CODES: usize = 10;
const KEY_BYTES: usize = 20;
/// RFC 4648 base32 without padding, upper case: what authenticator apps read.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// An authenticator app's key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpKey(Vec<u8>);

impl fmt::Debug for TotpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("TOTP: {0}")]
pub struct TotpError(String);

impl TotpKey {
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        let mut bytes = vec![0u8; KEY_BYTES];
        OsRng.try_fill_bytes(&mut bytes).map_err(|e| RandomnessUnavailable::new(e.to_string()))?;
        Ok(TotpKey(bytes))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        TotpKey(bytes)
    }

    /// A key as typed or shown (base32, as [`TotpKey::base32`] gives it).
    pub fn from_base32(text: &str) -> Option<Self> {
        totp_rs::Secret::try_from_base32(text.trim()).ok().map(|s| TotpKey(s.as_bytes().to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn totp(&self, account: &str) -> Result<Totp, TotpError> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(SKEW)
            .with_step_duration(STEP_SECS)
            .with_secret(self.0.clone())
            .with_issuer(Some(ISSUER))
            .with_account_name(account.replace(':', " "))
            .build()
            .map_err(|e| TotpError(e.to_string()))
    }

    /// The key as people type it into an app.
    pub fn base32(&self) -> String {
        let mut out = String::with_capacity(self.0.len().div_ceil(5) * 8);
        for chunk in self.0.chunks(5) {
            let mut buffer = [0u8; 5];
            buffer[..chunk.len()].copy_from_slice(chunk);
            let bits = buffer.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            let chars = (chunk.len() * 8).div_ceil(5);
            for i in 0..chars {
                let index = (bits >> (35 - 5 * i)) & 31;
                out.push(char::from(BASE32[usize::try_from(index).unwrap_or(0)]));
            }
        }
        out
    }

    /// `otpauth://totp/Passgate:{account}?secret=…&issuer=Passgate`, what
    /// the QR code carries.
    pub fn otpauth_uri(&self, account: &str) -> Result<String, TotpError> {
        self.totp(account)?.to_url().map_err(|e| TotpError(e.to_string()))
    }

    /// The step (`unix seconds / 30`) whose code `code` is, within the
    /// tolerance around `at`; `None` if it is none of them.
    pub fn matching_step(&self, code: &str, at: Millis) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let seconds = u64::try_from(at.0 / 1_000).ok()?;
        self.totp("").ok()?.check(&code, seconds)
    }

    /// The code of the step around `at` (tests, and the demo's scripts).
    pub fn code_at(&self, at: Millis) -> Option<String> {
        let seconds = u64::try_from(at.0 / 1_000).ok()?;
        Some(self.totp("").ok()?.generate(seconds).to_string())
    }
}

/// The QR code of `text` as an SVG image, drawn here (never by a remote
/// service: the image carries the key).
pub fn qr_svg(text: &str) -> Result<String, TotpError> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).map_err(|e| TotpError(e.to_string()))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}

/// A recovery code as shown once to the user: `XXXX-XXXX-XXXX-XXXX`
/// (base32, 80 bits from the OS CSPRNG).
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

/// The key recovery codes are MACed under: derived from
/// `PASSGATE_SECRETS_KEY`, so a copied database alone cannot test guesses
/// (an unsalted hash of 50 bits fell to a GPU in a day). `Debug` never
/// shows it.
#[derive(Clone)]
pub struct RecoveryKey([u8; 32]);

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryKey(<redacted>)")
    }
}

impl RecoveryKey {
    pub fn new(sealing: &crate::sealed::SecretsKey) -> Self {
        RecoveryKey(sealing.derive("passgate recovery codes v1"))
    }

    /// What is kept of `typed` for `user_id`: case, spaces and dashes do
    /// not matter; bound to its user.
    pub fn mac(&self, user_id: &str, typed: &str) -> SecretHash {
        use hmac::Mac;
        let mut mac = crate::token::hmac_sha256(&self.0);
        mac.update(&u64::try_from(user_id.len()).unwrap_or(u64::MAX).to_be_bytes());
        mac.update(user_id.as_bytes());
        mac.update(normalised(typed).as_bytes());
        SecretHash(mac.finalize().into_bytes().into())
    }
}

fn normalised(typed: &str) -> String {
    typed.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

impl RecoveryCode {
    /// Sixteen base32 characters: 80 bits (each byte's five low bits; 256
    /// is a multiple of 32, so each character is uniform).
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        let mut bytes = [0u8; 16];
        OsRng.try_fill_bytes(&mut bytes).map_err(|e| RandomnessUnavailable::new(e.to_string()))?;
        let chars: Vec<char> = bytes.iter().map(|b| char::from(BASE32[usize::from(b % 32)])).collect();
        let groups: Vec<String> = chars.chunks(4).map(|g| g.iter().collect()).collect();
        Ok(RecoveryCode(groups.join("-")))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The unsalted SHA-256 that codes made before the MAC were kept as:
    /// still accepted, so that nobody's saved codes stop working.
    pub fn legacy_hash_of(typed: &str) -> SecretHash {
        SecretHash(Sha256::digest(normalised(typed).as_bytes()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 key is "12345678901234567890".
    fn rfc_key() -> TotpKey {
        TotpKey::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn the_rfc_6238_sha1_vectors() {
        // The RFC's codes have 8 digits; ours are their last 6.
        for (seconds, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let at = Millis(seconds * 1_000);
            assert_eq!(rfc_key().code_at(at).as_deref(), Some(&eight[2..]), "{seconds}");
        }
        let eight = Builder::new().with_digits(8).with_secret(b"12345678901234567890".to_vec()).build().unwrap();
        assert_eq!(eight.generate(59).to_string(), "94287082");
    }

    #[test]
    fn the_rfc_4226_hotp_vectors() {
        // HOTP is TOTP at step = counter: counter c is the code of t = 30 c.
        let expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (counter, code) in expected.iter().enumerate() {
            let at = Millis(i64::try_from(counter).unwrap() * 30_000);
            assert_eq!(rfc_key().code_at(at).as_deref(), Some(*code), "counter {counter}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_one_either_side_only() {
        let key = rfc_key();
        let t = Millis(1_111_111_109_000);
        let step = 1_111_111_109 / 30;
        let code = key.code_at(t).unwrap();
        assert_eq!(key.matching_step(&code, t), Some(step));
        assert_eq!(key.matching_step(&code, t.plus_millis(30_000)), Some(step), "one step late");
        assert_eq!(key.matching_step(&code, t.plus_millis(-30_000)), Some(step), "one step early");
        assert_eq!(key.matching_step(&code, t.plus_millis(60_000)), None, "two steps late");
        assert_eq!(key.matching_step(&code, t.plus_millis(-60_000)), None);
        assert_eq!(key.matching_step(&format!("{} {}", &code[..3], &code[3..]), t), Some(step), "spaces are ignored");
        for bad in ["", "12345", "1234567", "abcdef", "０８１８０４"] {
            assert_eq!(key.matching_step(bad, t), None, "{bad:?}");
        }
    }

    #[test]
    fn the_otpauth_uri_names_issuer_and_account_and_carries_the_key_in_base32() {
        let key = TotpKey::from_bytes(b"Hello!\xde\xad\xbe\xefHello!\xde\xad\xbe\xef".to_vec());
        assert_eq!(key.base32(), "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
        assert_eq!(TotpKey::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"), Some(key.clone()));
        let uri = key.otpauth_uri("camille@example.com").unwrap();
        assert_eq!(uri, "otpauth://totp/Passgate:camille%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Passgate");
        let generated = TotpKey::generate().unwrap();
        assert_eq!(generated.as_bytes().len(), 20);
        assert_eq!(generated.base32().len(), 32);
        assert_ne!(generated, TotpKey::generate().unwrap());
    }

    #[test]
    fn the_qr_code_is_an_svg_drawn_here() {
        let svg = qr_svg("otpauth://totp/Passgate:a?secret=JBSWY3DPEHPK3PXP&issuer=Passgate").unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg") && svg.contains("<path"), "{}", &svg[..80]);
        assert!(!svg.contains("http://") || svg.contains("http://www.w3.org/2000/svg"));
    }

    #[test]
    fn recovery_codes_are_random_and_checked_whatever_their_case_or_dashes() {
        let code = RecoveryCode::generate().unwrap();
        assert_eq!(code.expose().len(), 19);
        assert!(code.expose().split('-').all(|g| g.len() == 4 && g.bytes().all(|b| BASE32.contains(&b))), "{}", code.expose());
        let key = RecoveryKey::new(&crate::sealed::SecretsKey::sandbox());
        let kept = key.mac("u1", code.expose());
        assert_eq!(key.mac("u1", &code.expose().to_lowercase().replace('-', " ")), kept, "case and separators do not matter");
        assert_ne!(key.mac("u2", code.expose()), kept, "bound to its user");
        let other = RecoveryKey::new(&crate::sealed::SecretsKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap());
        assert_ne!(other.mac("u1", code.expose()), kept, "bound to the deployment's key");
        assert_ne!(RecoveryCode::legacy_hash_of(code.expose()), kept, "not a plain hash");
        assert_ne!(RecoveryCode::generate().unwrap(), code);
    }
}
