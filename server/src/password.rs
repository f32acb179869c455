//! Passwords: the policy a new one must meet, and argon2id hashes.
//!
//! Parameters from OWASP's Password Storage Cheat Sheet (argon2id, 19 MiB
//! of memory, 2 passes, 1 lane). A new password is refused when it is too
//! short, too long, or guessable: zxcvbn's estimate (its dictionaries hold
//! the most common and breached passwords, names and keyboard walks, and
//! the user's own email and name) must reach "safely unguessable" (3 of 4).
//! Hashing and verifying cost tens of milliseconds of CPU: callers run them
//! on the blocking pool.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash as Phc, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MIN_CHARS: usize = 12;
pub const MAX_CHARS: usize = 128;

/// A new password that meets the policy.
pub struct Password(String);

/// Why a new password is refused; the message is for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("Use at least {MIN_CHARS} characters")]
    TooShort,
    #[error("Use at most {MAX_CHARS} characters")]
    TooLong,
    #[error("This password is too easy to guess (common, breached, or close to your name or email)")]
    Guessable,
}

impl Password {
    /// `context`: what the user's own details are (email, name), which a
    /// password must not be built from.
    pub fn parse(candidate: &str, context: &[&str]) -> Result<Self, WeakPassword> {
        let chars = candidate.chars().count();
        if chars < MIN_CHARS {
            return Err(WeakPassword::TooShort);
        }
        if chars > MAX_CHARS {
            return Err(WeakPassword::TooLong);
        }
        if zxcvbn::zxcvbn(candidate, context).score() < zxcvbn::Score::Three {
            return Err(WeakPassword::Guessable);
        }
        Ok(Password(candidate.to_owned()))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// An argon2id hash in PHC string form (`$argon2id$v=19$m=…`), salt
/// included: what the database keeps.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

impl PasswordHash {
    pub fn from_stored(phc: String) -> Self {
        PasswordHash(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Hashes a new password with a fresh random salt.
    pub fn new(password: &Password) -> anyhow::Result<Self> {
        let salt = SaltString::generate(&mut OsRng);
        let phc = hasher()?.hash_password(password.0.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
        Ok(PasswordHash(phc.to_string()))
    }

    /// Whether `candidate` is the password (constant time in the
    /// candidate, by argon2). A hash that does not parse verifies nothing.
    pub fn verify(&self, candidate: &str) -> bool {
        let Ok(phc) = Phc::new(&self.0) else { return false };
        // The stored hash's own parameters are used, so that hashes made
        // with older parameters keep verifying.
        Argon2::default().verify_password(candidate.as_bytes(), &phc).is_ok()
    }

    /// A hash of nothing anyone knows: verified against when the account
    /// does not exist, so that an unknown account costs what a wrong
    /// password does.
    pub fn decoy() -> &'static PasswordHash {
        static DECOY: std::sync::OnceLock<PasswordHash> = std::sync::OnceLock::new();
        DECOY.get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            let random: [u8; 32] = rand::random();
            let phc = hasher().ok().and_then(|h| h.hash_password(&random, &salt).ok().map(|p| p.to_string()));
            PasswordHash(phc.unwrap_or_default())
        })
    }
}

fn hasher() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// How many argon2 checks run at once: each holds about 19 MiB, so that
/// unbounded concurrent sign-ins grow the process without limit (200
/// failed sign-ins at once measured 2.1 GiB). Sized to the cores: more
/// would only queue on the blocking pool; a check waits at most
/// [`CHECK_WAIT`] for its turn, then the caller answers 429.
#[derive(Debug)]
pub struct CheckGate {
    permits: tokio::sync::Semaphore,
    wait: std::time::Duration,
}

/// A password check waits this long for a turn before it is refused.
pub const CHECK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// No turn came within the wait: too many checks at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks at once")]
pub struct Busy;

impl CheckGate {
    pub const fn new(permits: usize, wait: std::time::Duration) -> Self {
        CheckGate { permits: tokio::sync::Semaphore::const_new(permits), wait }
    }

    /// The process's gate: one check per core (at least two).
    pub fn shared() -> &'static CheckGate {
        static GATE: std::sync::OnceLock<CheckGate> = std::sync::OnceLock::new();
        GATE.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get).max(2);
            CheckGate::new(cores, CHECK_WAIT)
        })
    }

    /// Verifies `candidate` against `hash` on the blocking pool, once a
    /// turn is free. `Ok(None)`: the blocking task failed (a panic).
    pub async fn verify(&self, hash: PasswordHash, candidate: &str) -> Result<Option<bool>, Busy> {
        let permit = tokio::time::timeout(self.wait, self.permits.acquire()).await.map_err(|_| Busy)?.map_err(|_| Busy)?;
        let candidate = candidate.to_owned();
        let right = tokio::task::spawn_blocking(move || hash.verify(&candidate)).await.ok();
        drop(permit);
        Ok(right)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_long_and_guessable_passwords_are_refused() {
        assert_eq!(Password::parse("Tr0ub4dor&3", &[]).err(), Some(WeakPassword::TooShort));
        assert_eq!(Password::parse(&"correct horse ".repeat(10), &[]).err(), Some(WeakPassword::TooLong));
        for common in ["password1234", "qwertyuiop123", "iloveyou1234", "123456789012"] {
            assert_eq!(Password::parse(common, &[]).err(), Some(WeakPassword::Guessable), "{common}");
        }
        // The user's own details, whole.
        assert_eq!(Password::parse("camille.martin@example.com", &["camille.martin@example.com"]).err(), Some(WeakPassword::Guessable));
        assert!(Password::parse("vivid-otter-cranes-7-harbour", &[]).is_ok());
    }

    #[test]
    fn a_hash_is_argon2id_with_owasp_parameters_and_verifies_only_its_password() {
        let password = Password::parse("vivid-otter-cranes-7-harbour", &[]).unwrap();
        let hash = PasswordHash::new(&password).unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", hash.as_str());
        assert!(hash.verify("vivid-otter-cranes-7-harbour"));
        assert!(!hash.verify("vivid-otter-cranes-7-harbouR"));
        assert!(!hash.verify(""));
        // Two hashes of one password differ (fresh salt).
        assert_ne!(PasswordHash::new(&password).unwrap(), hash);
        assert!(!PasswordHash::from_stored("not a hash".into()).verify(""));
        assert!(!PasswordHash::decoy().verify(""));
        assert!(!format!("{password:?}{hash:?}").contains("otter"));
    }

    #[tokio::test]
    async fn checks_beyond_the_gate_wait_then_are_refused_and_the_gate_reopens() {
        let gate = std::sync::Arc::new(CheckGate::new(1, std::time::Duration::from_millis(50)));
        let hash = PasswordHash::new(&Password::parse("correct horse battery staple", &[]).unwrap()).unwrap();
        let held = gate.permits.acquire().await.unwrap();
        assert_eq!(gate.verify(hash.clone(), "correct horse battery staple").await, Err(Busy), "no turn within the wait");
        drop(held);
        assert_eq!(gate.verify(hash.clone(), "correct horse battery staple").await, Ok(Some(true)));
        assert_eq!(gate.verify(hash, "wrong").await, Ok(Some(false)));
        assert_eq!(gate.permits.available_permits(), 1, "each check gives its turn back");
    }
}
