//! Base64url and hashing helpers shared by the modules (RFC 4648 §5, no padding).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// Base64url without padding, as JOSE and PKCE use it.
pub(crate) fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url decoding: no padding, no other alphabet, canonical trailing bits.
#[cfg_attr(not(feature = "jose"), allow(dead_code))]
pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: impl AsRef<[u8]>) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// `n` bytes from the thread-local CSPRNG (ChaCha seeded by the operating system), base64url.
pub(crate) fn random_b64url(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut buf);
    b64url(&buf)
}

/// Whether `c` is in the base64url alphabet (RFC 4648 §5).
pub(crate) fn is_b64url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_is_strict() {
        assert_eq!(b64url_decode("YWJj"), Some(b"abc".to_vec()));
        assert_eq!(b64url_decode("YWI"), Some(b"ab".to_vec()));
        // Padding, the standard alphabet and non-canonical trailing bits are all refused.
        assert_eq!(b64url_decode("YWI="), None);
        assert_eq!(b64url_decode("+/+/"), None);
        assert_eq!(b64url_decode("YWJ"), None);
        assert_eq!(b64url_decode("Y"), None);
        assert_eq!(b64url_decode(""), Some(Vec::new()));
    }

    #[test]
    fn random_values_have_the_requested_entropy() {
        let a = random_b64url(32);
        assert_eq!(a.len(), 43);
        assert!(a.chars().all(is_b64url_char));
        assert_ne!(a, random_b64url(32));
    }
}
