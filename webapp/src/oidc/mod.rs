//! The relying party's side of the protocol, on the `openidconnect` crate, one job per file:
//! discovery with retry ([`discovery`]), the back-channel rewrite ([`backchannel`]), the client
//! ([`client`]), the authorization request ([`authorization`]), code exchange and refresh
//! ([`tokens`]), ID-token checks ([`id_token`]), userinfo ([`userinfo`]), sign-out at the
//! provider ([`logout`]) and back-channel logout tokens ([`logout_token`]).

mod authorization;
mod backchannel;
mod client;
mod discovery;
mod id_token;
mod logout;
mod logout_token;
mod tokens;
mod userinfo;

#[cfg(test)]
pub(crate) mod fixture;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use oidc_core::error::{ErrorCode, ErrorResponse};

use crate::config::Settings;

pub use authorization::AuthorizationStart;
pub use discovery::{ExtraMetadata, JWKS_REFETCH_INTERVAL, Metadata, Provider};
pub use logout_token::LogoutTokenFailure;
pub use tokens::{RawIdToken, Tokens};

/// The HTTP client type the `openidconnect` crate speaks through.
pub type HttpClient = openidconnect::reqwest::Client;

/// Time allowed for one request to the provider.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to open a connection to the provider.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// What went wrong talking to the provider. The text is for logs, never for pages.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered with something unusable: retry later.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider's discovery document contradicts the configuration.
    #[error("provider misconfigured: {0}")]
    Misconfigured(String),
    /// The provider answered with an OAuth error response (e.g. `invalid_grant`).
    #[error("provider refused the request: {0}")]
    Refused(ErrorResponse),
    /// The ID token or userinfo failed validation.
    #[error("invalid token: {0}")]
    InvalidToken(String),
}

impl OidcError {
    /// Whether trying again later may succeed: the provider could not be reached, or said it
    /// failed itself (`temporarily_unavailable`, `server_error`). A refusal such as
    /// `invalid_grant` or a token that fails validation will not change by waiting.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Refused(refusal) => matches!(
                refusal.error,
                ErrorCode::TemporarilyUnavailable | ErrorCode::ServerError
            ),
            Self::Misconfigured(_) | Self::InvalidToken(_) => false,
        }
    }
}

/// Discovery state and the protocol operations.
#[derive(Debug)]
pub struct Oidc {
    settings: Settings,
    http: HttpClient,
    provider: RwLock<Option<Arc<Provider>>>,
    discovering: tokio::sync::Mutex<()>,
}

impl Oidc {
    /// An `Oidc` that has not discovered anything yet.
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Following redirects from the provider would open the door to SSRF.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(Self {
            settings,
            http,
            provider: RwLock::new(None),
            discovering: tokio::sync::Mutex::new(()),
        })
    }

    /// The HTTP client for requests to the provider and the protected API (no redirects
    /// followed, short timeouts).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_provider_failures_are_worth_waiting_for() {
        let refused = |code| OidcError::Refused(ErrorResponse::new(code));
        assert!(refused(ErrorCode::TemporarilyUnavailable).is_transient());
        assert!(refused(ErrorCode::ServerError).is_transient());
        assert!(OidcError::Unavailable("connection refused".into()).is_transient());
        assert!(!refused(ErrorCode::InvalidGrant).is_transient());
        assert!(!refused(ErrorCode::InvalidClient).is_transient());
        assert!(!OidcError::InvalidToken("wrong nonce".into()).is_transient());
    }
}
