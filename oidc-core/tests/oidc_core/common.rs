//! Shared keys, claims and token-forging helpers.

use std::sync::OnceLock;

use josekit::jws::JwsSigner as _;
use oidc_core::claims::{Audience, IdTokenClaims, StandardClaims};
use oidc_core::jose::{Algorithm, IdTokenVerifier, SigningKey};
use oidc_core::jwk::JwkSet;
use oidc_core::types::{ClientId, IssuerUrl, Nonce, Subject};

pub const ISSUER: &str = "https://id.example.com";
pub const CLIENT: &str = "webapp";
pub const NONCE: &str = "n-0S6_WzA2Mj";

/// RSA keys are slow to generate in a debug build: make each once per test binary.
pub fn rsa_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(Algorithm::RS256).unwrap())
}

/// A second RSA key: the "new" key of a rotation.
pub fn rsa_key2() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(Algorithm::RS256).unwrap())
}

pub fn ec_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(Algorithm::ES256).unwrap())
}

pub fn issuer() -> IssuerUrl {
    IssuerUrl::parse(ISSUER).unwrap()
}

pub fn client() -> ClientId {
    ClientId::new(CLIENT)
}

pub fn nonce() -> Nonce {
    Nonce::new(NONCE)
}

pub fn now() -> i64 {
    oidc_core::unix_now()
}

/// Valid claims issued now for one hour, with a nonce and profile claims.
pub fn claims() -> IdTokenClaims {
    let now = now();
    let mut claims = IdTokenClaims::new(
        issuer(),
        Subject::new("user-1"),
        Audience::Single(client()),
        now,
        now + 3600,
    );
    claims.nonce = Some(nonce());
    claims.auth_time = Some(now - 5);
    claims.profile = StandardClaims {
        name: Some("Alice Example".into()),
        given_name: Some("Alice".into()),
        family_name: Some("Example".into()),
        preferred_username: Some("alice".into()),
        email: Some("alice@example.com".into()),
        email_verified: Some(true),
        updated_at: Some(1_700_000_000),
    };
    claims
}

pub fn jwks(keys: &[&SigningKey]) -> JwkSet {
    JwkSet::new(keys.iter().map(|k| k.public_jwk()).collect())
}

/// A verifier of `ISSUER` for `CLIENT` trusting `keys`, built from the published JSON as a
/// relying party would.
pub fn verifier(keys: &[&SigningKey]) -> IdTokenVerifier {
    let json = serde_json::to_string(&jwks(keys)).unwrap();
    IdTokenVerifier::new(issuer(), client(), serde_json::from_str(&json).unwrap())
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `header.payload` with the private key of `key` through josekit directly, so tests can
/// put anything in the header.
pub fn raw_sign(key: &SigningKey, message: &[u8]) -> Vec<u8> {
    let pem = key.to_pem();
    match key.algorithm() {
        Algorithm::RS256 => josekit::jws::RS256
            .signer_from_pem(&pem)
            .unwrap()
            .sign(message)
            .unwrap(),
        Algorithm::ES256 => josekit::jws::ES256
            .signer_from_pem(&pem)
            .unwrap()
            .sign(message)
            .unwrap(),
    }
}

/// A compact JWS with any `header` and `payload`, signed by `sign`.
pub fn forge(
    header: &serde_json::Value,
    payload: &impl serde::Serialize,
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> String {
    let message = format!(
        "{}.{}",
        b64(header.to_string()),
        b64(serde_json::to_vec(payload).unwrap())
    );
    let signature = sign(message.as_bytes());
    format!("{message}.{}", b64(signature))
}

/// A token signed by `key` with `header` (which should name the key's algorithm).
pub fn forge_with_key(
    key: &SigningKey,
    header: &serde_json::Value,
    payload: &impl serde::Serialize,
) -> String {
    forge(header, payload, |m| raw_sign(key, m))
}
