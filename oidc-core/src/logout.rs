//! The claim checks of logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4, §2.6, §2.8;
//! RFC 8725 §3.11 for explicit typing), without any JWS code: a relying party that checks the
//! signature with another library (or [`crate::jose::LogoutTokenVerifier`], feature `jose`)
//! checks the header's `typ` and the payload with [`check_logout_claims`].

use serde::Deserialize;

use crate::claims::{Audience, BACKCHANNEL_LOGOUT_EVENT, LogoutTokenClaims};
use crate::error::{ErrorCode, ErrorResponse};
use crate::jose::{Algorithm, LOGOUT_TOKEN_TYPE};
use crate::types::{ClientId, IssuerUrl, Subject};

/// Default clock-skew allowance for `iat` and `exp`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u32 = 60;

/// Default oldest accepted `iat`, in seconds before now (plus the leeway). The specification
/// recommends that logout tokens expire two minutes after issue; five leaves room for retries.
pub const DEFAULT_MAX_AGE_SECS: u32 = 300;

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

/// What a logout token must match: the issuer, the client, and the time limits.
#[derive(Debug, Clone)]
pub struct ExpectedLogout {
    /// The provider's issuer, compared byte for byte with `iss`.
    pub issuer: IssuerUrl,
    /// This client's id, which `aud` must contain.
    pub client_id: ClientId,
    /// Clock-skew allowance for `iat` and `exp`, in seconds.
    pub leeway: u32,
    /// How old `iat` may be, in seconds before now, on top of the leeway.
    pub max_age: u32,
}

impl ExpectedLogout {
    /// Tokens of `issuer` for `client_id`, with the default leeway (60 s) and age (300 s).
    pub fn new(issuer: IssuerUrl, client_id: ClientId) -> Self {
        Self {
            issuer,
            client_id,
            leeway: DEFAULT_LEEWAY_SECS,
            max_age: DEFAULT_MAX_AGE_SECS,
        }
    }
}

/// Claims that passed every check of [`check_logout_claims`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedLogoutClaims {
    /// The claims. `sub` and `sid` are never both absent; an empty `sid` reads as absent.
    pub claims: LogoutTokenClaims,
    /// Until when (seconds since the Unix epoch) the caller must remember `claims.jti`: after
    /// this time the same token is refused by the `iat`/`exp` checks anyway.
    pub keep_jti_until: i64,
}

/// Checks a logout token whose signature has already been verified: the header `typ` (absent,
/// or `logout+jwt`), then the claims of `payload` (the JWS payload's bytes): `iss` byte for
/// byte, `aud` contains the client id, `iat` neither in the future nor older than the maximum
/// age, `exp` present and not passed (all with the leeway), `sub` or `sid` present, `events`
/// holding the back-channel logout event as a JSON object, no `nonce`, `jti` present.
///
/// The replay check (a `jti` seen before) and matching sessions are the caller's.
pub fn check_logout_claims(
    typ: Option<&serde_json::Value>,
    payload: &[u8],
    expected: &ExpectedLogout,
    now: i64,
) -> Result<CheckedLogoutClaims, LogoutTokenError> {
    check_type(typ)?;
    let received: ReceivedClaims = serde_json::from_slice(payload)
        .map_err(|e| LogoutTokenError::InvalidClaims(e.to_string()))?;
    let leeway = i64::from(expected.leeway);
    let max_age = i64::from(expected.max_age);

    if received.iss.as_bytes() != expected.issuer.as_str().as_bytes() {
        return Err(LogoutTokenError::WrongIssuer {
            found: received.iss.chars().take(256).collect(),
        });
    }
    if !received.aud.contains(&expected.client_id) {
        return Err(LogoutTokenError::WrongAudience);
    }
    let iat = received.iat;
    if iat > now.saturating_add(leeway) {
        return Err(LogoutTokenError::IssuedInFuture { iat, now });
    }
    let oldest = now.saturating_sub(leeway).saturating_sub(max_age);
    if iat < oldest {
        return Err(LogoutTokenError::IssuedTooLongAgo { iat, now });
    }
    let exp = received.exp.ok_or(LogoutTokenError::MissingExpiry)?;
    if now.saturating_sub(leeway) >= exp {
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
    let keep_jti_until = exp.min(iat.saturating_add(max_age)).saturating_add(leeway);
    Ok(CheckedLogoutClaims {
        claims: LogoutTokenClaims {
            iss: expected.issuer.clone(),
            sub: received.sub,
            aud: received.aud,
            iat,
            exp,
            jti,
            events,
            sid,
        },
        keep_jti_until,
    })
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

/// Whether a header `typ` names the logout-token type. RFC 7515 §4.1.9: media types compare
/// case-insensitively and the "application/" prefix may be left out.
pub fn is_logout_type(typ: &str) -> bool {
    let bare = typ
        .get(..12)
        .filter(|p| p.eq_ignore_ascii_case("application/"))
        .and_then(|_| typ.get(12..))
        .unwrap_or(typ);
    bare.eq_ignore_ascii_case(LOGOUT_TOKEN_TYPE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected() -> ExpectedLogout {
        ExpectedLogout::new(
            IssuerUrl::parse("https://id.example.com").unwrap(),
            ClientId::new("webapp"),
        )
    }

    fn payload(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut claims = serde_json::json!({
            "iss": "https://id.example.com",
            "aud": "webapp",
            "iat": 1000,
            "exp": 1120,
            "jti": "j-1",
            "sid": "s-1",
            "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
        });
        edit(&mut claims);
        serde_json::to_vec(&claims).unwrap()
    }

    #[test]
    fn claims_are_checked_without_any_jws_code() {
        let typ = serde_json::json!("logout+jwt");
        let checked = check_logout_claims(Some(&typ), &payload(|_| {}), &expected(), 1010).unwrap();
        assert_eq!(checked.claims.sid.as_deref(), Some("s-1"));
        assert_eq!(checked.keep_jti_until, 1120 + 60);

        let refused = |edit: fn(&mut serde_json::Value)| {
            check_logout_claims(None, &payload(edit), &expected(), 1010).unwrap_err()
        };
        assert_eq!(
            refused(|c| c["nonce"] = "n".into()),
            LogoutTokenError::NoncePresent
        );
        assert_eq!(
            refused(|c| c["aud"] = "other".into()),
            LogoutTokenError::WrongAudience
        );
        assert_eq!(
            refused(|c| drop(c.as_object_mut().unwrap().remove("events"))),
            LogoutTokenError::MissingLogoutEvent
        );
        let id_token_type = serde_json::json!("JWT");
        assert!(matches!(
            check_logout_claims(Some(&id_token_type), &payload(|_| {}), &expected(), 1010),
            Err(LogoutTokenError::WrongType(_))
        ));
    }
}
