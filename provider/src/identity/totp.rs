//! Time-based one-time passwords (RFC 6238 with HMAC-SHA1, the profile every authenticator app
//! speaks): 160-bit secrets, 30-second steps, 6 digits, one step of clock skew either way.
//! Which step a code belongs to is returned, so that storage can refuse any step not later
//! than the last one accepted. Also recovery codes: their generation, normalisation and hash.

use oidc_core::types::TokenHash;
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;
use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per time step.
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Steps of clock skew accepted on either side of the current one.
const SKEW_STEPS: i64 = 1;
/// Secret size: 160 bits, the HMAC-SHA1 block RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// Recovery codes issued at once.
pub const RECOVERY_CODES: usize = 10;
/// Characters of one recovery code (about 49 bits): shown in two groups of five.
const RECOVERY_CODE_CHARS: usize = 10;
/// Lowercase letters and digits without 0/o and 1/l/i, which read alike: 31 symbols.
const RECOVERY_ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// A fresh TOTP secret, base32 without padding (32 characters).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

fn totp(secret: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().ok()?;
    TOTP::new(Algorithm::SHA1, DIGITS, 0, STEP_SECS as u64, bytes).ok()
}

/// The time step of unix time `at`.
pub fn step_at(at: i64) -> i64 {
    at.div_euclid(STEP_SECS)
}

/// The code of `secret` for time step `step` (for tests and the enrolment page's check).
pub fn code_for_step(secret: &str, step: i64) -> Option<String> {
    let time = u64::try_from(step.checked_mul(STEP_SECS)?).ok()?;
    Some(totp(secret)?.generate(time))
}

/// The time step whose code `code` is, among the current step at `at` and its neighbours, or
/// `None`. Every candidate is compared in constant time; the newest matching step wins.
pub fn matching_step(secret: &str, code: &str, at: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret)?;
    let now = step_at(at);
    let mut found = None;
    for step in (now - SKEW_STEPS)..=(now + SKEW_STEPS) {
        let Ok(time) = u64::try_from(step * STEP_SECS) else {
            continue;
        };
        if bool::from(totp.generate(time).as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` URI authenticator apps read (Key Uri Format): label `issuer:username`,
/// with the issuer also as a parameter.
pub fn otpauth_uri(issuer: &str, username: &str, secret: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    // Everything but RFC 3986's unreserved characters.
    const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let enc = |s: &str| utf8_percent_encode(s, COMPONENT).to_string();
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(username),
        enc(issuer)
    )
}

/// The QR code of `uri` as an SVG element (no XML declaration, so it can sit in a page).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg")?;
    Some(svg[start..].to_owned())
}

/// Ten fresh recovery codes, as shown to the user (`abcde-fghjk`).
pub fn generate_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; RECOVERY_CODE_CHARS];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            // Bytes of 248 and above are drawn again: 248 = 8 * 31 keeps the draw uniform.
            let chars: String = bytes
                .iter()
                .map(|b| {
                    let mut v = *b;
                    while v >= 248 {
                        let mut one = [0u8; 1];
                        rand::rngs::OsRng.fill_bytes(&mut one);
                        v = one[0];
                    }
                    char::from(RECOVERY_ALPHABET[usize::from(v % 31)])
                })
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// A recovery code as typed, reduced to its characters: case, spaces and dashes ignored.
pub fn normalize_recovery_code(code: &str) -> Option<String> {
    let chars: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (chars.len() == RECOVERY_CODE_CHARS && chars.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)))
        .then_some(chars)
}

/// The stored hash of a normalised recovery code.
pub fn recovery_code_hash(normalized: &str) -> String {
    TokenHash::of(normalized).into_string()
}

/// Whether `input` looks like a recovery code rather than a TOTP code.
pub fn looks_like_recovery_code(input: &str) -> bool {
    normalize_recovery_code(input).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B: secret "12345678901234567890", 8 digits there; the last six
        // digits are the 6-digit code.
        let secret = Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        assert_eq!(code_for_step(&secret, 59 / 30).as_deref(), Some("287082"));
        assert_eq!(
            code_for_step(&secret, 1_111_111_109 / 30).as_deref(),
            Some("081804")
        );
    }

    #[test]
    fn codes_match_their_step_and_its_neighbours_only() {
        let secret = generate_secret();
        assert_eq!(secret.len(), 32);
        let at = 1_700_000_000;
        let now = step_at(at);
        for step in [now - 1, now, now + 1] {
            let code = code_for_step(&secret, step).unwrap();
            assert_eq!(matching_step(&secret, &code, at), Some(step));
        }
        for step in [now - 2, now + 2] {
            let code = code_for_step(&secret, step).unwrap();
            assert_ne!(matching_step(&secret, &code, at), Some(step));
        }
        assert_eq!(matching_step(&secret, "12345", at), None);
        assert_eq!(matching_step(&secret, "abcdef", at), None);
    }

    #[test]
    fn recovery_codes_are_random_and_read_back_loosely() {
        let codes = generate_recovery_codes();
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 11);
            let typed = code.to_uppercase().replace('-', " ");
            assert_eq!(
                normalize_recovery_code(&typed).as_deref(),
                Some(code.replace('-', "").as_str())
            );
        }
        assert!(normalize_recovery_code("123456").is_none());
        assert!(normalize_recovery_code("aaaaa-aaaa1").is_none());
    }
}
