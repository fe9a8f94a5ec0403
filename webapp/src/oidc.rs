//! The relying party's side of the protocol, on the `openidconnect` crate: discovery with retry,
//! the back-channel rewrite, the authorization request, code exchange with full ID-token
//! validation, userinfo, refresh, RP-initiated logout and the protected-API call.

use std::sync::{Arc, RwLock, Weak};

use base64::Engine as _;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGenderClaim, CoreGrantType, CoreIdToken, CoreIdTokenClaims,
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AdditionalProviderMetadata, AuthType, AuthorizationCode,
    ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, EndSessionUrl, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, JsonWebKey as _, JsonWebKeySetUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, RefreshToken,
    RequestTokenError, RevocationUrl, Scope, SignatureVerificationError, SubjectIdentifier,
    TokenResponse, TokenUrl, UserInfoUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;

use oidc_core::logout::{
    CheckedLogoutClaims, ExpectedLogout, LogoutTokenError, check_logout_claims,
};

use crate::config::Settings;

/// The HTTP client type the `openidconnect` crate speaks through.
pub type HttpClient = openidconnect::reqwest::Client;

/// Time allowed for one request to the provider.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to open a connection to the provider.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// First wait between discovery attempts; doubled after each failure.
const DISCOVERY_FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between discovery attempts.
const DISCOVERY_MAX_BACKOFF: Duration = Duration::from_secs(15);
/// Clock skew tolerated on `iat` (a token from the future is refused beyond it).
const CLOCK_SKEW_SECS: i64 = 60;

/// Discovery fields beyond OIDC Discovery 1.0 §3 that the relying party uses.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraMetadata {
    /// RP-Initiated Logout 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<EndSessionUrl>,
    /// RFC 9207 §3: when true, the `iss` parameter is mandatory in authorization responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// RFC 7009 / RFC 8414: where sign-out revokes the refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<RevocationUrl>,
}

impl AdditionalProviderMetadata for ExtraMetadata {}

/// The provider's discovery document.
pub type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What went wrong talking to the provider. The text is for logs, never for pages.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered with something unusable: retry later.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider's discovery document contradicts the configuration.
    #[error("provider misconfigured: {0}")]
    Misconfigured(String),
    /// The provider answered with an OAuth error (e.g. `invalid_grant`).
    #[error("provider refused the request: {0}")]
    Refused(String),
    /// The ID token or userinfo failed validation.
    #[error("invalid token: {0}")]
    InvalidToken(String),
}

/// The provider as discovered: metadata (authorization and logout endpoints as browsers reach
/// them; token, userinfo and JWKS endpoints as this server reaches them) and the current JWKS.
#[derive(Debug)]
pub struct Provider {
    metadata: Metadata,
    jwks: RwLock<Arc<CoreJsonWebKeySet>>,
    jwks_refetch: tokio::sync::Mutex<()>,
    jwks_fetched_at: std::sync::Mutex<std::time::Instant>,
}

impl Provider {
    /// Whether the last JWKS fetch is long enough ago for an unauthenticated request (a logout
    /// token with an unknown `kid`) to cause another.
    fn may_refetch_jwks(&self) -> bool {
        let fetched_at = match self.jwks_fetched_at.lock() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        };
        fetched_at.elapsed() >= JWKS_REFETCH_INTERVAL
    }

    /// The discovery document, with server-side endpoints rewritten to the back-channel.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn jwks(&self) -> Arc<CoreJsonWebKeySet> {
        match self.jwks.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_jwks(&self, jwks: CoreJsonWebKeySet) {
        match self.jwks_fetched_at.lock() {
            Ok(mut guard) => *guard = std::time::Instant::now(),
            Err(poisoned) => *poisoned.into_inner() = std::time::Instant::now(),
        }
        let new = Arc::new(jwks);
        match self.jwks.write() {
            Ok(mut guard) => *guard = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

/// The values a started sign-in must remember until its callback.
#[derive(Debug, Clone)]
pub struct AuthorizationStart {
    /// Where to send the browser.
    pub url: Url,
    /// The `state` parameter.
    pub state: String,
    /// The `nonce` parameter.
    pub nonce: String,
    /// The PKCE verifier (its S256 challenge went into `url`).
    pub pkce_verifier: String,
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
    pub access_token: String,
    /// When it expires (unix seconds), if the provider said.
    pub access_token_expires_at: Option<i64>,
    /// The refresh token, if any (a refresh without rotation keeps the old one).
    pub refresh_token: Option<String>,
    /// The raw ID token (for `id_token_hint` at logout).
    pub id_token: Option<String>,
    /// The provider's session id (the ID token's `sid` claim), which back-channel logout
    /// tokens name.
    pub sid: Option<String>,
}

/// The protected API's answer for the home page.
#[derive(Debug, Clone)]
pub struct ApiAnswer {
    /// HTTP status.
    pub status: u16,
    /// The JSON body, if it was JSON.
    pub json: Option<serde_json::Value>,
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

    /// The provider if discovery already succeeded.
    pub fn discovered(&self) -> Option<Arc<Provider>> {
        match self.provider.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The provider, trying discovery once now if it has not succeeded yet.
    pub async fn provider(&self) -> Result<Arc<Provider>, OidcError> {
        if let Some(provider) = self.discovered() {
            return Ok(provider);
        }
        // One discovery at a time: concurrent requests wait for it instead of piling up.
        let _guard = self.discovering.lock().await;
        if let Some(provider) = self.discovered() {
            return Ok(provider);
        }
        let provider = Arc::new(self.discover().await?);
        match self.provider.write() {
            Ok(mut guard) => *guard = Some(provider.clone()),
            Err(poisoned) => *poisoned.into_inner() = Some(provider.clone()),
        }
        tracing::info!(
            issuer = self.settings.issuer.as_str(),
            "provider discovered"
        );
        Ok(provider)
    }

    /// Retries discovery in the background with exponential backoff until it succeeds, so the
    /// first visitor after the provider comes up finds it ready. Stops when `Oidc` is dropped.
    pub fn spawn_discovery(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = DISCOVERY_FIRST_BACKOFF;
            loop {
                let Some(oidc) = weak.upgrade() else { return };
                match oidc.provider().await {
                    Ok(_) => return,
                    Err(error) => {
                        tracing::warn!(%error, retry_in = ?backoff, "provider discovery failed");
                    }
                }
                drop(oidc);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(DISCOVERY_MAX_BACKOFF);
            }
        });
    }

    /// Rewrites a URL on the issuer's origin to the back-channel origin (when one is set), for
    /// requests made by this server. Other URLs are left alone.
    pub fn backchannel(&self, url: &Url) -> Url {
        let Some(backchannel) = &self.settings.backchannel_url else {
            return url.clone();
        };
        if url.origin() != self.settings.issuer.url().origin() {
            return url.clone();
        }
        let mut rewritten = url.clone();
        let target = backchannel.url();
        // Both are http(s) URLs with hosts, so these setters cannot fail; keep the original if
        // they ever did rather than sending the request somewhere unexpected.
        if rewritten.set_scheme(target.scheme()).is_err()
            || rewritten.set_host(target.host_str()).is_err()
            || rewritten.set_port(target.port()).is_err()
        {
            return url.clone();
        }
        rewritten
    }

    async fn discover(&self) -> Result<Provider, OidcError> {
        let issuer = self.settings.issuer.as_str();
        let well_known = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let well_known = Url::parse(&well_known)
            .map_err(|e| OidcError::Misconfigured(format!("discovery URL: {e}")))?;
        let body = self.get_json_bytes(&self.backchannel(&well_known)).await?;
        let metadata: Metadata = serde_json::from_slice(&body)
            .map_err(|e| OidcError::Unavailable(format!("discovery document: {e}")))?;
        // OIDC Discovery §4.3: the issuer must be exactly the one configured.
        if metadata.issuer().as_str() != issuer {
            return Err(OidcError::Misconfigured(format!(
                "OIDC_ISSUER is {issuer:?} but the provider announces {:?}",
                metadata.issuer().as_str()
            )));
        }
        let metadata = self.rewrite_server_side_endpoints(metadata)?;
        let jwks = self.fetch_jwks(metadata.jwks_uri()).await?;
        Ok(Provider {
            metadata,
            jwks: RwLock::new(Arc::new(jwks)),
            jwks_refetch: tokio::sync::Mutex::new(()),
            jwks_fetched_at: std::sync::Mutex::new(std::time::Instant::now()),
        })
    }

    fn rewrite_server_side_endpoints(&self, metadata: Metadata) -> Result<Metadata, OidcError> {
        let bad = |what: &str, e: openidconnect::url::ParseError| {
            OidcError::Misconfigured(format!("{what} after back-channel rewrite: {e}"))
        };
        let token = match metadata.token_endpoint() {
            Some(url) => Some(
                TokenUrl::new(self.backchannel(url.url()).into())
                    .map_err(|e| bad("token_endpoint", e))?,
            ),
            None => None,
        };
        let userinfo = match metadata.userinfo_endpoint() {
            Some(url) => Some(
                UserInfoUrl::new(self.backchannel(url.url()).into())
                    .map_err(|e| bad("userinfo_endpoint", e))?,
            ),
            None => None,
        };
        let jwks = JsonWebKeySetUrl::new(self.backchannel(metadata.jwks_uri().url()).into())
            .map_err(|e| bad("jwks_uri", e))?;
        let mut metadata = metadata;
        let extra = metadata.additional_metadata_mut();
        if let Some(url) = extra.revocation_endpoint.take() {
            extra.revocation_endpoint = Some(
                RevocationUrl::new(self.backchannel(url.url()).into())
                    .map_err(|e| bad("revocation_endpoint", e))?,
            );
        }
        Ok(metadata
            .set_token_endpoint(token)
            .set_userinfo_endpoint(userinfo)
            .set_jwks_uri(jwks))
    }

    async fn get_json_bytes(&self, url: &Url) -> Result<Vec<u8>, OidcError> {
        let response = self
            .http
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("GET {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(OidcError::Unavailable(format!(
                "GET {url}: HTTP {}",
                response.status()
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| OidcError::Unavailable(format!("GET {url}: {e}")))?;
        Ok(body.to_vec())
    }

    async fn fetch_jwks(&self, url: &JsonWebKeySetUrl) -> Result<CoreJsonWebKeySet, OidcError> {
        CoreJsonWebKeySet::fetch_async(url, &self.http)
            .await
            .map_err(|e| OidcError::Unavailable(format!("JWKS: {e}")))
    }

    fn client(&self, provider: &Provider) -> Client {
        let metadata = provider
            .metadata
            .clone()
            .set_jwks((*provider.jwks()).clone());
        let supports = |method: &str| {
            metadata
                .token_endpoint_auth_methods_supported()
                .is_none_or(|methods| methods.iter().any(|m| m.as_ref() == method))
        };
        // client_secret_basic is the default (OIDC Core §9); use post only when basic is not offered.
        let auth_type = if supports("client_secret_basic") {
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

    /// The authorization URL (code flow, PKCE S256, state, nonce) and the values to keep.
    pub fn start_authorization(&self, provider: &Provider) -> AuthorizationStart {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self.client(provider);
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.settings.scopes.iter() {
            // The client adds `openid` itself.
            if scope.as_str() != "openid" {
                request = request.add_scope(Scope::new(scope.as_str().to_owned()));
            }
        }
        let (url, state, nonce) = request.url();
        AuthorizationStart {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Whether the provider promised the RFC 9207 `iss` parameter.
    pub fn requires_iss_parameter(&self, provider: &Provider) -> bool {
        provider
            .metadata
            .additional_metadata()
            .authorization_response_iss_parameter_supported
            == Some(true)
    }

    /// Exchanges the code (with the PKCE verifier), validates the ID token completely, and
    /// fetches userinfo.
    pub async fn exchange_code(
        &self,
        provider: &Provider,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<Tokens, OidcError> {
        let client = self.client(provider);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Misconfigured(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::InvalidToken("no id_token in the token response".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let claims = self
            .verify_id_token(provider, id_token, response.access_token(), Some(&nonce))
            .await?;
        let userinfo = self
            .userinfo(provider, response.access_token(), claims.subject())
            .await?;
        Ok(tokens_from(&response, &claims, userinfo.as_ref(), None))
    }

    /// Redeems a refresh token. A new ID token in the answer is validated and must name the same
    /// subject.
    pub async fn refresh(
        &self,
        provider: &Provider,
        refresh_token: &str,
        sub: &str,
    ) -> Result<Tokens, OidcError> {
        let client = self.client(provider);
        let refresh = RefreshToken::new(refresh_token.to_owned());
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
        let mut tokens = match &claims {
            Some(claims) => tokens_from(&response, claims, None, Some(refresh_token)),
            None => Tokens {
                sub: sub.to_owned(),
                name: None,
                email: None,
                access_token: response.access_token().secret().clone(),
                access_token_expires_at: expires_at(&response),
                refresh_token: Some(
                    response
                        .refresh_token()
                        .map(|t| t.secret().clone())
                        .unwrap_or_else(|| refresh_token.to_owned()),
                ),
                id_token: None,
                sid: None,
            },
        };
        tokens.sub = sub.to_owned();
        Ok(tokens)
    }

    /// Checks signature (against the JWKS, fetched again once for an unknown `kid`), `iss`,
    /// `aud`/`azp`, `exp`, `iat`, `nonce` and `at_hash`.
    async fn verify_id_token(
        &self,
        provider: &Provider,
        id_token: &CoreIdToken,
        access_token: &AccessToken,
        nonce: Option<&Nonce>,
    ) -> Result<CoreIdTokenClaims, OidcError> {
        match self.verify_with_current_keys(provider, id_token, access_token, nonce) {
            Err(IdTokenFailure::UnknownKey) => {
                self.refetch_jwks(provider).await?;
                match self.verify_with_current_keys(provider, id_token, access_token, nonce) {
                    Ok(claims) => Ok(claims),
                    Err(IdTokenFailure::UnknownKey) => Err(OidcError::InvalidToken(
                        "ID token signed with a key the provider does not publish".into(),
                    )),
                    Err(IdTokenFailure::Invalid(reason)) => Err(OidcError::InvalidToken(reason)),
                }
            }
            Err(IdTokenFailure::Invalid(reason)) => Err(OidcError::InvalidToken(reason)),
            Ok(claims) => Ok(claims),
        }
    }

    fn verify_with_current_keys(
        &self,
        provider: &Provider,
        id_token: &CoreIdToken,
        access_token: &AccessToken,
        nonce: Option<&Nonce>,
    ) -> Result<CoreIdTokenClaims, IdTokenFailure> {
        let client = self.client(provider);
        // Asymmetric algorithms only: an HMAC "signature" keyed with something public (or the
        // client secret) proves nothing about the provider, and `none` proves nothing at all.
        let allowed: Vec<CoreJwsSigningAlgorithm> = provider
            .metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|alg| {
                !matches!(
                    alg,
                    CoreJwsSigningAlgorithm::HmacSha256
                        | CoreJwsSigningAlgorithm::HmacSha384
                        | CoreJwsSigningAlgorithm::HmacSha512
                        | CoreJwsSigningAlgorithm::None
                )
            })
            .cloned()
            .collect();
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(allowed)
            .set_issue_time_verifier_fn(|iat| {
                let now = chrono::Utc::now().timestamp();
                if iat.timestamp() > now + CLOCK_SKEW_SECS {
                    Err(format!("issued in the future ({iat})"))
                } else {
                    Ok(())
                }
            });
        let result = match nonce {
            Some(nonce) => id_token.claims(&verifier, nonce),
            // A refreshed ID token carries no nonce of ours (OIDC Core §12.2).
            None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
        };
        let claims = match result {
            Ok(claims) => claims.clone(),
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => return Err(IdTokenFailure::UnknownKey),
            Err(e) => return Err(IdTokenFailure::Invalid(e.to_string())),
        };
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token
                .signing_alg()
                .map_err(|e| IdTokenFailure::Invalid(e.to_string()))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| IdTokenFailure::Invalid(e.to_string()))?;
            let actual = AccessTokenHash::from_token(access_token, alg, key)
                .map_err(|e| IdTokenFailure::Invalid(e.to_string()))?;
            if actual != *expected {
                return Err(IdTokenFailure::Invalid("at_hash does not match".into()));
            }
        }
        Ok(claims)
    }

    async fn refetch_jwks(&self, provider: &Provider) -> Result<(), OidcError> {
        let before = provider.jwks();
        let _guard = provider.jwks_refetch.lock().await;
        // Another request may have refreshed the keys while this one waited.
        if !Arc::ptr_eq(&before, &provider.jwks()) {
            return Ok(());
        }
        let jwks = self.fetch_jwks(provider.metadata.jwks_uri()).await?;
        provider.set_jwks(jwks);
        tracing::info!("JWKS fetched again for an unknown key id");
        Ok(())
    }

    async fn userinfo(
        &self,
        provider: &Provider,
        access_token: &AccessToken,
        sub: &SubjectIdentifier,
    ) -> Result<Option<CoreUserInfoClaims>, OidcError> {
        let client = self.client(provider);
        // The userinfo endpoint is optional in OIDC Discovery; without it the ID token suffices.
        let Ok(request) = client.user_info(access_token.clone(), Some(sub.clone())) else {
            return Ok(None);
        };
        let claims: CoreUserInfoClaims = request
            .request_async::<_, _, CoreGenderClaim>(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::UserInfoError::ClaimsVerification(e) => {
                    OidcError::InvalidToken(format!("userinfo: {e}"))
                }
                other => OidcError::Unavailable(format!("userinfo: {other}")),
            })?;
        Ok(Some(claims))
    }

    /// The provider's `end_session_endpoint` with `id_token_hint`, `client_id` and
    /// `post_logout_redirect_uri`, if the provider has one.
    pub fn logout_url(&self, provider: &Provider, id_token: Option<&str>) -> Option<Url> {
        let endpoint = provider
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .as_ref()?;
        let mut url = endpoint.url().clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(id_token) = id_token {
                query.append_pair("id_token_hint", id_token);
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
        refresh_token: &str,
    ) -> Result<(), OidcError> {
        let url = provider
            .metadata
            .additional_metadata()
            .revocation_endpoint
            .clone()
            .ok_or_else(|| {
                OidcError::Misconfigured("the provider has no revocation_endpoint".into())
            })?;
        // A plain POST: the oauth2 crate refuses revocation endpoints over http, which a
        // provider on a private network (or in tests) has.
        let form = [
            ("token", refresh_token),
            ("token_type_hint", "refresh_token"),
        ];
        let mut request = self
            .http
            .post(url.url().clone())
            .header("accept", "application/json");
        let secret = self.settings.client_secret.as_ref().map(|s| s.secret());
        let basic = provider
            .metadata
            .token_endpoint_auth_methods_supported()
            .is_none_or(|methods| methods.iter().any(|m| m.as_ref() == "client_secret_basic"));
        request = match secret {
            // RFC 6749 §2.3.1: both parts form-encoded before they go into Basic.
            Some(secret) if basic => request
                .basic_auth(
                    form_encode(self.settings.client_id.as_str()),
                    Some(form_encode(secret)),
                )
                .form(&form),
            Some(secret) => request.form(&[
                form[0],
                form[1],
                ("client_id", self.settings.client_id.as_str()),
                ("client_secret", secret),
            ]),
            None => request.form(&[
                form[0],
                form[1],
                ("client_id", self.settings.client_id.as_str()),
            ]),
        };
        let response = request
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("revocation endpoint: {e}")))?;
        // RFC 7009 §2.2: 200 for a revoked (or unknown) token.
        if response.status().is_success() {
            Ok(())
        } else {
            Err(OidcError::Refused(format!(
                "revocation endpoint answered HTTP {}",
                response.status()
            )))
        }
    }

    /// Verifies a back-channel logout token: the JWS signature and `alg` with the provider's
    /// keys (fetched again once for an unknown key, at most every [`JWKS_REFETCH_INTERVAL`]:
    /// this endpoint is open to anyone), then the claims with oidc-core's rules.
    pub async fn verify_logout_token(
        &self,
        provider: &Provider,
        token: &str,
        now: i64,
    ) -> Result<CheckedLogoutClaims, LogoutTokenFailure> {
        let jws = CompactJws::parse(token).map_err(LogoutTokenFailure::Invalid)?;
        let allowed = asymmetric_algs(provider);
        match jws.verify(&provider.jwks(), &allowed) {
            Ok(()) => {}
            Err(LogoutTokenError::UnknownKid(kid)) => {
                if !provider.may_refetch_jwks() {
                    return Err(LogoutTokenFailure::Invalid(LogoutTokenError::UnknownKid(
                        kid,
                    )));
                }
                self.refetch_jwks(provider)
                    .await
                    .map_err(LogoutTokenFailure::Unavailable)?;
                jws.verify(&provider.jwks(), &allowed)
                    .map_err(LogoutTokenFailure::Invalid)?;
            }
            Err(other) => return Err(LogoutTokenFailure::Invalid(other)),
        }
        let issuer =
            oidc_core::types::IssuerUrl::parse(self.settings.issuer.as_str()).map_err(|e| {
                LogoutTokenFailure::Unavailable(OidcError::Misconfigured(e.to_string()))
            })?;
        let expected = ExpectedLogout::new(issuer, self.settings.client_id.clone());
        check_logout_claims(jws.header.get("typ"), &jws.payload, &expected, now)
            .map_err(LogoutTokenFailure::Invalid)
    }

    /// Calls the protected API with the access token (through the back-channel).
    pub async fn call_api(&self, access_token: &str) -> Result<ApiAnswer, OidcError> {
        let url = self.backchannel(&self.settings.api_url());
        let response = self
            .http
            .get(url.clone())
            .bearer_auth(access_token)
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
}

/// Why a logout token was not accepted.
#[derive(Debug)]
pub enum LogoutTokenFailure {
    /// The token is bad: 400 `invalid_request`.
    Invalid(LogoutTokenError),
    /// The provider's keys could not be fetched: try again later.
    Unavailable(OidcError),
}

/// Longest logout token read: a few claims and an RSA-4096 signature fit many times over.
const MAX_LOGOUT_TOKEN_LEN: usize = 8 * 1024;
/// An unknown key id makes the JWKS be fetched again at most this often (per provider).
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// The signing algorithms the provider announces, without HMAC and `none`: an HMAC "signature"
/// keyed with something public proves nothing about the provider.
fn asymmetric_algs(provider: &Provider) -> Vec<CoreJwsSigningAlgorithm> {
    provider
        .metadata
        .id_token_signing_alg_values_supported()
        .iter()
        .filter(|alg| {
            !matches!(
                alg,
                CoreJwsSigningAlgorithm::HmacSha256
                    | CoreJwsSigningAlgorithm::HmacSha384
                    | CoreJwsSigningAlgorithm::HmacSha512
                    | CoreJwsSigningAlgorithm::None
            )
        })
        .cloned()
        .collect()
}

/// A JWS in compact form, decoded but not yet verified.
struct CompactJws {
    header: serde_json::Map<String, serde_json::Value>,
    payload: Vec<u8>,
    signature: Vec<u8>,
    signing_input: String,
}

impl CompactJws {
    fn parse(token: &str) -> Result<Self, LogoutTokenError> {
        let malformed = |what: &str| LogoutTokenError::Malformed(what.to_owned());
        if token.len() > MAX_LOGOUT_TOKEN_LEN {
            return Err(malformed("too long"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("not three dot-separated parts"));
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header_bytes = b64
            .decode(header)
            .map_err(|_| malformed("header is not base64url"))?;
        let header_json: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&header_bytes)
                .map_err(|_| malformed("header is not a JSON object"))?;
        Ok(Self {
            header: header_json,
            payload: b64
                .decode(payload)
                .map_err(|_| malformed("payload is not base64url"))?,
            signature: b64
                .decode(signature)
                .map_err(|_| malformed("signature is not base64url"))?,
            signing_input: format!("{header}.{payload}"),
        })
    }

    /// Checks `alg` against `allowed`, then the signature with the key named by `kid` (or,
    /// without `kid`, any signing key of the set).
    fn verify(
        &self,
        jwks: &CoreJsonWebKeySet,
        allowed: &[CoreJwsSigningAlgorithm],
    ) -> Result<(), LogoutTokenError> {
        if self.header.contains_key("crit") {
            return Err(LogoutTokenError::UnsupportedCriticalHeader);
        }
        let alg_value = self.header.get("alg").cloned().unwrap_or_default();
        let unsupported = || {
            LogoutTokenError::UnsupportedAlgorithm(alg_value.to_string().chars().take(32).collect())
        };
        let alg: CoreJwsSigningAlgorithm =
            serde_json::from_value(alg_value.clone()).map_err(|_| unsupported())?;
        if !allowed.contains(&alg) {
            return Err(unsupported());
        }
        let kid = match self.header.get("kid") {
            None => None,
            Some(serde_json::Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(LogoutTokenError::Malformed("kid is not a string".into())),
        };
        let candidates: Vec<&CoreJsonWebKey> = jwks
            .keys()
            .iter()
            .filter(|key| kid.is_none_or(|kid| key.key_id().is_some_and(|k| **k == kid)))
            .filter(|key| {
                key.key_use()
                    .is_none_or(|u| *u == openidconnect::core::CoreJsonWebKeyUse::Signature)
            })
            .collect();
        if candidates.is_empty() {
            return Err(LogoutTokenError::UnknownKid(
                kid.map(|k| k.chars().take(64).collect()),
            ));
        }
        let verified = candidates.iter().any(|key| {
            key.verify_signature(&alg, self.signing_input.as_bytes(), &self.signature)
                .is_ok()
        });
        if verified {
            Ok(())
        } else {
            Err(LogoutTokenError::BadSignature)
        }
    }
}

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

enum IdTokenFailure {
    UnknownKey,
    Invalid(String),
}

fn token_error<RE: std::error::Error + 'static>(
    error: RequestTokenError<
        RE,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> OidcError {
    match error {
        RequestTokenError::ServerResponse(response) => OidcError::Refused(response.to_string()),
        RequestTokenError::Request(e) => OidcError::Unavailable(format!("token endpoint: {e}")),
        RequestTokenError::Parse(e, _) => {
            OidcError::Unavailable(format!("token endpoint answer: {e}"))
        }
        RequestTokenError::Other(e) => OidcError::Unavailable(format!("token endpoint: {e}")),
    }
}

fn expires_at(response: &CoreTokenResponse) -> Option<i64> {
    response.expires_in().map(|d| {
        chrono::Utc::now().timestamp() + i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
    })
}

fn tokens_from(
    response: &CoreTokenResponse,
    claims: &CoreIdTokenClaims,
    userinfo: Option<&CoreUserInfoClaims>,
    previous_refresh_token: Option<&str>,
) -> Tokens {
    let from_userinfo_name = userinfo
        .and_then(|u| u.name())
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_owned());
    let from_claims_name = claims
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_owned());
    let preferred_username = userinfo
        .and_then(|u| u.preferred_username())
        .or(claims.preferred_username())
        .map(|n| n.as_str().to_owned());
    let email = userinfo
        .and_then(|u| u.email())
        .or(claims.email())
        .map(|e| e.as_str().to_owned());
    Tokens {
        sub: claims.subject().as_str().to_owned(),
        name: from_userinfo_name
            .or(from_claims_name)
            .or(preferred_username),
        email,
        access_token: response.access_token().secret().clone(),
        access_token_expires_at: expires_at(response),
        refresh_token: response
            .refresh_token()
            .map(|t| t.secret().clone())
            .or_else(|| previous_refresh_token.map(str::to_owned)),
        id_token: response.id_token().map(|t| t.to_string()),
        sid: response.id_token().and_then(|t| sid_claim(&t.to_string())),
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

#[cfg(test)]
mod tests {
    use super::*;
    use oidc_core::jose::{Algorithm, SigningKey};
    use serde_json::json;
    use sha2::{Digest as _, Sha256};
    use std::str::FromStr as _;

    /// Nothing listens here: these tests never reach a provider.
    const ISSUER: &str = "http://127.0.0.1:1";
    const CLIENT_ID: &str = "webapp";
    const CLIENT_SECRET: &str = "client-secret-for-tests-0123456789";
    const ACCESS_TOKEN: &str = "access-token-1";
    const NONCE: &str = "nonce-1";

    struct Fixture {
        oidc: Oidc,
        provider: Provider,
        key: SigningKey,
    }

    fn fixture() -> Fixture {
        let settings = Settings::new(
            "http://127.0.0.1:3000",
            ISSUER,
            CLIENT_ID,
            CLIENT_SECRET,
            "0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        let oidc = Oidc::new(settings).unwrap();
        let key = SigningKey::generate(Algorithm::RS256).unwrap();
        let metadata: Metadata = serde_json::from_value(json!({
            "issuer": ISSUER,
            "authorization_endpoint": format!("{ISSUER}/oauth/authorize"),
            "token_endpoint": format!("{ISSUER}/oauth/token"),
            "userinfo_endpoint": format!("{ISSUER}/oauth/userinfo"),
            "jwks_uri": format!("{ISSUER}/oauth/jwks"),
            "end_session_endpoint": format!("{ISSUER}/oauth/logout"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            // A provider advertising HS256 too must not make HMAC tokens acceptable.
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "HS256"],
            "authorization_response_iss_parameter_supported": true,
        }))
        .unwrap();
        let jwks: CoreJsonWebKeySet =
            serde_json::from_value(json!({ "keys": [key.public_jwk()] })).unwrap();
        let provider = Provider {
            metadata,
            jwks: RwLock::new(Arc::new(jwks)),
            jwks_refetch: tokio::sync::Mutex::new(()),
            jwks_fetched_at: std::sync::Mutex::new(std::time::Instant::now()),
        };
        Fixture {
            oidc,
            provider,
            key,
        }
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn good_claims() -> serde_json::Value {
        let at_hash = oidc_core::jose::at_hash(
            &oidc_core::types::AccessToken::new(ACCESS_TOKEN),
            Algorithm::RS256,
        );
        json!({
            "iss": ISSUER,
            "sub": "user-1",
            "aud": CLIENT_ID,
            "iat": now(),
            "exp": now() + 300,
            "nonce": NONCE,
            "at_hash": at_hash,
            "name": "Alice Example",
            "email": "alice@example.com",
        })
    }

    fn with(
        mut claims: serde_json::Value,
        name: &str,
        value: serde_json::Value,
    ) -> serde_json::Value {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value;
        }
        claims
    }

    fn verify(fixture: &Fixture, token: &str) -> Result<CoreIdTokenClaims, IdTokenFailure> {
        let token = CoreIdToken::from_str(token)
            .map_err(|e| IdTokenFailure::Invalid(format!("unparseable: {e}")))?;
        fixture.oidc.verify_with_current_keys(
            &fixture.provider,
            &token,
            &AccessToken::new(ACCESS_TOKEN.to_owned()),
            Some(&Nonce::new(NONCE.to_owned())),
        )
    }

    fn assert_rejected(fixture: &Fixture, token: &str, what: &str) {
        match verify(fixture, token) {
            Err(IdTokenFailure::Invalid(_)) => {}
            Err(IdTokenFailure::UnknownKey) => panic!("{what}: reported as an unknown key"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
        let inner = Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(message)
            .finalize();
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize()
            .to_vec()
    }

    fn hs256_token(secret: &[u8], claims: &serde_json::Value) -> String {
        let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = b64(claims.to_string().as_bytes());
        let signature = hmac_sha256(secret, format!("{header}.{payload}").as_bytes());
        format!("{header}.{payload}.{}", b64(&signature))
    }

    #[test]
    fn a_correct_id_token_is_accepted_with_its_claims() {
        let fixture = fixture();
        let token = fixture.key.sign(&good_claims()).unwrap();
        let claims = verify(&fixture, &token).unwrap_or_else(|_| panic!("valid token refused"));
        assert_eq!(claims.subject().as_str(), "user-1");
        assert_eq!(
            claims.email().map(|e| e.as_str()),
            Some("alice@example.com")
        );
    }

    #[test]
    fn every_failed_check_rejects_the_token() {
        let fixture = fixture();
        let cases = [
            (
                "wrong iss",
                with(good_claims(), "iss", json!("http://127.0.0.1:2")),
            ),
            (
                "iss with trailing slash",
                with(good_claims(), "iss", json!(format!("{ISSUER}/"))),
            ),
            ("missing iss", with(good_claims(), "iss", json!(null))),
            (
                "aud of another client",
                with(good_claims(), "aud", json!("someone-else")),
            ),
            (
                "aud with an untrusted extra",
                with(good_claims(), "aud", json!([CLIENT_ID, "other"])),
            ),
            ("expired", with(good_claims(), "exp", json!(now() - 10))),
            (
                "issued in the future",
                with(good_claims(), "iat", json!(now() + 3600)),
            ),
            (
                "wrong nonce",
                with(good_claims(), "nonce", json!("nonce-2")),
            ),
            ("missing nonce", with(good_claims(), "nonce", json!(null))),
            (
                "wrong at_hash",
                with(good_claims(), "at_hash", json!("AAAAAAAAAAAAAAAAAAAAAA")),
            ),
            ("missing sub", with(good_claims(), "sub", json!(null))),
        ];
        for (what, claims) in cases {
            let token = fixture.key.sign(&claims).unwrap();
            assert_rejected(&fixture, &token, what);
        }
    }

    #[test]
    fn forged_signatures_are_rejected() {
        let fixture = fixture();
        let token = fixture.key.sign(&good_claims()).unwrap();

        // A changed payload under the original signature.
        let parts: Vec<&str> = token.split('.').collect();
        let forged_payload = b64(with(good_claims(), "sub", json!("admin"))
            .to_string()
            .as_bytes());
        assert_rejected(
            &fixture,
            &format!("{}.{forged_payload}.{}", parts[0], parts[2]),
            "payload swapped",
        );

        // `alg: none`.
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = b64(good_claims().to_string().as_bytes());
        assert_rejected(&fixture, &format!("{header}.{payload}."), "alg none");

        // HS256 keyed with the public key, and with the client secret, even though the
        // provider lists HS256.
        let public_pem = serde_json::to_string(&fixture.key.public_jwk()).unwrap();
        assert_rejected(
            &fixture,
            &hs256_token(public_pem.as_bytes(), &good_claims()),
            "HS256 with the public key",
        );
        assert_rejected(
            &fixture,
            &hs256_token(CLIENT_SECRET.as_bytes(), &good_claims()),
            "HS256 with the client secret",
        );

        // Garbage.
        for junk in ["", "a.b.c", "not-a-jwt", "e30.e30.e30"] {
            assert_rejected(&fixture, junk, junk);
        }
    }

    #[test]
    fn a_key_the_jwks_does_not_have_asks_for_a_refetch() {
        let fixture = fixture();
        let rotated = SigningKey::generate(Algorithm::RS256).unwrap();
        let token = rotated.sign(&good_claims()).unwrap();
        assert!(matches!(
            verify(&fixture, &token),
            Err(IdTokenFailure::UnknownKey)
        ));

        // Once the new key is in the set, the same token verifies.
        let jwks: CoreJsonWebKeySet = serde_json::from_value(
            json!({ "keys": [fixture.key.public_jwk(), rotated.public_jwk()] }),
        )
        .unwrap();
        fixture.provider.set_jwks(jwks);
        assert!(verify(&fixture, &token).is_ok());
    }

    #[test]
    fn backchannel_rewrites_only_the_issuers_origin() {
        let mut settings = Settings::new(
            "http://localhost:3000",
            "http://localhost:8000",
            CLIENT_ID,
            CLIENT_SECRET,
            "0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        settings.backchannel_url =
            Some(crate::config::BackchannelUrl::parse("http://provider:8000").unwrap());
        let oidc = Oidc::new(settings).unwrap();
        let rewrite = |u: &str| oidc.backchannel(&Url::parse(u).unwrap()).to_string();
        assert_eq!(
            rewrite("http://localhost:8000/oauth/token"),
            "http://provider:8000/oauth/token"
        );
        assert_eq!(
            rewrite("http://localhost:8000/api/profile?x=1"),
            "http://provider:8000/api/profile?x=1"
        );
        // Endpoints on other hosts are left alone.
        assert_eq!(
            rewrite("https://api.example/profile"),
            "https://api.example/profile"
        );
        assert_eq!(
            rewrite("http://localhost:8001/oauth/token"),
            "http://localhost:8001/oauth/token"
        );
    }

    #[test]
    fn authorization_requests_carry_pkce_state_nonce_and_scopes() {
        let fixture = fixture();
        let start = fixture.oidc.start_authorization(&fixture.provider);
        let query: std::collections::HashMap<String, String> =
            start.url.query_pairs().into_owned().collect();
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
        assert_eq!(query["state"], start.state);
        assert_eq!(query["nonce"], start.nonce);
        assert_eq!(query["code_challenge_method"], "S256");
        let challenge = b64(&Sha256::digest(start.pkce_verifier.as_bytes()));
        assert_eq!(query["code_challenge"], challenge);
        // Fresh values every time.
        let again = fixture.oidc.start_authorization(&fixture.provider);
        assert_ne!(again.state, start.state);
        assert_ne!(again.nonce, start.nonce);
        assert_ne!(again.pkce_verifier, start.pkce_verifier);
        assert!(fixture.oidc.requires_iss_parameter(&fixture.provider));
    }

    #[test]
    fn logout_url_names_the_token_client_and_return_address() {
        let fixture = fixture();
        let url = fixture
            .oidc
            .logout_url(&fixture.provider, Some("id.token.value"))
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
