//! OAuth 2.0 error codes and responses: RFC 6749 §4.1.2.1 (authorization endpoint), §5.2 (token
//! endpoint), RFC 6750 §3.1 (protected resources), RFC 7009, OpenID Connect Core 1.0 §3.1.2.6,
//! and the authorization response with `iss` (RFC 9207).
//!
//! ```
//! use oidc_core::error::{AuthorizationError, ErrorCode, ErrorResponse};
//! use oidc_core::types::{IssuerUrl, RedirectUri, State};
//!
//! // Token endpoint: JSON body and HTTP status.
//! let body = ErrorResponse::new(ErrorCode::InvalidGrant).with_description("code expired");
//! assert_eq!(body.http_status(), 400);
//! assert_eq!(
//!     serde_json::to_string(&body)?,
//!     r#"{"error":"invalid_grant","error_description":"code expired"}"#
//! );
//!
//! // Authorization endpoint: redirect back with the error, the state and the issuer.
//! let issuer = IssuerUrl::parse("https://id.example.com")?;
//! let redirect = RedirectUri::parse("https://app.example.com/cb")?;
//! let url = AuthorizationError::new(ErrorCode::AccessDenied, Some(State::new("xyz")), issuer)
//!     .redirect_url(&redirect);
//! assert_eq!(
//!     url.as_str(),
//!     "https://app.example.com/cb?error=access_denied&state=xyz&iss=https%3A%2F%2Fid.example.com"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::types::{AuthorizationCode, IssuerUrl, RedirectUri, State};

/// An OAuth 2.0 / OpenID Connect error code (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; OpenID
/// Connect Core 1.0 §3.1.2.6). Each code knows the HTTP status it is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is missing a parameter, repeats one or is otherwise malformed.
    InvalidRequest,
    /// Client authentication failed (answered with 401 and `WWW-Authenticate`).
    InvalidClient,
    /// The grant (code, refresh token) or PKCE verifier is invalid, expired, revoked or issued
    /// to another client, or the redirect URI does not match.
    InvalidGrant,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// The scope is invalid, unknown or exceeds the granted one.
    InvalidScope,
    /// The resource owner or the provider denied the request.
    AccessDenied,
    /// The response type is not supported.
    UnsupportedResponseType,
    /// The provider met an unexpected condition.
    ServerError,
    /// The provider is temporarily overloaded or in maintenance.
    TemporarilyUnavailable,
    /// `prompt=none` but the end user is not signed in (OpenID Connect Core 1.0 §3.1.2.6).
    LoginRequired,
    /// `prompt=none` but consent is needed.
    ConsentRequired,
    /// `prompt=none` but some interaction is needed.
    InteractionRequired,
    /// The `request_uri` is invalid.
    InvalidRequestUri,
    /// The `request` object is invalid.
    InvalidRequestObject,
    /// The `request` parameter is not supported.
    RequestNotSupported,
    /// The `request_uri` parameter is not supported.
    RequestUriNotSupported,
    /// The access token is missing, malformed, expired or revoked (RFC 6750 §3.1).
    InvalidToken,
    /// The access token lacks a required scope (RFC 6750 §3.1).
    InsufficientScope,
    /// The token type is not supported for revocation (RFC 7009 §2.2.1).
    UnsupportedTokenType,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 20] = [
        Self::InvalidRequest,
        Self::InvalidClient,
        Self::InvalidGrant,
        Self::UnauthorizedClient,
        Self::UnsupportedGrantType,
        Self::InvalidScope,
        Self::AccessDenied,
        Self::UnsupportedResponseType,
        Self::ServerError,
        Self::TemporarilyUnavailable,
        Self::LoginRequired,
        Self::ConsentRequired,
        Self::InteractionRequired,
        Self::InvalidRequestUri,
        Self::InvalidRequestObject,
        Self::RequestNotSupported,
        Self::RequestUriNotSupported,
        Self::InvalidToken,
        Self::InsufficientScope,
        Self::UnsupportedTokenType,
    ];

    /// The code on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::InvalidRequestUri => "invalid_request_uri",
            Self::InvalidRequestObject => "invalid_request_object",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
        }
    }

    /// Parses a code from the wire.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == value)
    }

    /// The HTTP status of a JSON error response with this code: 401 for `invalid_client` (RFC
    /// 6749 §5.2) and `invalid_token` (RFC 6750 §3.1), 403 for `insufficient_scope` and
    /// `access_denied`, 500 for `server_error`, 503 for `temporarily_unavailable`, 400 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidToken => 401,
            Self::InsufficientScope | Self::AccessDenied => 403,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = UnknownErrorCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or(UnknownErrorCode)
    }
}

/// A string that is not a known [`ErrorCode`] (RFC 6749 §4.1.2.1, §5.2 list the codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code")]
pub struct UnknownErrorCode;

/// Keeps only the characters RFC 6749 §5.2 allows in `error_description`
/// (`%x20-21 / %x23-5B / %x5D-7E`): a description can never break a header or JSON string.
fn sanitize_description(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => ' ',
        })
        .collect()
}

/// An error response body (RFC 6749 §5.2), also the parameters of an error redirect (§4.1.2.1)
/// and of a `WWW-Authenticate: Bearer` challenge (RFC 6750 §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error code.
    pub error: ErrorCode,
    /// Human-readable text for the developer (ASCII, no `"` or `\`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// A page explaining the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl ErrorResponse {
    /// An error with no description.
    pub fn new(error: ErrorCode) -> Self {
        Self {
            error,
            error_description: None,
            error_uri: None,
        }
    }

    /// Sets the description, replacing characters RFC 6749 §5.2 forbids.
    pub fn with_description(mut self, description: impl AsRef<str>) -> Self {
        self.error_description = Some(sanitize_description(description.as_ref()));
        self
    }

    /// The HTTP status to answer with ([`ErrorCode::http_status`]).
    pub fn http_status(&self) -> u16 {
        self.error.http_status()
    }

    /// The value of a `WWW-Authenticate` header for a protected resource (RFC 6750 §3):
    /// `Bearer error="invalid_token", error_description="..."`.
    pub fn bearer_challenge(&self) -> String {
        self.challenge(None, None)
    }

    /// [`bearer_challenge`](Self::bearer_challenge) with the `realm` of the resource and, for
    /// `insufficient_scope`, the `scope` the request needs (RFC 6750 §3):
    /// `Bearer realm="api", error="insufficient_scope", scope="profile"`.
    pub fn bearer_challenge_in(&self, realm: &str, scope: Option<&str>) -> String {
        self.challenge(Some(realm), scope)
    }

    fn challenge(&self, realm: Option<&str>, scope: Option<&str>) -> String {
        let mut attributes = Vec::with_capacity(4);
        if let Some(realm) = realm {
            attributes.push(("realm", realm));
        }
        attributes.push(("error", self.error.as_str()));
        if let Some(d) = &self.error_description {
            attributes.push(("error_description", d));
        }
        if let Some(scope) = scope {
            attributes.push(("scope", scope));
        }
        let attributes: Vec<String> = attributes
            .into_iter()
            .map(|(name, value)| format!("{name}=\"{}\"", sanitize_description(value)))
            .collect();
        format!("Bearer {}", attributes.join(", "))
    }
}

impl From<ErrorCode> for ErrorResponse {
    fn from(error: ErrorCode) -> Self {
        Self::new(error)
    }
}

impl fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.error.as_str())?;
        if let Some(d) = &self.error_description {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ErrorResponse {}

/// A successful authorization response (RFC 6749 §4.1.2) with the issuer (RFC 9207 §2): builds
/// the redirect to the client.
#[derive(Debug)]
pub struct AuthorizationResponse<'a> {
    /// The authorization code.
    pub code: &'a AuthorizationCode,
    /// The client's `state`, returned unchanged.
    pub state: Option<&'a State>,
    /// The provider's issuer identifier.
    pub iss: &'a IssuerUrl,
}

impl AuthorizationResponse<'_> {
    /// The redirect URI with `code`, `state` and `iss` added to its query (existing query
    /// parameters are kept, RFC 6749 §3.1.2).
    pub fn redirect_url(&self, redirect_uri: &RedirectUri) -> Url {
        let mut url = redirect_uri.url().clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("code", self.code.secret());
            if let Some(state) = self.state {
                q.append_pair("state", state.as_str());
            }
            q.append_pair("iss", self.iss.as_str());
        }
        url
    }
}

/// An authorization error sent back to the client by redirect (RFC 6749 §4.1.2.1, OpenID Connect
/// Core 1.0 §3.1.2.6) with the issuer (RFC 9207 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationError {
    /// The error code.
    pub error: ErrorCode,
    /// Human-readable text for the developer.
    pub error_description: Option<String>,
    /// The client's `state`, returned unchanged.
    pub state: Option<State>,
    /// The provider's issuer identifier.
    pub iss: IssuerUrl,
}

impl AuthorizationError {
    /// An error without description.
    pub fn new(error: ErrorCode, state: Option<State>, iss: IssuerUrl) -> Self {
        Self {
            error,
            error_description: None,
            state,
            iss,
        }
    }

    /// Sets the description, replacing characters RFC 6749 §5.2 forbids.
    pub fn with_description(mut self, description: impl AsRef<str>) -> Self {
        self.error_description = Some(sanitize_description(description.as_ref()));
        self
    }

    /// The redirect URI with `error`, `error_description`, `state` and `iss` added to its query.
    pub fn redirect_url(&self, redirect_uri: &RedirectUri) -> Url {
        let mut url = redirect_uri.url().clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("error", self.error.as_str());
            if let Some(d) = &self.error_description {
                q.append_pair("error_description", d);
            }
            if let Some(state) = &self.state {
                q.append_pair("state", state.as_str());
            }
            q.append_pair("iss", self.iss.as_str());
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_name_the_realm_and_the_missing_scope() {
        let expired = ErrorResponse::new(ErrorCode::InvalidToken).with_description("expired");
        assert_eq!(
            expired.bearer_challenge(),
            "Bearer error=\"invalid_token\", error_description=\"expired\""
        );
        assert_eq!(
            expired.bearer_challenge_in("oauth", None),
            "Bearer realm=\"oauth\", error=\"invalid_token\", error_description=\"expired\""
        );
        assert_eq!(
            ErrorResponse::new(ErrorCode::InsufficientScope)
                .bearer_challenge_in("api \"x\"", Some("profile")),
            "Bearer realm=\"api 'x'\", error=\"insufficient_scope\", scope=\"profile\""
        );
    }
}
