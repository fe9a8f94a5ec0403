//! The authorization request: code flow with PKCE S256, `state` and `nonce`, asking only for the
//! scopes the provider offers, and for the configured `acr_values`.

use oidc_core::pkce::CodeVerifier;
use oidc_core::types::{Nonce, Scope, Scopes, State};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{CsrfToken, PkceCodeChallenge, PkceCodeVerifier};
use url::Url;

use super::{Oidc, Provider};

/// The values a started sign-in must remember until its callback.
#[derive(Debug)]
pub struct AuthorizationStart {
    /// Where to send the browser.
    pub url: Url,
    /// The `state` parameter.
    pub state: State,
    /// The `nonce` parameter.
    pub nonce: Nonce,
    /// The PKCE verifier (its S256 challenge went into `url`).
    pub pkce_verifier: CodeVerifier,
}

impl Oidc {
    /// The authorization URL (code flow, PKCE S256, state, nonce) and the values to keep.
    pub fn start_authorization(&self, provider: &Provider) -> AuthorizationStart {
        let state = State::generate();
        let nonce = Nonce::generate();
        let pkce_verifier = CodeVerifier::generate();
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            pkce_verifier.secret().to_owned(),
        ));
        let client = self.client(provider);
        let (csrf, wire_nonce) = (state.as_str().to_owned(), nonce.as_str().to_owned());
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(csrf),
                move || openidconnect::Nonce::new(wire_nonce),
            )
            .set_pkce_challenge(challenge);
        let (scopes, _) = self.scopes_for(provider);
        for scope in scopes {
            // The client adds `openid` itself.
            if scope.as_str() != Scope::OPENID {
                request = request.add_scope(openidconnect::Scope::new(scope.as_str().to_owned()));
            }
        }
        for acr in self.settings.acr_values.iter() {
            request = request.add_auth_context_value(
                openidconnect::AuthenticationContextClass::new(acr.to_owned()),
            );
        }
        let (url, _, _) = request.url();
        AuthorizationStart {
            url,
            state,
            nonce,
            pkce_verifier,
        }
    }

    /// The configured scopes the provider offers, and those it does not. A provider that lists
    /// no `scopes_supported` is asked for all of them.
    fn scopes_for<'a>(&'a self, provider: &Provider) -> (Vec<&'a Scope>, Vec<&'a Scope>) {
        let requested = &self.settings.scopes;
        let Some(supported) = provider.metadata().scopes_supported() else {
            return (requested.iter().collect(), Vec::new());
        };
        // A listed value that is not a scope token could never be asked for anyway.
        let supported: Scopes = supported
            .iter()
            .filter_map(|s| Scope::parse(s.as_str()).ok())
            .collect();
        requested.split_by_support(&supported)
    }

    /// Warns, once per discovery, about configured scopes the provider does not offer: they
    /// are left out of every authorization request (a provider refuses unknown scopes).
    pub(super) fn warn_about_unsupported_scopes(&self, provider: &Provider) {
        let (_, dropped) = self.scopes_for(provider);
        if !dropped.is_empty() {
            let dropped: Vec<&str> = dropped.iter().map(|s| s.as_str()).collect();
            tracing::warn!(
                scopes = dropped.join(" "),
                "OIDC_SCOPES lists scopes the provider does not offer: they are not requested"
            );
        }
    }

    /// Whether the provider promised the RFC 9207 `iss` parameter.
    pub fn requires_iss_parameter(&self, provider: &Provider) -> bool {
        provider
            .metadata()
            .additional_metadata()
            .authorization_response_iss_parameter_supported
            == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use crate::oidc::fixture::{CLIENT_ID, ISSUER, b64, fixture, fixture_with};
    use sha2::{Digest as _, Sha256};

    fn query(url: &url::Url) -> HashMap<String, String> {
        url.query_pairs().into_owned().collect()
    }

    #[test]
    fn authorization_requests_carry_pkce_state_nonce_and_scopes() {
        let fixture = fixture();
        let start = fixture.oidc.start_authorization(&fixture.provider);
        let query = query(&start.url);
        assert!(
            start
                .url
                .as_str()
                .starts_with(&format!("{ISSUER}/oauth/authorize?"))
        );
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["client_id"], CLIENT_ID);
        assert_eq!(
            query["redirect_uri"],
            "http://127.0.0.1:3000/api/auth/callback/provider"
        );
        assert_eq!(query["scope"], "openid profile email offline_access");
        assert_eq!(query["state"], start.state.as_str());
        assert_eq!(query["nonce"], start.nonce.as_str());
        assert_eq!(query["code_challenge_method"], "S256");
        let challenge = b64(&Sha256::digest(start.pkce_verifier.secret().as_bytes()));
        assert_eq!(query["code_challenge"], challenge);
        // Fresh values every time.
        let again = fixture.oidc.start_authorization(&fixture.provider);
        assert_ne!(again.state, start.state);
        assert_ne!(again.nonce, start.nonce);
        assert_ne!(again.pkce_verifier, start.pkce_verifier);
        assert!(fixture.oidc.requires_iss_parameter(&fixture.provider));
    }

    #[test]
    fn only_scopes_the_provider_lists_are_requested() {
        let fixture = fixture_with(json!({
            "scopes_supported": ["openid", "profile", "email", "phone"],
        }));
        let start = fixture.oidc.start_authorization(&fixture.provider);
        assert_eq!(query(&start.url)["scope"], "openid profile email");

        // `openid` is always asked for; so is everything when the provider lists nothing.
        let fixture = fixture_with(json!({ "scopes_supported": ["email"] }));
        let start = fixture.oidc.start_authorization(&fixture.provider);
        assert_eq!(query(&start.url)["scope"], "openid email");
    }
}
