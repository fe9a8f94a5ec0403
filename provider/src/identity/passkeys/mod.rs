//! Passkeys (WebAuthn): registering them on `/account/passkeys`, signing in with one instead
//! of a password, and using one as the second factor after a password. The relying party is
//! the issuer: its host is the relying-party id and its origin the only accepted origin.
//!
//! The JSON endpoints take the session's CSRF token in the `X-CSRF-Token` header; the browser
//! side is `/static/passkeys.js` (allowed by the pages' `script-src 'self'`).

pub mod account;
pub mod ceremony;
pub mod second_factor;
pub mod sign_in;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use sha2::Digest as _;
use webauthn_rs::prelude::{Url, Uuid, Webauthn, WebauthnBuilder};

use crate::config::Settings;
use crate::pages::csrf;
use crate::storage::StorageError;

pub use ceremony::CeremonyError;

/// The header carrying the CSRF token of a JSON request.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Largest JSON body read: a registration with a large attestation stays far below it.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// The browser side of the ceremonies.
const SCRIPT: &str = include_str!("../../../static/passkeys.js");

/// Mounts the passkey pages, their JSON endpoints and the script.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/passkeys.js", web::get().to(script))
        .configure(account::configure)
        .configure(sign_in::configure)
        .configure(second_factor::configure);
}

/// `GET /static/passkeys.js`.
async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(SCRIPT)
}

/// The relying party for the configured issuer: id = its host, origin = its origin. An issuer
/// whose host is an IP address has no relying-party id (WebAuthn needs a domain name).
pub fn relying_party(settings: &Settings) -> Result<Webauthn, PasskeyError> {
    let issuer = Url::parse(&settings.issuer).map_err(|_| PasskeyError::Unavailable)?;
    let Some(url::Host::Domain(host)) = issuer.host() else {
        return Err(PasskeyError::Unavailable);
    };
    let origin = Url::parse(&issuer.origin().ascii_serialization())
        .map_err(|_| PasskeyError::Unavailable)?;
    WebauthnBuilder::new(host, &origin)
        .and_then(|b| b.rp_name(host).build())
        .map_err(|_| PasskeyError::Unavailable)
}

/// The WebAuthn user handle of a user: the first 16 bytes of the SHA-256 of the user's row
/// id. Stable, derived rather than stored, and not the row id itself.
pub fn user_handle(user_id: &str) -> Uuid {
    let digest = sha2::Sha256::digest(user_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// A credential id as stored: base64url without padding.
pub fn credential_key(raw: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Checks the `X-CSRF-Token` header of a JSON request.
pub fn check_csrf(req: &HttpRequest, session: &Session) -> Result<(), PasskeyError> {
    let submitted = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if csrf::verify(session, submitted) {
        Ok(())
    } else {
        Err(PasskeyError::Csrf)
    }
}

/// Parses a JSON body; anything else is a 400, never a 500.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, PasskeyError> {
    if body.len() > MAX_JSON_BYTES {
        return Err(PasskeyError::BadRequest("The request is too large."));
    }
    serde_json::from_slice(body).map_err(|_| PasskeyError::BadRequest("The request is malformed."))
}

/// Failures of the passkey endpoints, answered as JSON `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The CSRF header is missing or wrong.
    #[error("the request was not sent from this site; reload the page and try again")]
    Csrf,
    /// The endpoint needs a signed-in user.
    #[error("sign in first")]
    NotSignedIn,
    /// The body could not be read.
    #[error("{0}")]
    BadRequest(&'static str),
    /// No ceremony in flight, an expired one, or one for something else.
    #[error(transparent)]
    Ceremony(#[from] CeremonyError),
    /// The authenticator's answer was not accepted (unknown credential, bad signature, no user
    /// verification, a ceremony used already).
    #[error("the passkey was not accepted")]
    Refused,
    /// A second-factor request without a login waiting for its second factor.
    #[error("no sign-in is waiting for a second factor; please sign in again")]
    NotPending,
    /// A rule about the user's passkeys (too many, registered already).
    #[error("{0}")]
    Conflict(&'static str),
    /// Too many failed sign-ins for this account or address.
    #[error("too many failed sign-in attempts; please wait a few minutes and try again")]
    Throttled { retry_after_secs: u64 },
    /// The issuer has no domain name, so there is no relying party.
    #[error("passkeys are not available on this server")]
    Unavailable,
    /// Anything else; logged, never shown.
    #[error("something went wrong; please try again later")]
    Unexpected(#[from] anyhow::Error),
}

impl From<StorageError> for PasskeyError {
    fn from(e: StorageError) -> Self {
        Self::Unexpected(e.into())
    }
}

impl From<diesel::result::Error> for PasskeyError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Unexpected(e.into())
    }
}

impl ResponseError for PasskeyError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotSignedIn | Self::Refused => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) | Self::Ceremony(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable | Self::NotPending => StatusCode::NOT_FOUND,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unexpected(error) = self {
            tracing::error!(error = ?error, "a passkey request failed unexpectedly");
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Self::Throttled { retry_after_secs } = self {
            response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        response.json(serde_json::json!({ "error": self.to_string() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(issuer: &str) -> Settings {
        Settings {
            issuer: issuer.to_owned(),
            ..Settings::default()
        }
    }

    #[test]
    fn user_handles_are_stable_and_distinct() {
        assert_eq!(user_handle("a"), user_handle("a"));
        assert_ne!(user_handle("a"), user_handle("b"));
        let digest = sha2::Sha256::digest(b"a");
        assert_eq!(user_handle("a").as_bytes(), &digest[..16]);
    }

    #[test]
    fn the_relying_party_is_the_issuer_host() {
        assert!(relying_party(&settings("https://id.example.com/tenant")).is_ok());
        assert!(relying_party(&settings("http://localhost:8000")).is_ok());
        assert!(matches!(
            relying_party(&settings("http://127.0.0.1:8000")),
            Err(PasskeyError::Unavailable)
        ));
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        let parsed: Result<serde_json::Value, _> = parse_json(b"{not json");
        assert!(matches!(parsed, Err(PasskeyError::BadRequest(_))));
        let huge = vec![b' '; MAX_JSON_BYTES + 1];
        let parsed: Result<serde_json::Value, _> = parse_json(&huge);
        assert!(matches!(parsed, Err(PasskeyError::BadRequest(_))));
    }
}
