//! Dynamic linking (PSD2 RTS art. 5): the approval is bound to the exact
//! request. The fingerprint covers the method, path, query, the
//! `X-Qonto-2fa-Preference` header as sent, and every byte of the body; the
//! replay must match it.

use sha2::{Digest, Sha256};

/// The parts of a request that an approval is bound to.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The preference header's raw value; absent and present differ.
    pub preference: Option<&'a [u8]>,
    pub body: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Lower-case hex, as evidence keeps it.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn of(parts: &RequestParts<'_>) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"passgate-request-v1");
        // Each part is length-prefixed, so no two requests share an encoding.
        let mut field = |bytes: Option<&[u8]>| match bytes {
            None => hash.update([0u8]),
            Some(b) => {
                hash.update([1u8]);
                hash.update((b.len() as u64).to_be_bytes());
                hash.update(b);
            }
        };
        field(Some(parts.method.as_bytes()));
        field(Some(parts.path.as_bytes()));
        field(parts.query.map(str::as_bytes));
        field(parts.preference);
        field(Some(parts.body));
        Fingerprint(hash.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RequestParts<'static> {
        RequestParts {
            method: "POST",
            path: "/v2/sepa/transfers",
            query: None,
            preference: Some(b"passkey"),
            body: br#"{"amount":"1200.00"}"#,
        }
    }

    #[test]
    fn the_same_request_has_the_same_fingerprint() {
        assert_eq!(Fingerprint::of(&base()), Fingerprint::of(&base()));
    }

    #[test]
    fn any_changed_part_changes_the_fingerprint() {
        let original = Fingerprint::of(&base());
        let variants = [
            RequestParts { method: "PUT", ..base() },
            RequestParts { path: "/v2/sepa/beneficiaries", ..base() },
            RequestParts { query: Some(""), ..base() },
            RequestParts { query: Some("a=1"), ..base() },
            RequestParts { preference: None, ..base() },
            RequestParts { preference: Some(b"mock"), ..base() },
            RequestParts { body: br#"{"amount":"1200.01"}"#, ..base() },
            RequestParts { body: br#"{"amount": "1200.00"}"#, ..base() },
        ];
        for variant in variants {
            assert_ne!(Fingerprint::of(&variant), original, "{variant:?}");
        }
    }

    #[test]
    fn moving_bytes_between_parts_changes_the_fingerprint() {
        let a = RequestParts { path: "/v2/a", query: Some("bc"), ..base() };
        let b = RequestParts { path: "/v2/ab", query: Some("c"), ..base() };
        assert_ne!(Fingerprint::of(&a), Fingerprint::of(&b));
    }
}
