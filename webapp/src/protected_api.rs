//! The protected API the home page shows (the tutorial's next step): called with the user's
//! access token as a bearer token, through the back-channel when it is on the issuer's origin.

use oidc_core::types::AccessToken;
use url::Url;

use crate::oidc::{Oidc, OidcError};

/// The protected API's answer for the home page.
#[derive(Debug, Clone)]
pub struct ApiAnswer {
    /// HTTP status.
    pub status: u16,
    /// The JSON body, if it was JSON.
    pub json: Option<serde_json::Value>,
}

/// Calls `api_url` with `access_token`.
pub async fn call(
    oidc: &Oidc,
    api_url: &Url,
    access_token: &AccessToken,
) -> Result<ApiAnswer, OidcError> {
    let url = oidc.backchannel(api_url);
    let response = oidc
        .http()
        .get(url.clone())
        .bearer_auth(access_token.secret())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| OidcError::Unavailable(format!("GET {url}: {e}")))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| OidcError::Unavailable(format!("GET {url}: {e}")))?;
    Ok(ApiAnswer {
        status,
        json: serde_json::from_slice(&body).ok(),
    })
}
