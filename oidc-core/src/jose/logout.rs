//! Logout-token validation as a relying party does it (OpenID Connect Back-Channel Logout 1.0
//! §2.4, §2.6, §2.8; RFC 8725 §3.11 for explicit typing).

use serde::Deserialize;

use super::verify::{VerificationKey, VerifiedJws, VerifyError, keys_from_jwks, verify_jws};
use super::{Algorithm, is_logout_type};
use crate::claims::{Audience, BACKCHANNEL_LOGOUT_EVENT, LogoutTokenClaims};
use crate::error::{ErrorCode, ErrorResponse};
use crate::jwk::JwkSet;
use crate::types::{ClientId, IssuerUrl, Subject};

/// Default clock-skew allowance for `iat` and `exp`, in seconds.
const DEFAULT_LEEWAY_SECS: u32 = 60;

/// Default oldest accepted `iat`, in seconds before now (plus the leeway). The specification
/// recommends that logout tokens expire two minutes after issue; five leaves room for retries.
const DEFAULT_MAX_AGE_SECS: u32 = 300;

/// Why a logout token was refused: one variant per check of OpenID Connect Back-Channel Logout
/// 1.0 §2.6. Every one is answered with HTTP 400 and `invalid_request` (§2.8), see
/// [`LogoutTokenError::error_response`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenError {
    /// Not a compact JWS: wrong number of parts, bad base64url, header not a JSON object, too
    /// long.
    #[error("malformed logout token: {0}")]
    Malformed(String),
    /// The header's `alg` is not in the allow-list (`none`, `HS256`, anything unknown).
    #[error("unsupported signing algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The header has a `crit` member (RFC 7515 §4.1.11).
    #[error("unsupported critical header parameters")]
    UnsupportedCriticalHeader,
    /// No key of the issuer's JWK Set has the header's `kid` (or, without `kid`, no key suits
    /// the algorithm). Fetch the JWK Set again once and retry, as for ID tokens.
    #[error(
        "no key {} in the JWK Set",
        .0.as_deref().map_or("for the token's algorithm".to_owned(), |k| format!("with id {k:?}"))
    )]
    UnknownKid(Option<String>),
    /// The key named by `kid` does not fit the header's algorithm.
    #[error("key {kid:?} cannot verify {alg}")]
    KeyAlgorithmMismatch {
        /// The key id.
        kid: String,
        /// The algorithm of the header.
        alg: Algorithm,
    },
    /// The signature does not verify with the issuer's key.
    #[error("bad signature")]
    BadSignature,
    /// The header's `typ` is present and is not `logout+jwt` (RFC 8725 §3.11).
    #[error("wrong token type {0:?}, expected \"logout+jwt\"")]
    WrongType(String),
    /// The payload is not a JSON object, or `iss`, `aud`, `iat` (required) or another claim is
    /// missing or of the wrong type.
    #[error("invalid logout token claims: {0}")]
    InvalidClaims(String),
    /// `iss` is not exactly the expected issuer.
    #[error("wrong issuer {found:?}")]
    WrongIssuer {
        /// The issuer in the token.
        found: String,
    },
    /// `aud` does not contain our client id.
    #[error("the logout token is not meant for this client")]
    WrongAudience,
    /// `iat` is in the future (beyond the leeway).
    #[error("logout token issued in the future at {iat} (now {now})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
        /// The time of the check.
        now: i64,
    },
    /// `iat` is older than the accepted age (beyond the leeway).
    #[error("logout token issued too long ago at {iat} (now {now})")]
    IssuedTooLongAgo {
        /// The token's `iat`.
        iat: i64,
        /// The time of the check.
        now: i64,
    },
    /// There is no `exp` (required by Back-Channel Logout 1.0 §2.4).
    #[error("logout token has no exp")]
    MissingExpiry,
    /// `exp` is in the past (beyond the leeway).
    #[error("logout token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The time of the check.
        now: i64,
    },
    /// Neither `sub` nor `sid` is present (§2.6 point 5).
    #[error("logout token has neither sub nor sid")]
    MissingSubjectAndSession,
    /// `events` is absent, not a JSON object, or lacks the back-channel logout member (§2.6
    /// point 6).
    #[error("logout token has no back-channel logout event")]
    MissingLogoutEvent,
    /// The back-channel logout member of `events` is not a JSON object.
    #[error("the back-channel logout event is not a JSON object")]
    LogoutEventNotObject,
    /// The token has a `nonce` (§2.6 point 7): it is an ID token, or made to look like one.
    #[error("logout token must not contain a nonce")]
    NoncePresent,
    /// There is no `jti` (required by §2.4, needed for the replay check).
    #[error("logout token has no jti")]
    MissingJti,
}

impl LogoutTokenError {
    /// The error code of the answer: always `invalid_request` (§2.8).
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::InvalidRequest
    }

    /// The HTTP status of the answer: always 400 (§2.8).
    pub fn http_status(&self) -> u16 {
        self.error_code().http_status()
    }

    /// The JSON body of the 400 answer: `invalid_request` with this error as description.
    pub fn error_response(&self) -> ErrorResponse {
        ErrorResponse::new(self.error_code()).with_description(self.to_string())
    }

    /// Whether fetching the JWK Set again may help (the key is not known yet).
    pub fn is_unknown_key(&self) -> bool {
        matches!(self, Self::UnknownKid(_))
    }
}

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

/// The claims as received, every rule-checked one optional so that each missing claim gets its
/// own error rather than a generic parse failure. Duplicate members are refused by serde.
#[derive(Deserialize)]
struct ReceivedClaims {
    iss: String,
    #[serde(default)]
    sub: Option<Subject>,
    aud: Audience,
    iat: i64,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    events: Option<serde_json::Value>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    nonce: Option<serde_json::Value>,
}

/// A logout token that passed every check, with what the replay check needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLogoutToken {
    /// The claims. `sub` and `sid` are never both absent; an empty `sid` reads as absent.
    pub claims: LogoutTokenClaims,
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
    issuer: IssuerUrl,
    client_id: ClientId,
    keys: Vec<VerificationKey>,
    allowed: Vec<Algorithm>,
    leeway: i64,
    max_age: i64,
}

impl LogoutTokenVerifier {
    /// A verifier for logout tokens of `issuer` meant for `client_id`, with the keys of `jwks`
    /// (the same set the ID tokens are verified with). Keys that cannot verify RS256 or ES256
    /// are left out.
    pub fn new(issuer: IssuerUrl, client_id: ClientId, jwks: JwkSet) -> Self {
        Self {
            issuer,
            client_id,
            keys: keys_from_jwks(&jwks),
            allowed: Algorithm::ALL.to_vec(),
            leeway: i64::from(DEFAULT_LEEWAY_SECS),
            max_age: i64::from(DEFAULT_MAX_AGE_SECS),
        }
    }

    /// Sets the clock-skew allowance for `iat` and `exp`, in seconds (default 60).
    pub fn leeway(mut self, secs: u32) -> Self {
        self.leeway = i64::from(secs);
        self
    }

    /// Sets how old `iat` may be, in seconds before now, on top of the leeway (default 300).
    /// The longer it is, the longer the caller must remember each `jti`.
    pub fn max_age(mut self, secs: u32) -> Self {
        self.max_age = i64::from(secs);
        self
    }

    /// Narrows the accepted algorithms. Default: every [`Algorithm`].
    pub fn allowed_algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.allowed = algorithms.to_vec();
        self
    }

    /// Replaces the keys, e.g. after fetching the JWK Set again on
    /// [`LogoutTokenError::UnknownKid`].
    pub fn set_jwks(&mut self, jwks: &JwkSet) {
        self.keys = keys_from_jwks(jwks);
    }

    /// Number of usable keys.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The expected issuer.
    pub fn issuer(&self) -> &IssuerUrl {
        &self.issuer
    }

    /// The client the tokens must be meant for.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

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
        check_type(typ.as_ref())?;
        let received: ReceivedClaims = serde_json::from_slice(&payload)
            .map_err(|e| LogoutTokenError::InvalidClaims(e.to_string()))?;

        if received.iss.as_bytes() != self.issuer.as_str().as_bytes() {
            return Err(LogoutTokenError::WrongIssuer {
                found: received.iss.chars().take(256).collect(),
            });
        }
        if !received.aud.contains(&self.client_id) {
            return Err(LogoutTokenError::WrongAudience);
        }
        let iat = received.iat;
        if iat > now.saturating_add(self.leeway) {
            return Err(LogoutTokenError::IssuedInFuture { iat, now });
        }
        let oldest = now.saturating_sub(self.leeway).saturating_sub(self.max_age);
        if iat < oldest {
            return Err(LogoutTokenError::IssuedTooLongAgo { iat, now });
        }
        let exp = received.exp.ok_or(LogoutTokenError::MissingExpiry)?;
        if now.saturating_sub(self.leeway) >= exp {
            return Err(LogoutTokenError::Expired { exp, now });
        }
        let sid = received.sid.filter(|s| !s.is_empty());
        if received.sub.is_none() && sid.is_none() {
            return Err(LogoutTokenError::MissingSubjectAndSession);
        }
        let events = match received.events {
            Some(serde_json::Value::Object(events)) => events,
            _ => return Err(LogoutTokenError::MissingLogoutEvent),
        };
        match events.get(BACKCHANNEL_LOGOUT_EVENT) {
            Some(serde_json::Value::Object(_)) => {}
            Some(_) => return Err(LogoutTokenError::LogoutEventNotObject),
            None => return Err(LogoutTokenError::MissingLogoutEvent),
        }
        if received.nonce.is_some() {
            return Err(LogoutTokenError::NoncePresent);
        }
        let jti = received
            .jti
            .filter(|j| !j.is_empty())
            .ok_or(LogoutTokenError::MissingJti)?;

        // Past the earlier of the two time limits the token is refused anyway, so the jti can
        // be forgotten then.
        let keep_jti_until = exp
            .min(iat.saturating_add(self.max_age))
            .saturating_add(self.leeway);
        Ok(VerifiedLogoutToken {
            claims: LogoutTokenClaims {
                iss: self.issuer.clone(),
                sub: received.sub,
                aud: received.aud,
                iat,
                exp,
                jti,
                events,
                sid,
            },
            alg,
            keep_jti_until,
        })
    }
}

/// The explicit-typing check (RFC 8725 §3.11): an absent `typ` passes (the claim checks still
/// tell an ID token apart), a present one must name `logout+jwt`.
fn check_type(typ: Option<&serde_json::Value>) -> Result<(), LogoutTokenError> {
    let Some(typ) = typ else {
        return Ok(());
    };
    let Some(text) = typ.as_str() else {
        return Err(LogoutTokenError::WrongType(
            typ.to_string().chars().take(64).collect(),
        ));
    };
    if is_logout_type(text) {
        Ok(())
    } else {
        Err(LogoutTokenError::WrongType(text.chars().take(64).collect()))
    }
}
