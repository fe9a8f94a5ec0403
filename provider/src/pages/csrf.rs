//! CSRF tokens: one random token per session, sent back in a hidden `csrf_token` field of
//! every form and compared in constant time.

use actix_session::Session;
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

const KEY: &str = "csrf_token";

/// The session's token, created on first use.
pub fn token(session: &Session) -> String {
    if let Ok(Some(token)) = session.get::<String>(KEY) {
        return token;
    }
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    if let Err(error) = session.insert(KEY, &token) {
        tracing::error!(error = %error, "storing the CSRF token failed");
    }
    token
}

/// Whether `submitted` is the session's token. A session without a token accepts nothing.
pub fn verify(session: &Session, submitted: &str) -> bool {
    match session.get::<String>(KEY) {
        Ok(Some(expected)) => {
            !submitted.is_empty() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
        }
        _ => false,
    }
}
