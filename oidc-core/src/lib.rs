//! OpenID Connect and OAuth 2.0 protocol types shared by an identity provider and its relying
//! parties.
//!
//! `oidc-core` is the vocabulary both sides of an OpenID Connect flow speak, with no web
//! framework, database or async runtime attached, so any Rust service can use it alone:
//!
//! - [`types`]: newtypes for client ids, redirect URIs, issuers, scopes, state, nonce, subjects and
//!   the secret values (authorization codes, access and refresh tokens, client secrets), whose
//!   `Debug` is redacted and whose `==` runs in constant time (RFC 6749, OpenID Connect Core 1.0).
//! - [`pkce`]: Proof Key for Code Exchange with `S256` only (RFC 7636).
//! - [`claims`]: ID-token, standard profile, userinfo and logout-token claims (OpenID Connect
//!   Core 1.0 §2, §5; Back-Channel Logout 1.0 §2.4).
//! - [`token`]: token requests and responses (RFC 6749 §4.1.3, §5.1, §6).
//! - [`error`]: error codes with their HTTP status, error responses and authorization redirects
//!   (RFC 6749 §4.1.2, §5.2, RFC 6750 §3.1, RFC 9207).
//! - [`discovery`]: provider metadata (OpenID Connect Discovery 1.0 §3).
//! - [`jwk`]: JSON Web Keys and key sets with RFC 7638 thumbprints as key ids (RFC 7517).
//! - [`jose`]: signing and verification of ID tokens and logout tokens with RS256 and ES256 and
//!   `at_hash` (RFC 7515, RFC 7519, RFC 8725, Back-Channel Logout 1.0 §2.6); key handling and
//!   verification need the default `jose` feature.
//!
//! # Example: sign an ID token, publish the key set, verify the token
//!
//! ```
//! # #[cfg(feature = "jose")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use oidc_core::claims::{Audience, IdTokenClaims, StandardClaims};
//! use oidc_core::jose::{Algorithm, IdTokenVerifier, SigningKey};
//! use oidc_core::jwk::JwkSet;
//! use oidc_core::types::{AccessToken, ClientId, IssuerUrl, Nonce, Subject};
//!
//! // The provider: one signing key, generated once and kept (see `SigningKey::to_pem`).
//! let key = SigningKey::generate(Algorithm::ES256)?;
//! let issuer = IssuerUrl::parse("https://id.example.com")?;
//! let client_id = ClientId::new("webapp");
//! let nonce = Nonce::generate();
//! let access_token = AccessToken::generate();
//!
//! let now = oidc_core::unix_now();
//! let mut claims = IdTokenClaims::new(
//!     issuer.clone(),
//!     Subject::new("user-42"),
//!     Audience::Single(client_id.clone()),
//!     now,
//!     now + 3600,
//! );
//! claims.nonce = Some(nonce.clone());
//! claims.at_hash = Some(oidc_core::jose::at_hash(&access_token, key.algorithm()));
//! claims.profile = StandardClaims {
//!     name: Some("Alice Example".into()),
//!     email: Some("alice@example.com".into()),
//!     email_verified: Some(true),
//!     ..StandardClaims::default()
//! };
//! let id_token = key.sign_id_token(&claims)?;
//!
//! // What the provider serves at its `jwks_uri`.
//! let jwks_json = serde_json::to_string(&JwkSet::new(vec![key.public_jwk()]))?;
//!
//! // The relying party: parse the published key set and verify the token.
//! let jwks: JwkSet = serde_json::from_str(&jwks_json)?;
//! let verifier = IdTokenVerifier::new(issuer, client_id, jwks);
//! let verified = verifier.verify(&id_token, Some(&nonce), Some(&access_token))?;
//! assert_eq!(verified.sub.as_str(), "user-42");
//! assert_eq!(verified.profile.email.as_deref(), Some("alice@example.com"));
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "jose"))]
//! # fn main() {}
//! ```
//!
//! # Features
//!
//! - `jose` (default): [`jose::SigningKey`] and [`jose::IdTokenVerifier`], built on `josekit`
//!   (which links the system OpenSSL). Without it the crate is plain data types, PKCE, JWK
//!   thumbprints and `at_hash`.
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod claims;
pub mod discovery;
pub mod error;
pub mod jose;
pub mod jwk;
pub mod logout;
pub mod pkce;
pub mod token;
pub mod types;

mod encoding;

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(all(doctest, feature = "jose"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The current time in seconds since the Unix epoch, as used by the `exp`, `iat` and `auth_time`
/// claims (RFC 7519 §2 "NumericDate").
///
/// A clock set before 1970 reads as 0 rather than failing.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
