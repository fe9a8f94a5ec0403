//! What an operator registers for an application (admin form, CLI, bootstrap) and the rules it
//! must follow: client id, name, redirect URIs, client and grant types, signing algorithm.

use std::net::IpAddr;

use oidc_core::jose::Algorithm;

/// Confidential clients authenticate with a secret; public ones (SPAs, native apps) cannot keep
/// one and rely on PKCE alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// Has a secret.
    Confidential,
    /// Has no secret.
    Public,
}

impl ClientType {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }

    /// Parses `confidential` or `public`.
    pub fn parse(value: &str) -> Result<Self, ClientInputError> {
        match value {
            "confidential" => Ok(Self::Confidential),
            "public" => Ok(Self::Public),
            other => Err(ClientInputError::ClientType(other.to_owned())),
        }
    }
}

/// OAuth grant types a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 §4.1.
    AuthorizationCode,
    /// RFC 6749 §6.
    RefreshToken,
}

impl GrantType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
        }
    }

    /// Parses a wire name.
    pub fn parse(value: &str) -> Result<Self, ClientInputError> {
        match value {
            "authorization_code" => Ok(Self::AuthorizationCode),
            "refresh_token" => Ok(Self::RefreshToken),
            other => Err(ClientInputError::GrantType(other.to_owned())),
        }
    }
}

/// Why a registration was refused; shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientInputError {
    /// Bad client id.
    #[error("the client id must be 1 to 128 characters: letters, digits, '.', '_', '~' or '-'")]
    ClientId,
    /// The client id is taken.
    #[error("this client id is already taken")]
    ClientIdTaken,
    /// Empty or overlong name.
    #[error("the name must be 1 to 128 characters")]
    Name,
    /// Unknown client type.
    #[error("unknown client type {0:?} (confidential or public)")]
    ClientType(String),
    /// Unknown grant type.
    #[error("unknown grant type {0:?} (authorization_code or refresh_token)")]
    GrantType(String),
    /// No grant type, or refresh without code.
    #[error("the grant types must include authorization_code")]
    NoCodeGrant,
    /// Unknown signing algorithm.
    #[error("unknown ID-token signing algorithm {0:?} (RS256 or ES256)")]
    Algorithm(String),
    /// No redirect URI.
    #[error("at least one redirect URI is required")]
    NoRedirectUri,
    /// A refused redirect URI.
    #[error(transparent)]
    RedirectUri(#[from] RedirectUriError),
}

/// A redirect URI that cannot be registered, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redirect URI {uri:?} {reason}")]
pub struct RedirectUriError {
    /// The URI as given.
    pub uri: String,
    /// Why it is refused.
    pub reason: &'static str,
}

/// Checks a redirect (or post-logout redirect) URI for registration: absolute, no fragment, no
/// user info, and `https`, or `http` only for localhost, loopback addresses and the hosts of
/// `PROVIDER_ALLOW_HTTP_REDIRECT_HOSTS`. The string is stored as given and matched byte for
/// byte later, so nothing is normalized here.
pub fn validate_redirect_uri(
    uri: &str,
    allow_http_hosts: &[String],
) -> Result<(), RedirectUriError> {
    let refuse = |reason| {
        Err(RedirectUriError {
            uri: uri.to_owned(),
            reason,
        })
    };
    if uri.is_empty()
        || uri.len() > 2000
        || uri.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return refuse("must be a non-empty URL without spaces");
    }
    if uri.contains('#') {
        return refuse("must not contain a fragment");
    }
    let Ok(url) = url::Url::parse(uri) else {
        return refuse("must be an absolute URL");
    };
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("must not contain user information");
    }
    let Some(host) = url.host_str() else {
        return refuse("must have a host");
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase();
            let loopback = host == "localhost"
                || host.ends_with(".localhost")
                || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if loopback
                || allow_http_hosts
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(&host))
            {
                Ok(())
            } else {
                refuse(
                    "must use https (http only for localhost, loopback addresses and the hosts in PROVIDER_ALLOW_HTTP_REDIRECT_HOSTS)",
                )
            }
        }
        _ => refuse("must use https or http"),
    }
}

fn validate_client_id(id: &str) -> Result<(), ClientInputError> {
    let valid = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-'));
    if valid {
        Ok(())
    } else {
        Err(ClientInputError::ClientId)
    }
}

/// What an operator registers (admin form, CLI, bootstrap).
#[derive(Debug, Clone)]
pub struct ClientInput {
    /// A chosen client id; generated when `None`.
    pub id: Option<String>,
    /// Display name.
    pub name: String,
    /// Confidential or public.
    pub client_type: ClientType,
    /// Redirect URIs (at least one).
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Allowed grant types (must include authorization_code).
    pub grant_types: Vec<GrantType>,
    /// Skip the consent page.
    pub skip_authorization: bool,
    /// ID-token signing algorithm.
    pub id_token_signed_response_alg: Algorithm,
    /// A resource server: may introspect the access tokens issued to other clients.
    pub can_introspect: bool,
    /// Where logout tokens are posted (OpenID Connect Back-Channel Logout 1.0).
    pub backchannel_logout_uri: Option<String>,
    /// Whether the application needs `sid` in logout tokens.
    pub backchannel_logout_session_required: bool,
    /// Sign-ins for this application must have used a second factor.
    pub requires_mfa: bool,
}

impl ClientInput {
    /// A confidential client for the code flow with refresh tokens, RS256, asking for consent.
    pub fn new(name: impl Into<String>, redirect_uris: Vec<String>) -> Self {
        Self {
            id: None,
            name: name.into(),
            client_type: ClientType::Confidential,
            redirect_uris,
            post_logout_redirect_uris: Vec::new(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            skip_authorization: false,
            id_token_signed_response_alg: Algorithm::RS256,
            can_introspect: false,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
            requires_mfa: false,
        }
    }

    /// Checks every field.
    pub fn validate(&self, allow_http_hosts: &[String]) -> Result<(), ClientInputError> {
        if let Some(id) = &self.id {
            validate_client_id(id)?;
        }
        let name_len = self.name.trim().chars().count();
        if name_len == 0 || name_len > 128 {
            return Err(ClientInputError::Name);
        }
        if self.redirect_uris.is_empty() {
            return Err(ClientInputError::NoRedirectUri);
        }
        for uri in self
            .redirect_uris
            .iter()
            .chain(&self.post_logout_redirect_uris)
        {
            validate_redirect_uri(uri, allow_http_hosts)?;
        }
        // The same rules as redirect URIs: absolute http(s), no fragment, http only for the
        // hosts allowed there (the provider itself connects to it, so no other scheme).
        if let Some(uri) = &self.backchannel_logout_uri {
            validate_redirect_uri(uri, allow_http_hosts)?;
        }
        if !self.grant_types.contains(&GrantType::AuthorizationCode) {
            return Err(ClientInputError::NoCodeGrant);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_rules() {
        let allow = vec!["webapp".to_owned()];
        for ok in [
            "https://app.example/callback",
            "https://app.example:8443/cb?x=1",
            "http://localhost:3000/api/auth/callback/provider",
            "http://127.0.0.1:4000/cb",
            "http://[::1]:4000/cb",
            "http://webapp:3000/cb",
        ] {
            assert!(validate_redirect_uri(ok, &allow).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/relative",
            "app.example/cb",
            "http://app.example/cb",
            "https://app.example/cb#frag",
            "https://user@app.example/cb",
            "https://app.example/c b",
            "javascript:alert(1)",
            "ftp://app.example/cb",
        ] {
            assert!(validate_redirect_uri(bad, &allow).is_err(), "{bad}");
        }
    }
}
