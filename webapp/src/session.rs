//! The signed-in user's session, kept in the encrypted actix-session cookie (the analogue of
//! NextAuth's JWT session), its NextAuth JSON shape, and the CSRF token kept beside it.

use actix_session::Session;
use base64::Engine as _;
use oidc_core::types::{AccessToken, RefreshToken};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::oidc::{RawIdToken, Tokens};

/// The session key the signed-in user is stored under.
pub const USER_KEY: &str = "user";
const CSRF_KEY: &str = "csrf";

/// What NextAuth puts in `session.error` when a refresh failed.
pub const REFRESH_ERROR: &str = "RefreshAccessTokenError";

/// The signed-in user and their tokens (`Debug` shows none of the tokens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSession {
    /// The random id of this session's row in the web app's database (only its hash is stored
    /// there). A cookie without one, or whose row was ended, counts as signed out.
    #[serde(default)]
    pub session_id: String,
    /// Subject at the provider.
    pub sub: String,
    /// Display name.
    pub name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// When the session ends unless renewed (unix seconds; sliding).
    pub expires: i64,
    /// The access token for the protected API.
    pub access_token: AccessToken,
    /// When the access token expires (unix seconds), if known.
    pub access_token_expires_at: Option<i64>,
    /// When the access token was obtained (unix seconds).
    #[serde(default)]
    pub access_token_obtained_at: i64,
    /// The refresh token, if the provider issued one.
    pub refresh_token: Option<RefreshToken>,
    /// The raw ID token, for `id_token_hint` at logout.
    pub id_token: Option<RawIdToken>,
    /// Set when refreshing failed: the user must sign in again.
    pub error: Option<String>,
    /// The ID token's `amr` (authentication methods), empty when it had none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The ID token's `acr` (authentication context class), if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

impl UserSession {
    /// A session for freshly obtained tokens.
    pub fn new(tokens: Tokens, session_id: String, expires: i64, now: i64) -> Self {
        Self {
            session_id,
            access_token_obtained_at: now,
            sub: tokens.sub,
            name: tokens.name,
            email: tokens.email,
            expires,
            access_token: tokens.access_token,
            access_token_expires_at: tokens.access_token_expires_at,
            refresh_token: tokens.refresh_token,
            id_token: tokens.id_token,
            error: None,
            amr: tokens.amr,
            acr: tokens.acr,
        }
    }

    /// Takes refreshed tokens (a refresh answer may omit the ID token, profile or refresh token).
    pub fn apply_refresh(&mut self, tokens: Tokens, now: i64) {
        self.access_token = tokens.access_token;
        self.access_token_obtained_at = now;
        self.access_token_expires_at = tokens.access_token_expires_at;
        if tokens.refresh_token.is_some() {
            self.refresh_token = tokens.refresh_token;
        }
        if tokens.id_token.is_some() {
            self.id_token = tokens.id_token;
            // A refreshed ID token states how the user authenticated again (OIDC Core §12.2).
            self.amr = tokens.amr;
            self.acr = tokens.acr;
        }
        if tokens.name.is_some() {
            self.name = tokens.name;
        }
        if tokens.email.is_some() {
            self.email = tokens.email;
        }
        self.error = None;
    }

    /// Whether the access token should be refreshed before use: it expires within
    /// `max_margin_secs` of `now`, or within a quarter of its lifetime for short-lived tokens
    /// (so a token is not refreshed on every request right after it was obtained).
    pub fn access_token_expiring(&self, now: i64, max_margin_secs: i64) -> bool {
        self.access_token_expires_at.is_some_and(|at| {
            let lifetime = (at - self.access_token_obtained_at).max(0);
            at <= now + max_margin_secs.min(lifetime / 4)
        })
    }

    /// The body of `/api/auth/session`, as NextAuth gives it, with two fields NextAuth's
    /// `session` does not have, next to `user` and `expires`, each present only when the ID
    /// token had the claim: `amr` (an array of strings: how the user authenticated, e.g.
    /// `["pwd", "otp"]`) and `acr` (a string: the authentication context class satisfied).
    pub fn nextauth_json(&self) -> serde_json::Value {
        let mut session = serde_json::json!({
            "user": { "name": self.name, "email": self.email },
            "expires": iso8601(self.expires),
        });
        if !self.amr.is_empty() {
            session["amr"] = serde_json::json!(self.amr);
        }
        if let Some(acr) = &self.acr {
            session["acr"] = serde_json::Value::String(acr.clone());
        }
        if let Some(error) = &self.error {
            session["error"] = serde_json::Value::String(error.clone());
        }
        session
    }

    /// What NextAuth's `useSession()` returns for this session.
    pub fn use_session_json(&self) -> serde_json::Value {
        serde_json::json!({ "data": self.nextauth_json(), "status": "authenticated" })
    }
}

/// `2026-12-27T06:27:38.000Z`, as NextAuth formats `expires`.
pub fn iso8601(unix_secs: i64) -> String {
    chrono::DateTime::from_timestamp(unix_secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The current user, if the session holds a valid, unexpired one. A session that cannot be
/// read (tampered, foreign key, old format) counts as signed out.
pub fn current_user(session: &Session, now: i64) -> Option<UserSession> {
    let user: UserSession = session.get(USER_KEY).ok().flatten()?;
    (user.expires > now).then_some(user)
}

/// Budget for the session's serialized form. Encryption and base64 make the cookie about 4/3
/// of it, and browsers drop cookies over 4096 bytes without a word, which would look like a
/// sign-in that does not stick.
const MAX_SERIALIZED_USER_BYTES: usize = 2600;

/// The session as it fits in a cookie. What is dropped first costs least: the ID token (logout
/// then goes without `id_token_hint`, and the provider asks the user to confirm), then the
/// refresh token (the user signs in again, usually without a prompt, when the access token
/// expires). An error if even the access token alone is too big.
pub fn fit_in_cookie(user: &UserSession) -> Result<UserSession, anyhow::Error> {
    let size = |user: &UserSession| {
        // Stored as a JSON string inside the session's JSON map: quotes get escaped.
        serde_json::to_string(&serde_json::to_string(user).unwrap_or_default())
            .map(|s| s.len())
            .unwrap_or(usize::MAX)
    };
    let mut fitted = user.clone();
    if size(&fitted) <= MAX_SERIALIZED_USER_BYTES {
        return Ok(fitted);
    }
    fitted.id_token = None;
    if size(&fitted) <= MAX_SERIALIZED_USER_BYTES {
        tracing::info!("tokens too large for the session cookie: the ID token is not kept");
        return Ok(fitted);
    }
    fitted.refresh_token = None;
    if size(&fitted) <= MAX_SERIALIZED_USER_BYTES {
        tracing::info!("tokens too large for the session cookie: only the access token is kept");
        return Ok(fitted);
    }
    anyhow::bail!(
        "the provider's access token is too large for a cookie session ({} bytes)",
        size(&fitted)
    )
}

/// Stores the user (replacing any previous one).
pub fn store_user(session: &Session, user: &UserSession) -> Result<(), anyhow::Error> {
    let user = fit_in_cookie(user)?;
    session
        .insert(USER_KEY, &user)
        .map_err(|e| anyhow::anyhow!("cannot store the session: {e}"))
}

/// Starts a fresh session for a newly signed-in user: nothing from before sign-in survives.
pub fn sign_in(session: &Session, user: &UserSession) -> Result<(), anyhow::Error> {
    // Not `purge`: a purged session cannot be written to in the same request.
    session.clear();
    session.renew();
    store_user(session, user)
}

/// Ends the session.
pub fn sign_out(session: &Session) {
    session.purge();
}

/// The session's CSRF token, created on first use.
pub fn csrf_token(session: &Session) -> String {
    if let Ok(Some(token)) = session.get::<String>(CSRF_KEY) {
        return token;
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    // A failure here only means the next form post fails its CSRF check.
    if let Err(error) = session.insert(CSRF_KEY, &token) {
        tracing::warn!(%error, "cannot store the CSRF token");
    }
    token
}

/// Whether `submitted` is the session's CSRF token (constant time).
pub fn csrf_valid(session: &Session, submitted: Option<&str>) -> bool {
    let Some(submitted) = submitted else {
        return false;
    };
    match session.get::<String>(CSRF_KEY) {
        Ok(Some(expected)) => {
            !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserSession {
        UserSession {
            session_id: "session-1".into(),
            sub: "u1".into(),
            name: Some("Alice Example".into()),
            email: Some("alice@example.com".into()),
            expires: 1_798_354_058,
            access_token: AccessToken::new("at"),
            access_token_expires_at: Some(100),
            access_token_obtained_at: 0,
            refresh_token: Some(RefreshToken::new("rt")),
            id_token: Some(RawIdToken::new("idt")),
            error: None,
            amr: Vec::new(),
            acr: None,
        }
    }

    #[test]
    fn session_json_has_nextauths_shape_and_no_tokens() {
        let json = user().use_session_json();
        assert_eq!(
            json,
            serde_json::json!({
                "data": {
                    "user": { "name": "Alice Example", "email": "alice@example.com" },
                    "expires": "2026-12-27T06:47:38.000Z",
                },
                "status": "authenticated",
            })
        );
        let text = json.to_string();
        assert!(!text.contains("\"at\"") && !text.contains("rt") && !text.contains("idt"));
        assert!(!text.contains("session-1"));
    }

    #[test]
    fn amr_and_acr_are_shown_beside_nextauths_fields_when_the_id_token_had_them() {
        let mut user = user();
        user.amr = vec!["pwd".into(), "otp".into()];
        user.acr = Some("urn:example:mfa".into());
        let json = user.use_session_json();
        assert_eq!(json["data"]["amr"], serde_json::json!(["pwd", "otp"]));
        assert_eq!(json["data"]["acr"], "urn:example:mfa");
        assert_eq!(json["data"]["user"]["email"], "alice@example.com");
        // A session stored before these fields existed still reads.
        let mut stored = serde_json::to_value(user).unwrap();
        stored.as_object_mut().unwrap().remove("amr");
        stored.as_object_mut().unwrap().remove("acr");
        let old: UserSession = serde_json::from_value(stored).unwrap();
        assert!(old.amr.is_empty() && old.acr.is_none());
    }

    #[test]
    fn refresh_error_is_reported_in_the_session() {
        let mut user = user();
        user.error = Some(REFRESH_ERROR.into());
        assert_eq!(user.nextauth_json()["error"], REFRESH_ERROR);
    }

    #[test]
    fn refresh_keeps_what_the_answer_omits() {
        let mut user = user();
        user.error = Some(REFRESH_ERROR.into());
        user.apply_refresh(
            Tokens {
                sub: "u1".into(),
                name: None,
                email: None,
                access_token: AccessToken::new("at2"),
                access_token_expires_at: Some(200),
                refresh_token: None,
                id_token: None,
                sid: None,
                amr: Vec::new(),
                acr: None,
            },
            150,
        );
        assert_eq!(user.access_token.secret(), "at2");
        assert_eq!(user.access_token_obtained_at, 150);
        assert_eq!(user.access_token_expires_at, Some(200));
        assert_eq!(user.refresh_token.as_ref().map(|t| t.secret()), Some("rt"));
        assert_eq!(user.id_token.as_ref().map(|t| t.as_str()), Some("idt"));
        assert_eq!(user.name.as_deref(), Some("Alice Example"));
        assert_eq!(user.error, None);
    }

    #[test]
    fn oversized_sessions_drop_the_id_token_then_the_refresh_token() {
        let mut user = user();
        assert_eq!(fit_in_cookie(&user).unwrap(), user);

        user.id_token = Some(RawIdToken::new("x".repeat(2000)));
        user.access_token = AccessToken::new("a".repeat(500));
        let fitted = fit_in_cookie(&user).unwrap();
        assert_eq!(fitted.id_token, None);
        assert_eq!(fitted.access_token, user.access_token);

        user.refresh_token = Some(RefreshToken::new("r".repeat(2200)));
        let fitted = fit_in_cookie(&user).unwrap();
        assert_eq!((fitted.id_token, fitted.refresh_token), (None, None));
        assert_eq!(fitted.access_token, user.access_token);

        user.access_token = AccessToken::new("a".repeat(3000));
        assert!(fit_in_cookie(&user).is_err());
    }

    #[test]
    fn expiry_margin() {
        let mut user = user();
        assert!(user.access_token_expiring(95, 10));
        assert!(!user.access_token_expiring(80, 10));
        // A 4-second token is refreshed only in its last second.
        user.access_token_obtained_at = 96;
        assert!(!user.access_token_expiring(98, 10));
        assert!(user.access_token_expiring(99, 10));
        user.access_token_expires_at = None;
        assert!(!user.access_token_expiring(1000, 10));
    }

    #[test]
    fn debug_output_shows_no_token_or_verifier() {
        let secrets = ["access-secret", "refresh-secret", "id.token.secret"];
        let mut user = user();
        user.access_token = AccessToken::new(secrets[0]);
        user.refresh_token = Some(RefreshToken::new(secrets[1]));
        user.id_token = Some(RawIdToken::new(secrets[2]));
        let tokens = Tokens {
            sub: "u1".into(),
            name: None,
            email: None,
            access_token: user.access_token.clone(),
            access_token_expires_at: None,
            refresh_token: user.refresh_token.clone(),
            id_token: user.id_token.clone(),
            sid: None,
            amr: Vec::new(),
            acr: None,
        };
        let verifier = oidc_core::pkce::CodeVerifier::generate();
        let pending = crate::flow::PendingSignIn {
            provider_id: "provider".into(),
            state: oidc_core::types::State::generate(),
            nonce: oidc_core::types::Nonce::generate(),
            pkce_verifier: oidc_core::pkce::CodeVerifier::parse(verifier.secret().to_owned())
                .unwrap(),
            after_signin: "/".into(),
            created_at: 0,
        };
        for debug in [
            format!("{user:?}"),
            format!("{tokens:?}"),
            format!("{pending:?}"),
        ] {
            for secret in secrets.iter().chain([&verifier.secret()]) {
                assert!(!debug.contains(secret), "{secret} in {debug}");
            }
            assert!(debug.contains("[redacted]"), "{debug}");
        }
        assert!(format!("{user:?}").contains("alice@example.com"));
    }
}
