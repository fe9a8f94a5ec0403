//! The key of the encrypted session cookie (`PROVIDER_SECRET_KEY`).

use std::fmt;

use base64::Engine as _;

/// Key material for the encrypted session cookie (at least 64 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct CookieSecret(Vec<u8>);

impl CookieSecret {
    /// Minimum length in bytes: what actix-web's cookie `Key` needs for signing and encryption.
    pub const MIN_LEN: usize = 64;

    /// Parses hex or base64 (standard or URL-safe, padded or not) text of at least 64 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = decode_hex(text)
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .or_else(|| {
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(text)
                    .ok()
            })
            .or_else(|| base64::engine::general_purpose::URL_SAFE.decode(text).ok())
            .or_else(|| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(text)
                    .ok()
            })
            .ok_or_else(|| "must be hex or base64 text".to_owned())?;
        if bytes.len() < Self::MIN_LEN {
            return Err(format!(
                "must decode to at least {} bytes (got {})",
                Self::MIN_LEN,
                bytes.len()
            ));
        }
        Ok(Self(bytes))
    }

    /// Fresh random key material.
    pub fn generate() -> Self {
        use rand::RngCore as _;
        let mut bytes = vec![0u8; Self::MIN_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Base64 text, as written to the key file.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.0)
    }
}

impl fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieSecret(..)")
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}
