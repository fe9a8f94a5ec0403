//! Token endpoint requests and responses (RFC 6749 §4.1.3, §5.1, §6; OpenID Connect Core 1.0
//! §3.1.3.3).
//!
//! ```
//! use oidc_core::error::ErrorCode;
//! use oidc_core::token::{TokenRequest, TokenResponse};
//! use oidc_core::types::{AccessToken, Scopes};
//!
//! let body = b"grant_type=refresh_token&refresh_token=r1&scope=openid";
//! let TokenRequest::RefreshToken { refresh_token, scope, .. } = TokenRequest::from_form(body)?
//! else {
//!     unreachable!()
//! };
//! assert_eq!(refresh_token.secret(), "r1");
//! assert_eq!(scope, Some(Scopes::parse("openid")?));
//!
//! let err = TokenRequest::from_form(b"grant_type=password").unwrap_err();
//! assert_eq!(err.error_code(), ErrorCode::UnsupportedGrantType);
//!
//! let mut response = TokenResponse::bearer(AccessToken::generate());
//! response.expires_in = Some(3600);
//! assert!(!serde_json::to_string(&response)?.contains("null"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ErrorCode;
use crate::pkce::CodeVerifier;
use crate::types::{
    AccessToken, AuthorizationCode, ClientId, ClientSecret, RedirectUri, RefreshToken, Scopes,
};

/// The `token_type` of an access token (RFC 6749 §7.1). Only bearer tokens (RFC 6750) exist
/// here; the name is read case-insensitively, as RFC 6749 §5.1 requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TokenType {
    /// `Bearer` (RFC 6750).
    #[default]
    Bearer,
}

impl TokenType {
    /// The name on the wire.
    pub fn as_str(&self) -> &'static str {
        "Bearer"
    }
}

impl Serialize for TokenType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TokenType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.eq_ignore_ascii_case("bearer") {
            Ok(Self::Bearer)
        } else {
            Err(serde::de::Error::custom(format!(
                "unsupported token_type {s:?}"
            )))
        }
    }
}

/// A successful token response (RFC 6749 §5.1, OpenID Connect Core 1.0 §3.1.3.3). Absent
/// fields are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: AccessToken,
    /// Always `Bearer`.
    pub token_type: TokenType,
    /// Lifetime of the access token in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// A refresh token, when the grant allows one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// The signed ID token (compact JWS), for `openid` requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The granted scopes, when they differ from the requested ones (or always, as a courtesy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scopes>,
}

impl TokenResponse {
    /// A bearer token response with only the access token set.
    pub fn bearer(access_token: AccessToken) -> Self {
        Self {
            access_token,
            token_type: TokenType::Bearer,
            expires_in: None,
            refresh_token: None,
            id_token: None,
            scope: None,
        }
    }
}

/// A token request (RFC 6749 §4.1.3 and §6), tagged by `grant_type`.
///
/// Read a request body with [`TokenRequest::from_form`], which tells a missing parameter
/// (`invalid_request`) from an unknown grant type (`unsupported_grant_type`). `Serialize` gives
/// the form a client sends (with `serde_urlencoded`).
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "grant_type", rename_all = "snake_case")]
pub enum TokenRequest {
    /// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5).
    AuthorizationCode {
        /// The authorization code.
        code: AuthorizationCode,
        /// The redirect URI of the authorization request, byte for byte.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        redirect_uri: Option<RedirectUri>,
        /// The PKCE verifier.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code_verifier: Option<CodeVerifier>,
        /// The client id (required for public clients, optional with HTTP Basic auth).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<ClientId>,
        /// The client secret for `client_secret_post`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_secret: Option<ClientSecret>,
    },
    /// `grant_type=refresh_token` (RFC 6749 §6).
    RefreshToken {
        /// The refresh token.
        refresh_token: RefreshToken,
        /// A narrower scope, at most the granted one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<Scopes>,
        /// The client id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<ClientId>,
        /// The client secret for `client_secret_post`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_secret: Option<ClientSecret>,
    },
}

/// Why a token request body was refused (RFC 6749 §3.2, §4.1.3, §6);
/// [`TokenRequestError::error_code`] gives the RFC 6749 §5.2 code to answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRequestError {
    /// The body is not UTF-8 `application/x-www-form-urlencoded`, or too large.
    #[error("the request body is not a valid form")]
    MalformedBody,
    /// A parameter appears more than once (RFC 6749 §3.2).
    #[error("parameter {0} is repeated")]
    RepeatedParameter(String),
    /// A required parameter is missing.
    #[error("missing parameter {0}")]
    MissingParameter(&'static str),
    /// A parameter has an invalid value.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `grant_type` is missing.
    #[error("missing grant_type")]
    MissingGrantType,
    /// `grant_type` names a grant this implementation does not support.
    #[error("unsupported grant_type {0:?}")]
    UnsupportedGrantType(String),
}

impl TokenRequestError {
    /// The error code of the response (RFC 6749 §5.2).
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::UnsupportedGrantType(_) => ErrorCode::UnsupportedGrantType,
            Self::InvalidParameter { name: "scope", .. } => ErrorCode::InvalidScope,
            _ => ErrorCode::InvalidRequest,
        }
    }
}

/// Largest token request body accepted by [`TokenRequest::from_form`], in bytes.
pub const MAX_FORM_LEN: usize = 64 * 1024;

/// A token request body decoded, its grant not yet read: a server authenticates the client
/// (RFC 6749 §3.2.1) before it answers about the grant, so it reads the credentials of the body
/// first and then [`TokenForm::into_request`].
///
/// ```
/// use oidc_core::token::{TokenForm, TokenRequest};
///
/// let form = TokenForm::parse(b"grant_type=authorization_code&client_id=app")?;
/// assert_eq!(form.client_id(), Some("app"));
/// assert!(form.into_request().is_err()); // no code
/// # Ok::<(), oidc_core::token::TokenRequestError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenForm(HashMap<String, String>);

impl TokenForm {
    /// Decodes an `application/x-www-form-urlencoded` body. Refuses non-UTF-8 or oversized
    /// bodies and repeated parameters; parameters sent without a value count as omitted
    /// (RFC 6749 §3.2).
    pub fn parse(body: &[u8]) -> Result<Self, TokenRequestError> {
        if body.len() > MAX_FORM_LEN || std::str::from_utf8(body).is_err() {
            return Err(TokenRequestError::MalformedBody);
        }
        let mut params: HashMap<String, String> = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(body) {
            // Percent-decoding is lossy: a replacement character means the bytes were not UTF-8.
            if name.contains('\u{FFFD}') || value.contains('\u{FFFD}') {
                return Err(TokenRequestError::MalformedBody);
            }
            let name = name.into_owned();
            if params.contains_key(&name) {
                return Err(TokenRequestError::RepeatedParameter(name));
            }
            params.insert(name, value.into_owned());
        }
        params.retain(|_, v| !v.is_empty());
        Ok(Self(params))
    }

    /// The `client_id` parameter as sent, not yet checked.
    pub fn client_id(&self) -> Option<&str> {
        self.0.get("client_id").map(String::as_str)
    }

    /// The `client_secret` parameter as sent (`client_secret_post`), not yet checked.
    pub fn client_secret(&self) -> Option<&str> {
        self.0.get("client_secret").map(String::as_str)
    }

    /// Reads the grant: tells a missing parameter (`invalid_request`) from an unknown grant type
    /// (`unsupported_grant_type`); ignores unknown parameters (RFC 6749 §3.2).
    pub fn into_request(self) -> Result<TokenRequest, TokenRequestError> {
        let mut params = self.0;
        let mut take = |name: &str| params.remove(name);
        let grant_type = take("grant_type").ok_or(TokenRequestError::MissingGrantType)?;
        let invalid = |name: &'static str| {
            move |e: &dyn std::fmt::Display| TokenRequestError::InvalidParameter {
                name,
                reason: e.to_string(),
            }
        };
        let client_id = take("client_id")
            .map(|v| ClientId::parse(&v).map_err(|e| invalid("client_id")(&e)))
            .transpose()?;
        let client_secret = take("client_secret")
            .map(|v| ClientSecret::parse(&v).map_err(|e| invalid("client_secret")(&e)))
            .transpose()?;
        match grant_type.as_str() {
            "authorization_code" => {
                let code = take("code").ok_or(TokenRequestError::MissingParameter("code"))?;
                let code = AuthorizationCode::parse(&code).map_err(|e| invalid("code")(&e))?;
                let redirect_uri = take("redirect_uri")
                    .map(|v| RedirectUri::parse(&v).map_err(|e| invalid("redirect_uri")(&e)))
                    .transpose()?;
                let code_verifier = take("code_verifier")
                    .map(|v| CodeVerifier::parse(v).map_err(|e| invalid("code_verifier")(&e)))
                    .transpose()?;
                Ok(TokenRequest::AuthorizationCode {
                    code,
                    redirect_uri,
                    code_verifier,
                    client_id,
                    client_secret,
                })
            }
            "refresh_token" => {
                let refresh_token = take("refresh_token")
                    .ok_or(TokenRequestError::MissingParameter("refresh_token"))?;
                let refresh_token = RefreshToken::parse(&refresh_token)
                    .map_err(|e| invalid("refresh_token")(&e))?;
                let scope = take("scope")
                    .map(|v| Scopes::parse(&v).map_err(|e| invalid("scope")(&e)))
                    .transpose()?;
                Ok(TokenRequest::RefreshToken {
                    refresh_token,
                    scope,
                    client_id,
                    client_secret,
                })
            }
            other => Err(TokenRequestError::UnsupportedGrantType(
                other.chars().take(64).collect(),
            )),
        }
    }
}

impl TokenRequest {
    /// Parses an `application/x-www-form-urlencoded` token request body: [`TokenForm::parse`],
    /// then [`TokenForm::into_request`].
    pub fn from_form(body: &[u8]) -> Result<Self, TokenRequestError> {
        TokenForm::parse(body)?.into_request()
    }

    /// The `client_id` parameter, if sent.
    pub fn client_id(&self) -> Option<&ClientId> {
        match self {
            Self::AuthorizationCode { client_id, .. } | Self::RefreshToken { client_id, .. } => {
                client_id.as_ref()
            }
        }
    }

    /// The `client_secret` parameter, if sent (`client_secret_post`).
    pub fn client_secret(&self) -> Option<&ClientSecret> {
        match self {
            Self::AuthorizationCode { client_secret, .. }
            | Self::RefreshToken { client_secret, .. } => client_secret.as_ref(),
        }
    }

    /// The `grant_type` value.
    pub fn grant_type(&self) -> &'static str {
        match self {
            Self::AuthorizationCode { .. } => "authorization_code",
            Self::RefreshToken { .. } => "refresh_token",
        }
    }
}
