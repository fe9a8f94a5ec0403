//! Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.6): the JWS signature
//! and `alg` checked with the provider's keys by the `openidconnect` crate, then the claims with
//! oidc-core's rules.

use base64::Engine as _;
use oidc_core::logout::{
    CheckedLogoutClaims, ExpectedLogout, LogoutTokenError, check_logout_claims,
};
use openidconnect::JsonWebKey as _;
use openidconnect::core::{
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm,
};

use super::id_token::asymmetric_algs;
use super::{Oidc, OidcError, Provider};

/// Longest logout token read: a few claims and an RSA-4096 signature fit many times over.
const MAX_LOGOUT_TOKEN_LEN: usize = 8 * 1024;

/// Why a logout token was not accepted.
#[derive(Debug)]
pub enum LogoutTokenFailure {
    /// The token is bad: 400 `invalid_request`.
    Invalid(LogoutTokenError),
    /// The provider's keys could not be fetched: try again later.
    Unavailable(OidcError),
}

impl Oidc {
    /// Verifies a back-channel logout token: the JWS signature and `alg` with the provider's
    /// keys (fetched again once for an unknown key, at most every
    /// [`JWKS_REFETCH_INTERVAL`](super::JWKS_REFETCH_INTERVAL): this endpoint is open to anyone),
    /// then the claims with oidc-core's rules.
    pub async fn verify_logout_token(
        &self,
        provider: &Provider,
        token: &str,
        now: i64,
    ) -> Result<CheckedLogoutClaims, LogoutTokenFailure> {
        let jws = CompactJws::parse(token).map_err(LogoutTokenFailure::Invalid)?;
        let allowed = asymmetric_algs(provider);
        match jws.verify(&provider.jwks(), &allowed) {
            Ok(()) => {}
            Err(LogoutTokenError::UnknownKid(kid)) => {
                if !provider.may_refetch_jwks() {
                    return Err(LogoutTokenFailure::Invalid(LogoutTokenError::UnknownKid(
                        kid,
                    )));
                }
                self.refetch_jwks(provider)
                    .await
                    .map_err(LogoutTokenFailure::Unavailable)?;
                jws.verify(&provider.jwks(), &allowed)
                    .map_err(LogoutTokenFailure::Invalid)?;
            }
            Err(other) => return Err(LogoutTokenFailure::Invalid(other)),
        }
        let expected = ExpectedLogout::new(
            self.settings.issuer.clone(),
            self.settings.client_id.clone(),
        );
        check_logout_claims(jws.header.get("typ"), &jws.payload, &expected, now)
            .map_err(LogoutTokenFailure::Invalid)
    }
}

/// A JWS in compact form, decoded but not yet verified.
struct CompactJws {
    header: serde_json::Map<String, serde_json::Value>,
    payload: Vec<u8>,
    signature: Vec<u8>,
    signing_input: String,
}

impl CompactJws {
    fn parse(token: &str) -> Result<Self, LogoutTokenError> {
        let malformed = |what: &str| LogoutTokenError::Malformed(what.to_owned());
        if token.len() > MAX_LOGOUT_TOKEN_LEN {
            return Err(malformed("too long"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("not three dot-separated parts"));
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header_bytes = b64
            .decode(header)
            .map_err(|_| malformed("header is not base64url"))?;
        let header_json: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&header_bytes)
                .map_err(|_| malformed("header is not a JSON object"))?;
        Ok(Self {
            header: header_json,
            payload: b64
                .decode(payload)
                .map_err(|_| malformed("payload is not base64url"))?,
            signature: b64
                .decode(signature)
                .map_err(|_| malformed("signature is not base64url"))?,
            signing_input: format!("{header}.{payload}"),
        })
    }

    /// Checks `alg` against `allowed`, then the signature with the key named by `kid` (or,
    /// without `kid`, any signing key of the set).
    fn verify(
        &self,
        jwks: &CoreJsonWebKeySet,
        allowed: &[CoreJwsSigningAlgorithm],
    ) -> Result<(), LogoutTokenError> {
        if self.header.contains_key("crit") {
            return Err(LogoutTokenError::UnsupportedCriticalHeader);
        }
        let alg_value = self.header.get("alg").cloned().unwrap_or_default();
        let unsupported = || {
            LogoutTokenError::UnsupportedAlgorithm(alg_value.to_string().chars().take(32).collect())
        };
        let alg: CoreJwsSigningAlgorithm =
            serde_json::from_value(alg_value.clone()).map_err(|_| unsupported())?;
        if !allowed.contains(&alg) {
            return Err(unsupported());
        }
        let kid = match self.header.get("kid") {
            None => None,
            Some(serde_json::Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(LogoutTokenError::Malformed("kid is not a string".into())),
        };
        let candidates: Vec<&CoreJsonWebKey> = jwks
            .keys()
            .iter()
            .filter(|key| kid.is_none_or(|kid| key.key_id().is_some_and(|k| **k == kid)))
            .filter(|key| {
                key.key_use()
                    .is_none_or(|u| *u == CoreJsonWebKeyUse::Signature)
            })
            .collect();
        if candidates.is_empty() {
            return Err(LogoutTokenError::UnknownKid(
                kid.map(|k| k.chars().take(64).collect()),
            ));
        }
        let verified = candidates.iter().any(|key| {
            key.verify_signature(&alg, self.signing_input.as_bytes(), &self.signature)
                .is_ok()
        });
        if verified {
            Ok(())
        } else {
            Err(LogoutTokenError::BadSignature)
        }
    }
}
