//! ID-token, userinfo and logout-token claims (OpenID Connect Core 1.0 §2, §5.1, §5.3.2;
//! OpenID Connect Back-Channel Logout 1.0 §2.4).
//!
//! Absent claims are left out when serializing, never written as `null`; a `null` received from
//! another implementation reads as absent.

use serde::{Deserialize, Serialize};

use crate::encoding::random_b64url;
use crate::types::{ClientId, IssuerUrl, Nonce, Subject};

/// The `aud` claim: one audience or several (RFC 7519 §4.1.3, OpenID Connect Core 1.0 §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience, serialized as a string.
    Single(ClientId),
    /// Several audiences, serialized as an array.
    Multiple(Vec<ClientId>),
}

impl Audience {
    /// Whether `client_id` is one of the audiences.
    pub fn contains(&self, client_id: &ClientId) -> bool {
        self.iter().any(|a| a == client_id)
    }

    /// The audiences.
    pub fn iter(&self) -> impl Iterator<Item = &ClientId> {
        match self {
            Self::Single(one) => std::slice::from_ref(one).iter(),
            Self::Multiple(many) => many.iter(),
        }
    }

    /// Number of audiences.
    pub fn len(&self) -> usize {
        match self {
            Self::Single(_) => 1,
            Self::Multiple(many) => many.len(),
        }
    }

    /// Whether there is no audience at all (an empty array).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<ClientId> for Audience {
    fn from(client_id: ClientId) -> Self {
        Self::Single(client_id)
    }
}

/// The standard claims about the end user released by the `profile` and `email` scopes
/// (OpenID Connect Core 1.0 §5.1, §5.4). All optional; absent ones are not serialized.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandardClaims {
    /// Full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Given (first) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family (last) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// The short name the user goes by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the provider verified the e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// When the information was last updated, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

impl StandardClaims {
    /// Whether no claim is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The claims of an ID token (OpenID Connect Core 1.0 §2, §3.1.3.6 for `at_hash`, §5.1 for the
/// profile claims).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer identifier, exactly the provider's issuer URL.
    pub iss: IssuerUrl,
    /// Subject: the end user's identifier at the issuer.
    pub sub: Subject,
    /// The client(s) the token is meant for.
    pub aud: Audience,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// When the end user authenticated, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The `nonce` of the authentication request, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<Nonce>,
    /// Access-token hash (see [`crate::jose::at_hash`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// Authorized party: the client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<ClientId>,
    /// Authentication context class reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Authentication method references (RFC 8176), e.g. `["pwd"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// Session id at the provider (OpenID Connect Front- and Back-Channel Logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Profile and e-mail claims released with the token.
    #[serde(flatten)]
    pub profile: StandardClaims,
}

impl IdTokenClaims {
    /// Claims with the required fields set and every optional one absent.
    pub fn new(iss: IssuerUrl, sub: Subject, aud: Audience, iat: i64, exp: i64) -> Self {
        Self {
            iss,
            sub,
            aud,
            exp,
            iat,
            auth_time: None,
            nonce: None,
            at_hash: None,
            azp: None,
            acr: None,
            amr: None,
            sid: None,
            profile: StandardClaims::default(),
        }
    }
}

/// The userinfo response (OpenID Connect Core 1.0 §5.3.2): `sub` and the released standard
/// claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Subject, the same as the ID token's.
    pub sub: Subject,
    /// The released claims.
    #[serde(flatten)]
    pub claims: StandardClaims,
}

/// The member of a logout token's `events` claim that marks it as a logout token (OpenID Connect
/// Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The claims of a logout token (OpenID Connect Back-Channel Logout 1.0 §2.4), which a provider
/// posts to a relying party's `backchannel_logout_uri` to end a session.
///
/// A logout token has no `nonce` (that tells it apart from an ID token) and names the session
/// by `sub`, `sid` or both. Build one with [`LogoutTokenClaims::new`], sign it with
/// `SigningKey::sign_logout_token` and verify it with `LogoutTokenVerifier` (feature `jose`), or
/// check the claims of a token verified elsewhere with [`crate::logout::check_logout_claims`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutTokenClaims {
    /// Issuer identifier, exactly the provider's issuer URL.
    pub iss: IssuerUrl,
    /// The end user whose sessions end (absent: the session named by `sid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<Subject>,
    /// The client(s) the token is meant for.
    pub aud: Audience,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// Expiry, seconds since the Unix epoch (required since the 1.0 final specification; the
    /// specification recommends at most two minutes after `iat`).
    pub exp: i64,
    /// Unique token identifier, for the relying party's replay check.
    pub jti: String,
    /// A JSON object whose member [`BACKCHANNEL_LOGOUT_EVENT`] holds a JSON object (`{}`).
    pub events: serde_json::Map<String, serde_json::Value>,
    /// The session id at the provider (OpenID Connect Front-Channel Logout 1.0 §3), as given
    /// in the ID tokens of that session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl LogoutTokenClaims {
    /// Claims for a token issued at `iat`, valid until `exp`, ending the sessions of `sub`, the
    /// session `sid`, or both; `jti` is a fresh random value (128 bits) and `events` holds the
    /// back-channel logout event with `{}`. At least one of `sub` and `sid` must be given, or
    /// signing refuses the claims.
    pub fn new(
        iss: IssuerUrl,
        aud: Audience,
        sub: Option<Subject>,
        sid: Option<String>,
        iat: i64,
        exp: i64,
    ) -> Self {
        let mut events = serde_json::Map::new();
        events.insert(
            BACKCHANNEL_LOGOUT_EVENT.to_owned(),
            serde_json::Value::Object(serde_json::Map::new()),
        );
        Self {
            iss,
            sub,
            aud,
            iat,
            exp,
            jti: random_b64url(16),
            events,
            sid,
        }
    }

    /// Whether `events` holds the back-channel logout event with a JSON object as its value.
    pub fn has_logout_event(&self) -> bool {
        self.events
            .get(BACKCHANNEL_LOGOUT_EVENT)
            .is_some_and(serde_json::Value::is_object)
    }
}
