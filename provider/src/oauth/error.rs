//! How the JSON endpoints answer failures: RFC 6749 §5.2 bodies for the token, revocation and
//! introspection endpoints, RFC 6750 §3 challenges for bearer-token resources. Causes of
//! unexpected failures are logged, never shown.

use std::borrow::Cow;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use oidc_core::error::{ErrorCode, ErrorResponse};
use oidc_core::token::TokenRequestError;

use crate::storage::StorageError;

use super::clients::{AuthenticateError, ClientAuthError};
use super::params::ParamsError;

/// The realm named in the provider's `WWW-Authenticate` challenges.
const REALM: &str = "oauth";

/// A failure at an endpoint that speaks RFC 6749 §5.2 JSON.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// A protocol error with its code and a description for the client's developer.
    #[error("{}: {description}", code.as_str())]
    Protocol {
        code: ErrorCode,
        description: Cow<'static, str>,
    },
    /// Client authentication failed: 401 with a `WWW-Authenticate` challenge (RFC 6749 §5.2).
    #[error("invalid_client: {0}")]
    InvalidClient(#[from] ClientAuthError),
    /// Anything else: 500, logged.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl OAuthError {
    /// A protocol error.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self::Protocol {
            code,
            description: description.into(),
        }
    }

    /// `invalid_request` with a description.
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_grant` with a description.
    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }
}

impl From<ParamsError> for OAuthError {
    fn from(e: ParamsError) -> Self {
        Self::invalid_request(e.to_string())
    }
}

impl From<TokenRequestError> for OAuthError {
    fn from(e: TokenRequestError) -> Self {
        Self::new(e.error_code(), e.to_string())
    }
}

impl From<StorageError> for OAuthError {
    fn from(e: StorageError) -> Self {
        Self::Unexpected(e.into())
    }
}

impl From<diesel::result::Error> for OAuthError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Unexpected(e.into())
    }
}

impl From<AuthenticateError> for OAuthError {
    fn from(e: AuthenticateError) -> Self {
        match e {
            AuthenticateError::Client(e) => e.into(),
            AuthenticateError::Storage(e) => e.into(),
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Protocol { code, .. } => {
                StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
            }
            Self::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (code, description): (ErrorCode, Cow<'_, str>) = match self {
            Self::Protocol { code, description } => (*code, description.clone()),
            Self::InvalidClient(e) => (ErrorCode::InvalidClient, e.to_string().into()),
            Self::Unexpected(e) => {
                tracing::error!(error = ?e, "unexpected failure at an OAuth endpoint");
                (
                    ErrorCode::ServerError,
                    "the server could not complete the request".into(),
                )
            }
        };
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        if matches!(self, Self::InvalidClient(_)) {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""),
            ));
        }
        response.json(ErrorResponse::new(code).with_description(description))
    }
}

/// A failure at a bearer-token protected resource (userinfo, the profile API), RFC 6750 §3.
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// No usable token: missing, malformed, unknown, expired or revoked.
    #[error("invalid_token: {0}")]
    InvalidToken(&'static str),
    /// The token is valid but lacks a scope the resource needs.
    #[error("insufficient_scope: needs {0}")]
    InsufficientScope(&'static str),
    /// The request is malformed (e.g. a token sent two ways at once).
    #[error("invalid_request: {0}")]
    InvalidRequest(Cow<'static, str>),
    /// Anything else: 500, logged.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StorageError> for BearerError {
    fn from(e: StorageError) -> Self {
        Self::Unexpected(e.into())
    }
}

impl From<diesel::result::Error> for BearerError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Unexpected(e.into())
    }
}

impl From<ParamsError> for BearerError {
    fn from(e: ParamsError) -> Self {
        Self::InvalidRequest(e.to_string().into())
    }
}

impl ResponseError for BearerError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // The challenge repeats the description of a bad token only: the others say enough by
        // their code and scope.
        let (body, challenge, scope) = match self {
            Self::InvalidToken(d) => {
                let error = ErrorResponse::new(ErrorCode::InvalidToken).with_description(d);
                (error.clone(), error, None)
            }
            Self::InsufficientScope(scope) => (
                ErrorResponse::new(ErrorCode::InsufficientScope)
                    .with_description(format!("the access token lacks the {scope} scope")),
                ErrorResponse::new(ErrorCode::InsufficientScope),
                Some(*scope),
            ),
            Self::InvalidRequest(d) => (
                ErrorResponse::new(ErrorCode::InvalidRequest).with_description(d),
                ErrorResponse::new(ErrorCode::InvalidRequest),
                None,
            ),
            Self::Unexpected(e) => {
                tracing::error!(error = ?e, "unexpected failure at a protected resource");
                return HttpResponse::InternalServerError()
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .json(
                        ErrorResponse::new(ErrorCode::ServerError)
                            .with_description("the server could not complete the request"),
                    );
            }
        };
        HttpResponse::build(self.status_code())
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((
                header::WWW_AUTHENTICATE,
                challenge.bearer_challenge_in(REALM, scope),
            ))
            .json(body)
    }
}
