//! The token endpoint: the authorization code exchanged (with the PKCE verifier) for tokens
//! whose ID token is validated completely, and refresh tokens redeemed.

use std::fmt;

use base64::Engine as _;
use oidc_core::error::{ErrorCode, ErrorResponse};
use oidc_core::pkce::CodeVerifier;
use oidc_core::types::{AccessToken, Nonce, RefreshToken};
use openidconnect::core::{
    CoreErrorResponseType, CoreIdTokenClaims, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, OAuth2TokenResponse as _, PkceCodeVerifier, RequestTokenError,
    StandardErrorResponse, TokenResponse as _,
};
use serde::{Deserialize, Serialize};

use super::{Oidc, OidcError, Provider};

/// An ID token as received (a signed JWT), kept for `id_token_hint` at logout. `Debug` prints
/// none of it: it names the user and the session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawIdToken(String);

impl RawIdToken {
    /// Wraps a compact JWT.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RawIdToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawIdToken([redacted])")
    }
}

/// The tokens and identity obtained at sign-in or refresh.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The subject (stable user id at the provider).
    pub sub: String,
    /// Display name from userinfo or the ID token.
    pub name: Option<String>,
    /// E-mail from userinfo or the ID token.
    pub email: Option<String>,
    /// The access token.
    pub access_token: AccessToken,
    /// When it expires (unix seconds), if the provider said.
    pub access_token_expires_at: Option<i64>,
    /// The refresh token, if any (a refresh without rotation keeps the old one).
    pub refresh_token: Option<RefreshToken>,
    /// The raw ID token (for `id_token_hint` at logout).
    pub id_token: Option<RawIdToken>,
    /// The provider's session id (the ID token's `sid` claim), which back-channel logout
    /// tokens name.
    pub sid: Option<String>,
    /// How the user authenticated (the ID token's `amr` claim, e.g. `pwd`, `otp`, `hwk`);
    /// empty when the ID token has none.
    pub amr: Vec<String>,
    /// The authentication context class satisfied (the ID token's `acr` claim).
    pub acr: Option<String>,
}

impl Oidc {
    /// Exchanges the code (with the PKCE verifier), validates the ID token completely, and
    /// fetches userinfo.
    pub async fn exchange_code(
        &self,
        provider: &Provider,
        code: &str,
        pkce_verifier: &CodeVerifier,
        nonce: &Nonce,
    ) -> Result<Tokens, OidcError> {
        let client = self.client(provider);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Misconfigured(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.secret().to_owned()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::InvalidToken("no id_token in the token response".into()))?;
        let nonce = openidconnect::Nonce::new(nonce.as_str().to_owned());
        let claims = self
            .verify_id_token(provider, id_token, response.access_token(), Some(&nonce))
            .await?;
        let acr = claims.auth_context_ref().map(|acr| acr.as_str());
        if !self.settings.acr_values.accepts(acr) {
            // Asked for with acr_values, but the provider authenticated the user otherwise.
            return Err(OidcError::InvalidToken(format!(
                "the ID token's acr {acr:?} is not among the requested acr_values"
            )));
        }
        let userinfo = self
            .userinfo(provider, response.access_token(), claims.subject())
            .await?;
        Ok(tokens_from(
            &response,
            Some(&claims),
            userinfo.as_ref(),
            None,
        ))
    }

    /// Redeems a refresh token. A new ID token in the answer is validated and must name the same
    /// subject.
    pub async fn refresh(
        &self,
        provider: &Provider,
        refresh_token: &RefreshToken,
        sub: &str,
    ) -> Result<Tokens, OidcError> {
        let client = self.client(provider);
        let refresh = openidconnect::RefreshToken::new(refresh_token.secret().to_owned());
        let response = client
            .exchange_refresh_token(&refresh)
            .map_err(|e| OidcError::Misconfigured(e.to_string()))?
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let claims = match response.id_token() {
            Some(id_token) => {
                let claims = self
                    .verify_id_token(provider, id_token, response.access_token(), None)
                    .await?;
                if claims.subject().as_str() != sub {
                    return Err(OidcError::InvalidToken(
                        "refreshed ID token names another subject".into(),
                    ));
                }
                Some(claims)
            }
            None => None,
        };
        let mut tokens = tokens_from(&response, claims.as_ref(), None, Some(refresh_token));
        tokens.sub = sub.to_owned();
        Ok(tokens)
    }
}

/// A failed token request as an [`OidcError`]: an OAuth error response keeps its code.
fn token_error<RE: std::error::Error + 'static>(
    error: RequestTokenError<RE, StandardErrorResponse<CoreErrorResponseType>>,
) -> OidcError {
    match error {
        RequestTokenError::ServerResponse(response) => {
            let code = response.error().as_ref();
            let mut refusal = match ErrorCode::parse(code) {
                Some(code) => ErrorResponse::new(code),
                // A code outside RFC 6749 §5.2: a refusal all the same.
                None => ErrorResponse::new(ErrorCode::InvalidRequest)
                    .with_description(format!("unknown error code {code:?}")),
            };
            if let Some(description) = response.error_description() {
                let described = match refusal.error_description.take() {
                    Some(before) => format!("{before}: {description}"),
                    None => description.clone(),
                };
                refusal = refusal.with_description(described);
            }
            OidcError::Refused(refusal)
        }
        RequestTokenError::Request(e) => OidcError::Unavailable(format!("token endpoint: {e}")),
        RequestTokenError::Parse(e, _) => {
            OidcError::Unavailable(format!("token endpoint answer: {e}"))
        }
        RequestTokenError::Other(e) => OidcError::Unavailable(format!("token endpoint: {e}")),
    }
}

fn expires_at(response: &CoreTokenResponse) -> Option<i64> {
    response
        .expires_in()
        .map(|d| oidc_core::unix_now() + i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2))
}

/// The tokens of `response`, with the identity from userinfo first, then the ID token's claims;
/// without a new refresh token, `previous_refresh_token` is kept.
fn tokens_from(
    response: &CoreTokenResponse,
    claims: Option<&CoreIdTokenClaims>,
    userinfo: Option<&CoreUserInfoClaims>,
    previous_refresh_token: Option<&RefreshToken>,
) -> Tokens {
    let from_userinfo_name = userinfo
        .and_then(|u| u.name())
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_owned());
    let from_claims_name = claims
        .and_then(|c| c.name())
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_owned());
    let preferred_username = userinfo
        .and_then(|u| u.preferred_username())
        .or(claims.and_then(|c| c.preferred_username()))
        .map(|n| n.as_str().to_owned());
    let email = userinfo
        .and_then(|u| u.email())
        .or(claims.and_then(|c| c.email()))
        .map(|e| e.as_str().to_owned());
    Tokens {
        sub: claims
            .map(|c| c.subject().as_str().to_owned())
            .unwrap_or_default(),
        name: from_userinfo_name
            .or(from_claims_name)
            .or(preferred_username),
        email,
        access_token: AccessToken::new(response.access_token().secret().clone()),
        access_token_expires_at: expires_at(response),
        refresh_token: response
            .refresh_token()
            .map(|t| RefreshToken::new(t.secret().clone()))
            .or_else(|| previous_refresh_token.cloned()),
        id_token: response.id_token().map(|t| RawIdToken::new(t.to_string())),
        sid: response.id_token().and_then(|t| sid_claim(&t.to_string())),
        amr: claims
            .and_then(|c| c.auth_method_refs())
            .map(|amr| amr.iter().map(|m| m.as_str().to_owned()).collect())
            .unwrap_or_default(),
        acr: claims
            .and_then(|c| c.auth_context_ref())
            .map(|acr| acr.as_str().to_owned()),
    }
}

/// The `sid` claim of an ID token that was already verified. The `openidconnect` crate's core
/// claims have no `sid`, so it is read from the payload.
fn sid_claim(id_token: &str) -> Option<String> {
    let payload = id_token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims
        .get("sid")?
        .as_str()
        .filter(|sid| !sid.is_empty())
        .map(str::to_owned)
}
