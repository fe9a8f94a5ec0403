//! Sign-out at the provider: the RP-Initiated Logout URL, and the refresh token revoked
//! (RFC 7009) so its whole grant ends.

use oidc_core::error::ErrorResponse;
use oidc_core::types::RefreshToken;
use url::Url;

use super::client::takes_basic_auth;
use super::{Oidc, OidcError, Provider, RawIdToken};

impl Oidc {
    /// The provider's `end_session_endpoint` with `id_token_hint`, `client_id` and
    /// `post_logout_redirect_uri`, if the provider has one.
    pub fn logout_url(&self, provider: &Provider, id_token: Option<&RawIdToken>) -> Option<Url> {
        let endpoint = provider
            .metadata()
            .additional_metadata()
            .end_session_endpoint
            .as_ref()?;
        let mut url = endpoint.url().clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(id_token) = id_token {
                query.append_pair("id_token_hint", id_token.as_str());
            }
            query.append_pair("client_id", self.settings.client_id.as_str());
            query.append_pair(
                "post_logout_redirect_uri",
                &self.settings.post_logout_redirect_uri(),
            );
        }
        Some(url)
    }

    /// Revokes a refresh token at the provider's `revocation_endpoint` (RFC 7009), with the
    /// client's authentication. Revoking the refresh token ends its whole grant at the provider.
    pub async fn revoke_refresh_token(
        &self,
        provider: &Provider,
        refresh_token: &RefreshToken,
    ) -> Result<(), OidcError> {
        let url = provider
            .metadata()
            .additional_metadata()
            .revocation_endpoint
            .clone()
            .ok_or_else(|| {
                OidcError::Misconfigured("the provider has no revocation_endpoint".into())
            })?;
        // A plain POST: the oauth2 crate refuses revocation endpoints over http, which a
        // provider on a private network (or in tests) has.
        let client_id = self.settings.client_id.as_str();
        let mut form = vec![
            ("token", refresh_token.secret()),
            ("token_type_hint", "refresh_token"),
        ];
        let mut request = self
            .http
            .post(url.url().clone())
            .header("accept", "application/json");
        match &self.settings.client_secret {
            // RFC 6749 §2.3.1: both parts form-encoded before they go into Basic.
            Some(secret) if takes_basic_auth(provider.metadata()) => {
                request =
                    request.basic_auth(form_encode(client_id), Some(form_encode(secret.secret())));
            }
            Some(secret) => {
                form.extend([("client_id", client_id), ("client_secret", secret.secret())]);
            }
            None => form.push(("client_id", client_id)),
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("revocation endpoint: {e}")))?;
        // RFC 7009 §2.2: 200 for a revoked (or unknown) token.
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.bytes().await.unwrap_or_default();
        Err(match serde_json::from_slice::<ErrorResponse>(&body) {
            Ok(refusal) => OidcError::Refused(refusal),
            Err(_) => OidcError::Unavailable(format!("revocation endpoint answered HTTP {status}")),
        })
    }
}

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use crate::oidc::RawIdToken;
    use crate::oidc::fixture::{CLIENT_ID, ISSUER, fixture};

    #[test]
    fn logout_url_names_the_token_client_and_return_address() {
        let fixture = fixture();
        let url = fixture
            .oidc
            .logout_url(&fixture.provider, Some(&RawIdToken::new("id.token.value")))
            .unwrap();
        let query: std::collections::HashMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert!(url.as_str().starts_with(&format!("{ISSUER}/oauth/logout?")));
        assert_eq!(query["id_token_hint"], "id.token.value");
        assert_eq!(query["client_id"], CLIENT_ID);
        assert_eq!(
            query["post_logout_redirect_uri"],
            "http://127.0.0.1:3000/api/auth/signin"
        );
    }
}
