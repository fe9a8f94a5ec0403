//! The `openidconnect` client for the discovered provider: the registered client id and secret,
//! the redirect URI, and the client authentication the provider takes.

use openidconnect::core::CoreClient;
use openidconnect::{
    AuthType, ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, RedirectUrl,
};

use super::{Metadata, Oidc, Provider};

/// The client with the authorization endpoint set and the token and userinfo endpoints as
/// discovered.
pub(super) type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Whether the provider takes `client_secret_basic`: the default (OIDC Core §9), so also when it
/// lists no methods; otherwise the secret goes in the request body.
pub(super) fn takes_basic_auth(metadata: &Metadata) -> bool {
    metadata
        .token_endpoint_auth_methods_supported()
        .is_none_or(|methods| methods.iter().any(|m| m.as_ref() == "client_secret_basic"))
}

impl Oidc {
    /// A client for `provider` with its current key set.
    pub(super) fn client(&self, provider: &Provider) -> Client {
        let metadata = provider
            .metadata()
            .clone()
            .set_jwks((*provider.jwks()).clone());
        let auth_type = if takes_basic_auth(&metadata) {
            AuthType::BasicAuth
        } else {
            AuthType::RequestBody
        };
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.as_str().to_owned()),
            self.settings
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.secret().to_owned())),
        )
        .set_auth_type(auth_type);
        match RedirectUrl::new(self.settings.redirect_uri()) {
            Ok(redirect) => client.set_redirect_uri(redirect),
            // WEBAPP_URL parsed as a URL and the provider id is URL-safe, so this cannot happen.
            Err(_) => client,
        }
    }
}
