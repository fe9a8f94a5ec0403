//! A discovered provider for unit tests, with a signing key and claims that pass every check.

use base64::Engine as _;
use oidc_core::jose::{Algorithm, SigningKey};
use openidconnect::core::CoreJsonWebKeySet;
use serde_json::json;

use super::{Metadata, Oidc, Provider};
use crate::config::Settings;

/// Nothing listens here: these tests never reach a provider.
pub const ISSUER: &str = "http://127.0.0.1:1";
pub const CLIENT_ID: &str = "webapp";
pub const CLIENT_SECRET: &str = "client-secret-for-tests-0123456789";
pub const SESSION_SECRET: &str = "0123456789abcdef0123456789abcdef";
pub const ACCESS_TOKEN: &str = "access-token-1";
pub const NONCE: &str = "nonce-1";

pub struct Fixture {
    pub oidc: Oidc,
    pub provider: Provider,
    pub key: SigningKey,
}

/// The fixture's provider.
pub fn fixture() -> Fixture {
    fixture_with(json!({}))
}

/// The fixture's provider with `extra` discovery fields.
pub fn fixture_with(extra: serde_json::Value) -> Fixture {
    let settings = Settings::new(
        "http://127.0.0.1:3000",
        ISSUER,
        CLIENT_ID,
        CLIENT_SECRET,
        SESSION_SECRET,
    )
    .unwrap();
    let oidc = Oidc::new(settings).unwrap();
    let key = SigningKey::generate(Algorithm::RS256).unwrap();
    let mut document = json!({
        "issuer": ISSUER,
        "authorization_endpoint": format!("{ISSUER}/oauth/authorize"),
        "token_endpoint": format!("{ISSUER}/oauth/token"),
        "userinfo_endpoint": format!("{ISSUER}/oauth/userinfo"),
        "jwks_uri": format!("{ISSUER}/oauth/jwks"),
        "end_session_endpoint": format!("{ISSUER}/oauth/logout"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        // A provider advertising HS256 too must not make HMAC tokens acceptable.
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "HS256"],
        "authorization_response_iss_parameter_supported": true,
    });
    for (name, value) in extra.as_object().unwrap() {
        document[name] = value.clone();
    }
    let metadata: Metadata = serde_json::from_value(document).unwrap();
    let jwks: CoreJsonWebKeySet =
        serde_json::from_value(json!({ "keys": [key.public_jwk()] })).unwrap();
    Fixture {
        oidc,
        provider: Provider::new(metadata, jwks),
        key,
    }
}

pub fn now() -> i64 {
    oidc_core::unix_now()
}

pub fn good_claims() -> serde_json::Value {
    let at_hash = oidc_core::jose::at_hash(
        &oidc_core::types::AccessToken::new(ACCESS_TOKEN),
        Algorithm::RS256,
    );
    json!({
        "iss": ISSUER,
        "sub": "user-1",
        "aud": CLIENT_ID,
        "iat": now(),
        "exp": now() + 300,
        "nonce": NONCE,
        "at_hash": at_hash,
        "name": "Alice Example",
        "email": "alice@example.com",
    })
}

/// `claims` with `name` set to `value`, or removed for `null`.
pub fn with(
    mut claims: serde_json::Value,
    name: &str,
    value: serde_json::Value,
) -> serde_json::Value {
    if value.is_null() {
        claims.as_object_mut().unwrap().remove(name);
    } else {
        claims[name] = value;
    }
    claims
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
