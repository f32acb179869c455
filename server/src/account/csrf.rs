//! CSRF tokens bound to a browser session: the HMAC-SHA256 of a fixed
//! label keyed with the session's secret. Only the cookie (which script
//! cannot read, and which no other site's request carries) and the server
//! during that cookie's request hold the secret, so nothing more is stored,
//! a token is worthless without its session, and a new session (each
//! sign-in, each stage) has a new token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::token::{hmac_sha256, Secret};

const LABEL: &[u8] = b"passgate account csrf v1";

fn mac(session: &Secret) -> Hmac<Sha256> {
    // A secret is 43 characters (see `token`), shorter than a block.
    let mut mac = hmac_sha256(session.expose().as_bytes());
    mac.update(LABEL);
    mac
}

/// The token the page sends back as `X-CSRF-Token`.
pub fn token_for(session: &Secret) -> String {
    URL_SAFE_NO_PAD.encode(mac(session).finalize().into_bytes())
}

/// Whether `presented` is the session's token (compared in constant time).
pub fn verify(session: &Secret, presented: &str) -> bool {
    match URL_SAFE_NO_PAD.decode(presented.trim()) {
        Ok(bytes) => mac(session).verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use hmac::KeyInit;

    use super::*;

    #[test]
    fn a_token_verifies_for_its_own_session_only() {
        let (a, b) = (Secret::generate().unwrap(), Secret::generate().unwrap());
        let token = token_for(&a);
        assert_eq!(token.len(), 43);
        assert!(verify(&a, &token));
        assert!(!verify(&b, &token));
        assert!(!verify(&a, ""));
        assert!(!verify(&a, "not base64 !"));
        assert!(!verify(&a, &token[..42]));
        // The padded key is the key: the standard HMAC of the secret.
        let standard = <Hmac<Sha256> as KeyInit>::new_from_slice(a.expose().as_bytes()).unwrap().chain_update(LABEL).finalize();
        assert_eq!(URL_SAFE_NO_PAD.encode(standard.into_bytes()), token);
    }
}
