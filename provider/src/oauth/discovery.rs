//! Discovery (OpenID Connect Discovery 1.0 §3, §4).

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use oidc_core::discovery::ProviderMetadata;
use oidc_core::jose::Algorithm;

use crate::identity::factor;
use crate::state::AppState;

use super::error::OAuthError;
use super::scopes;

/// How long clients may cache discovery and the key set. Keys are published before they sign
/// (and verifiers fetch the set again on an unknown `kid`), so a few minutes is safe.
const CACHE_SECS: u32 = 300;

fn strings(values: &[&str]) -> Option<Vec<String>> {
    Some(values.iter().map(|v| (*v).to_owned()).collect())
}

/// The provider's metadata.
pub fn metadata(state: &AppState) -> Result<ProviderMetadata, OAuthError> {
    let issuer = state.issuer()?;
    let url = |path: &str| {
        issuer
            .join_path(path)
            .map_err(|e| OAuthError::Unexpected(e.into()))
    };
    let mut m = ProviderMetadata::new(issuer.clone(), url("oauth/authorize")?, url("oauth/jwks")?);
    m.token_endpoint = Some(url("oauth/token")?);
    m.userinfo_endpoint = Some(url("oauth/userinfo")?);
    m.revocation_endpoint = Some(url("oauth/revoke")?);
    m.introspection_endpoint = Some(url("oauth/introspect")?);
    m.end_session_endpoint = Some(url("oauth/logout")?);
    m.backchannel_logout_supported = Some(true);
    m.backchannel_logout_session_supported = Some(true);
    m.scopes_supported = strings(&scopes::offered(state.settings.offline_access));
    m.response_types_supported = vec!["code".to_owned()];
    m.response_modes_supported = strings(&["query"]);
    m.grant_types_supported = strings(&["authorization_code", "refresh_token"]);
    m.subject_types_supported = vec!["public".to_owned()];
    m.id_token_signing_alg_values_supported = Algorithm::ALL
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    let auth_methods = strings(&["client_secret_basic", "client_secret_post", "none"]);
    m.token_endpoint_auth_methods_supported = auth_methods;
    m.revocation_endpoint_auth_methods_supported =
        strings(&["client_secret_basic", "client_secret_post"]);
    m.introspection_endpoint_auth_methods_supported =
        strings(&["client_secret_basic", "client_secret_post"]);
    m.code_challenge_methods_supported = strings(&["S256"]);
    m.claims_supported = strings(&scopes::SUPPORTED_CLAIMS);
    m.acr_values_supported = strings(&[factor::ACR_MFA, factor::ACR_PASSWORD]);
    m.claim_types_supported = strings(&["normal"]);
    m.claims_parameter_supported = Some(false);
    m.request_parameter_supported = Some(false);
    m.request_uri_parameter_supported = Some(false);
    m.authorization_response_iss_parameter_supported = Some(true);
    Ok(m)
}

/// `GET /.well-known/openid-configuration` (and with a trailing slash).
pub async fn openid_configuration(state: web::Data<AppState>) -> Result<HttpResponse, OAuthError> {
    Ok(public_json(document(&state)?))
}

/// A JSON document anyone may fetch, from any origin, and cache for a few minutes.
pub(super) fn public_json(body: impl actix_web::body::MessageBody + 'static) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            format!("public, max-age={CACHE_SECS}"),
        ))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .content_type("application/json")
        .body(body)
}

/// The serialized discovery document, built once per provider.
fn document(state: &AppState) -> Result<web::Bytes, OAuthError> {
    if let Some(doc) = state.discovery.get() {
        return Ok(doc.clone());
    }
    let json = serde_json::to_vec(&metadata(state)?)
        .map_err(|e| OAuthError::Unexpected(anyhow::Error::from(e)))?;
    Ok(state.discovery.get_or_init(|| json.into()).clone())
}
