//! What Passgate's browser pages share, each page being a crate and a
//! bundle of its own (`passgate-approval`, `passgate-account`): the calls
//! to the server and their failures in words for the user ([`api`]), the
//! server's JSON read by hand where a page counts its bytes ([`wire`]),
//! and passkeys between the server's WebAuthn JSON and the browser
//! ([`webauthn`], over base64url).
//!
//! Nothing here depends on a UI framework or a router: a page takes what it
//! uses, and the linker drops the rest.

pub mod api;
mod base64url;
pub mod webauthn;
pub mod wire;

pub use api::Failure;

/// Seconds as a countdown reads them: `4:05`.
pub fn countdown(seconds: u64) -> String {
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

#[cfg(test)]
mod tests {
    use super::countdown;

    #[test]
    fn a_countdown_reads_minutes_and_two_digit_seconds() {
        assert_eq!(countdown(0), "0:00");
        assert_eq!(countdown(9), "0:09");
        assert_eq!(countdown(245), "4:05");
        assert_eq!(countdown(900), "15:00");
    }
}

// The wasm tests run in headless Chromium, where the pages run (see the
// Makefile's `test-wasm`).
#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
