//! Discovery: the provider's metadata and keys, fetched once and retried in the background with
//! exponential backoff until the provider answers.

use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, EndSessionUrl, JsonWebKeySetUrl, ProviderMetadata, RevocationUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{Oidc, OidcError};

/// First wait between discovery attempts; doubled after each failure.
const DISCOVERY_FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between discovery attempts.
const DISCOVERY_MAX_BACKOFF: Duration = Duration::from_secs(15);
/// An unknown key id makes the JWKS be fetched again at most this often (per provider).
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

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

/// The provider as discovered: metadata (authorization and logout endpoints as browsers reach
/// them; token, userinfo and JWKS endpoints as this server reaches them) and the current JWKS.
#[derive(Debug)]
pub struct Provider {
    metadata: Metadata,
    jwks: RwLock<Arc<CoreJsonWebKeySet>>,
    jwks_refetch: tokio::sync::Mutex<()>,
    jwks_fetched_at: std::sync::Mutex<Instant>,
}

impl Provider {
    /// A provider with `metadata` (endpoints already rewritten) and its current key set.
    pub(super) fn new(metadata: Metadata, jwks: CoreJsonWebKeySet) -> Self {
        Self {
            metadata,
            jwks: RwLock::new(Arc::new(jwks)),
            jwks_refetch: tokio::sync::Mutex::new(()),
            jwks_fetched_at: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// The discovery document, with server-side endpoints rewritten to the back-channel.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Whether the last JWKS fetch is long enough ago for an unauthenticated request (a logout
    /// token with an unknown `kid`) to cause another.
    pub(super) fn may_refetch_jwks(&self) -> bool {
        let fetched_at = match self.jwks_fetched_at.lock() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        };
        fetched_at.elapsed() >= JWKS_REFETCH_INTERVAL
    }

    /// The key set as last fetched.
    pub(super) fn jwks(&self) -> Arc<CoreJsonWebKeySet> {
        match self.jwks.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(super) fn set_jwks(&self, jwks: CoreJsonWebKeySet) {
        match self.jwks_fetched_at.lock() {
            Ok(mut guard) => *guard = Instant::now(),
            Err(poisoned) => *poisoned.into_inner() = Instant::now(),
        }
        let new = Arc::new(jwks);
        match self.jwks.write() {
            Ok(mut guard) => *guard = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

impl Oidc {
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
        self.warn_about_unsupported_scopes(&provider);
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

    async fn discover(&self) -> Result<Provider, OidcError> {
        let issuer = &self.settings.issuer;
        let well_known = issuer
            .join_path(".well-known/openid-configuration")
            .map_err(|e| OidcError::Misconfigured(format!("discovery URL: {e}")))?;
        let body = self.get_json_bytes(&self.backchannel(&well_known)).await?;
        let metadata: Metadata = serde_json::from_slice(&body)
            .map_err(|e| OidcError::Unavailable(format!("discovery document: {e}")))?;
        // OIDC Discovery §4.3: the issuer must be exactly the one configured.
        if metadata.issuer().as_str() != issuer.as_str() {
            return Err(OidcError::Misconfigured(format!(
                "OIDC_ISSUER is {:?} but the provider announces {:?}",
                issuer.as_str(),
                metadata.issuer().as_str()
            )));
        }
        let metadata = self.rewrite_server_side_endpoints(metadata)?;
        let jwks = self.fetch_jwks(metadata.jwks_uri()).await?;
        Ok(Provider::new(metadata, jwks))
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

    /// Fetches the key set again (one request at a time; a request that waited for another's
    /// fetch uses its result).
    pub(super) async fn refetch_jwks(&self, provider: &Provider) -> Result<(), OidcError> {
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
}
