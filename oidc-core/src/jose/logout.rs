//! Logout-token validation as a relying party does it (OpenID Connect Back-Channel Logout 1.0
//! §2.4, §2.6, §2.8; RFC 8725 §3.11 for explicit typing): the JWS checks here, the claim checks
//! in [`crate::logout`].

use super::Algorithm;
use super::verify::{VerificationKey, VerifiedJws, VerifyError, keys_from_jwks, verify_jws};
use crate::jwk::JwkSet;
use crate::logout::{CheckedLogoutClaims, ExpectedLogout, LogoutTokenError, check_logout_claims};
use crate::types::{ClientId, IssuerUrl};

impl From<VerifyError> for LogoutTokenError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Malformed(m) => Self::Malformed(m),
            VerifyError::UnsupportedAlgorithm(a) => Self::UnsupportedAlgorithm(a),
            VerifyError::UnsupportedCriticalHeader => Self::UnsupportedCriticalHeader,
            VerifyError::UnknownKid(k) => Self::UnknownKid(k),
            VerifyError::KeyAlgorithmMismatch { kid, alg } => {
                Self::KeyAlgorithmMismatch { kid, alg }
            }
            VerifyError::BadSignature => Self::BadSignature,
            // The JWS check yields none of the ID-token claim errors; kept total all the same.
            other => Self::InvalidClaims(other.to_string()),
        }
    }
}

/// A logout token that passed every check, with what the replay check needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLogoutToken {
    /// The claims. `sub` and `sid` are never both absent; an empty `sid` reads as absent.
    pub claims: crate::claims::LogoutTokenClaims,
    /// The algorithm the token was signed with.
    pub alg: Algorithm,
    /// Until when (seconds since the Unix epoch) the caller must remember `claims.jti`: after
    /// this time the same token is refused by the `iat`/`exp` checks anyway.
    pub keep_jti_until: i64,
}

/// Validates logout tokens of one issuer for one client (OpenID Connect Back-Channel Logout 1.0
/// §2.6), with the issuer's JWK Set.
///
/// Checks, in order: the compact JWS form; `alg` against the allow-list ([`Algorithm`]: never
/// `none` or HMAC); the key by `kid`; the signature; the header `typ`, when present, is
/// `logout+jwt`; the claims: `iss` byte for byte, `aud` contains the client id, `iat` neither in
/// the future nor older than the maximum age, `exp` present and not passed (all with a leeway,
/// default 60 s), `sub` or `sid` present, `events` holding the back-channel logout event as a
/// JSON object, no `nonce`, `jti` present. Each failure is its own [`LogoutTokenError`], all
/// answered with 400 `invalid_request`.
///
/// # Replay
///
/// §2.6 point 8 (a `jti` seen before) needs storage this crate does not have: the caller must
/// keep the `jti` of every accepted token until [`VerifiedLogoutToken::keep_jti_until`] and
/// refuse a token whose `jti` (for the same issuer) it already holds. Whether `sub`/`sid` match
/// a current session (points 9–11) is also the caller's to check.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::collections::HashMap;
///
/// use oidc_core::claims::{Audience, LogoutTokenClaims};
/// use oidc_core::jose::{Algorithm, LogoutTokenVerifier, SigningKey};
/// use oidc_core::jwk::JwkSet;
/// use oidc_core::types::{ClientId, IssuerUrl};
///
/// // Provider: sign a logout token for the session "s-1" and post it as `logout_token`.
/// let key = SigningKey::generate(Algorithm::ES256)?;
/// let issuer = IssuerUrl::parse("https://id.example.com")?;
/// let client_id = ClientId::new("webapp");
/// let now = oidc_core::unix_now();
/// let claims = LogoutTokenClaims::new(
///     issuer.clone(),
///     Audience::Single(client_id.clone()),
///     None,
///     Some("s-1".into()),
///     now,
///     now + 120,
/// );
/// let logout_token = key.sign_logout_token(&claims)?;
///
/// // Relying party, at its back-channel logout endpoint.
/// let verifier = LogoutTokenVerifier::new(issuer, client_id, JwkSet::new(vec![key.public_jwk()]));
/// let mut seen_jtis: HashMap<String, i64> = HashMap::new(); // jti -> keep until
/// let verified = match verifier.verify(&logout_token) {
///     Ok(verified) => verified,
///     // Answer 400 with this JSON body.
///     Err(e) => return Err(e.error_response().into()),
/// };
/// seen_jtis.retain(|_, until| *until >= now);
/// if seen_jtis
///     .insert(verified.claims.jti.clone(), verified.keep_jti_until)
///     .is_some()
/// {
///     return Err("replayed logout token".into()); // also 400 invalid_request
/// }
/// assert_eq!(verified.claims.sid.as_deref(), Some("s-1"));
/// // ... end the session "s-1", answer 200.
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct LogoutTokenVerifier {
    expected: ExpectedLogout,
    keys: Vec<VerificationKey>,
    allowed: Vec<Algorithm>,
}

impl LogoutTokenVerifier {
    /// A verifier for logout tokens of `issuer` meant for `client_id`, with the keys of `jwks`
    /// (the same set the ID tokens are verified with). Keys that cannot verify RS256 or ES256
    /// are left out.
    pub fn new(issuer: IssuerUrl, client_id: ClientId, jwks: JwkSet) -> Self {
        Self {
            expected: ExpectedLogout::new(issuer, client_id),
            keys: keys_from_jwks(&jwks),
            allowed: Algorithm::ALL.to_vec(),
        }
    }

    /// Sets the clock-skew allowance for `iat` and `exp`, in seconds (default 60).
    pub fn leeway(mut self, secs: u32) -> Self {
        self.expected.leeway = secs;
        self
    }

    /// Sets how old `iat` may be, in seconds before now, on top of the leeway (default 300).
    /// The longer it is, the longer the caller must remember each `jti`.
    pub fn max_age(mut self, secs: u32) -> Self {
        self.expected.max_age = secs;
        self
    }

    verifier_key_methods!(
        "LogoutTokenError::UnknownKid",
        expected.issuer,
        expected.client_id
    );

    /// Validates `token` (the `logout_token` form parameter) now.
    pub fn verify(&self, token: &str) -> Result<VerifiedLogoutToken, LogoutTokenError> {
        self.verify_at(token, crate::unix_now())
    }

    /// [`verify`](Self::verify) with the clock reading `now` (seconds since the Unix epoch).
    pub fn verify_at(
        &self,
        token: &str,
        now: i64,
    ) -> Result<VerifiedLogoutToken, LogoutTokenError> {
        let VerifiedJws { alg, typ, payload } = verify_jws(token, &self.keys, &self.allowed)?;
        let CheckedLogoutClaims {
            claims,
            keep_jti_until,
        } = check_logout_claims(typ.as_ref(), &payload, &self.expected, now)?;
        Ok(VerifiedLogoutToken {
            claims,
            alg,
            keep_jti_until,
        })
    }
}
