//! Provider metadata served at `{issuer}/.well-known/openid-configuration` (OpenID Connect
//! Discovery 1.0 §3 and §4, with the additions of RFC 8414 §2, RFC 9207 §3, OpenID Connect
//! RP-Initiated Logout 1.0 §2.1 and OpenID Connect Back-Channel Logout 1.0 §2.1).
//!
//! ```
//! use oidc_core::discovery::ProviderMetadata;
//! use oidc_core::types::IssuerUrl;
//!
//! let issuer = IssuerUrl::parse("https://id.example.com")?;
//! let mut metadata = ProviderMetadata::new(
//!     issuer.clone(),
//!     issuer.join_path("oauth/authorize")?,
//!     issuer.join_path("oauth/jwks")?,
//! );
//! metadata.token_endpoint = Some(issuer.join_path("oauth/token")?);
//! metadata.code_challenge_methods_supported = Some(vec!["S256".into()]);
//! let json = serde_json::to_value(&metadata).unwrap();
//! assert_eq!(json["token_endpoint"], "https://id.example.com/oauth/token");
//! assert!(json.get("userinfo_endpoint").is_none());
//! assert_eq!(
//!     ProviderMetadata::well_known_url(&issuer)?.as_str(),
//!     "https://id.example.com/.well-known/openid-configuration"
//! );
//! # Ok::<(), oidc_core::types::ParseError>(())
//! ```

use serde::{Deserialize, Serialize};
use url::Url;

use crate::types::IssuerUrl;

/// The path of the discovery document below the issuer (OpenID Connect Discovery 1.0 §4).
pub const WELL_KNOWN_PATH: &str = ".well-known/openid-configuration";

/// OpenID provider metadata (OpenID Connect Discovery 1.0 §3). Optional fields that are absent
/// are left out when serializing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderMetadata {
    /// The issuer identifier; must equal the `iss` of the provider's ID tokens.
    pub issuer: IssuerUrl,
    /// The authorization endpoint (RFC 6749 §3.1).
    pub authorization_endpoint: Url,
    /// The token endpoint (RFC 6749 §3.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<Url>,
    /// The userinfo endpoint (OpenID Connect Core 1.0 §5.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<Url>,
    /// Where the JWK Set with the signing keys is served.
    pub jwks_uri: Url,
    /// Dynamic client registration endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<Url>,
    /// Supported scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// Supported `response_type` values (e.g. `code`).
    pub response_types_supported: Vec<String>,
    /// Supported `response_mode` values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_modes_supported: Option<Vec<String>>,
    /// Supported grant types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    /// Supported authentication context class references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr_values_supported: Option<Vec<String>>,
    /// Supported subject identifier types (`public`, `pairwise`).
    pub subject_types_supported: Vec<String>,
    /// JWS algorithms used to sign ID tokens.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// JWS algorithms for signed userinfo responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_signing_alg_values_supported: Option<Vec<String>>,
    /// Client authentication methods at the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// Supported `display` values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_values_supported: Option<Vec<String>>,
    /// Supported claim types (`normal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_types_supported: Option<Vec<String>>,
    /// Claims the provider may release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_supported: Option<Vec<String>>,
    /// Developer documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_documentation: Option<Url>,
    /// Supported UI locales.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui_locales_supported: Option<Vec<String>>,
    /// Whether the `claims` parameter is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_parameter_supported: Option<bool>,
    /// Whether the `request` parameter is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_parameter_supported: Option<bool>,
    /// Whether the `request_uri` parameter is supported (the default is `true`, so a provider
    /// that does not support it says `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_uri_parameter_supported: Option<bool>,
    /// The provider's policy page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_policy_uri: Option<Url>,
    /// The provider's terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_tos_uri: Option<Url>,
    /// Supported PKCE methods (RFC 8414 §2, RFC 7636).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Token revocation endpoint (RFC 7009, RFC 8414 §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<Url>,
    /// Client authentication methods at the revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// Token introspection endpoint (RFC 7662, RFC 8414 §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<Url>,
    /// Client authentication methods at the introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// RP-initiated logout endpoint (OpenID Connect RP-Initiated Logout 1.0 §2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<Url>,
    /// Whether authorization responses carry `iss` (RFC 9207 §3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// Whether the provider sends logout tokens to relying parties' back-channel logout URIs
    /// (OpenID Connect Back-Channel Logout 1.0 §2.1; absent means `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_supported: Option<bool>,
    /// Whether those logout tokens carry `sid` (OpenID Connect Back-Channel Logout 1.0 §2.1;
    /// absent means `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_session_supported: Option<bool>,
}

impl ProviderMetadata {
    /// Metadata with the required fields: `response_types_supported = ["code"]`,
    /// `subject_types_supported = ["public"]`, `id_token_signing_alg_values_supported =
    /// ["RS256"]` (the algorithm every relying party must support), and nothing optional.
    pub fn new(issuer: IssuerUrl, authorization_endpoint: Url, jwks_uri: Url) -> Self {
        Self {
            issuer,
            authorization_endpoint,
            token_endpoint: None,
            userinfo_endpoint: None,
            jwks_uri,
            registration_endpoint: None,
            scopes_supported: None,
            response_types_supported: vec!["code".into()],
            response_modes_supported: None,
            grant_types_supported: None,
            acr_values_supported: None,
            subject_types_supported: vec!["public".into()],
            id_token_signing_alg_values_supported: vec!["RS256".into()],
            userinfo_signing_alg_values_supported: None,
            token_endpoint_auth_methods_supported: None,
            display_values_supported: None,
            claim_types_supported: None,
            claims_supported: None,
            service_documentation: None,
            ui_locales_supported: None,
            claims_parameter_supported: None,
            request_parameter_supported: None,
            request_uri_parameter_supported: None,
            op_policy_uri: None,
            op_tos_uri: None,
            code_challenge_methods_supported: None,
            revocation_endpoint: None,
            revocation_endpoint_auth_methods_supported: None,
            introspection_endpoint: None,
            introspection_endpoint_auth_methods_supported: None,
            end_session_endpoint: None,
            authorization_response_iss_parameter_supported: None,
            backchannel_logout_supported: None,
            backchannel_logout_session_supported: None,
        }
    }

    /// The URL of the discovery document of `issuer` (OpenID Connect Discovery 1.0 §4.1).
    pub fn well_known_url(issuer: &IssuerUrl) -> Result<Url, crate::types::ParseError> {
        issuer.join_path(WELL_KNOWN_PATH)
    }
}
