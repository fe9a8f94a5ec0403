//! The state every request handler shares, built once at start.

use std::sync::Arc;

use oidc_core::types::IssuerUrl;

use crate::config::Settings;
use crate::identity::password::PasswordHasher;
use crate::identity::throttle::LoginThrottle;
use crate::key_ring::KeyStore;
use crate::metrics::Metrics;
use crate::pages::Templates;
use crate::storage::Db;

/// Shared state, registered as `web::Data<AppState>`; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The settings the provider started with.
    pub settings: Arc<Settings>,
    /// The database pool.
    pub db: Db,
    /// The page templates, parsed once.
    pub templates: Templates,
    /// bcrypt, off the executor and bounded.
    pub hasher: PasswordHasher,
    /// Failed-login counters.
    pub throttle: LoginThrottle,
    /// The signing keys, parsed once, and the cached JWKS.
    pub keys: KeyStore,
    /// The discovery document, serialized on first use: it depends only on the settings.
    pub discovery: Arc<std::sync::OnceLock<actix_web::web::Bytes>>,
    /// What `/metrics` reports (counted whether or not it is served).
    pub metrics: Metrics,
}

impl AppState {
    /// The issuer identifier, exactly as configured.
    pub fn issuer(&self) -> anyhow::Result<IssuerUrl> {
        Ok(IssuerUrl::parse(&self.settings.issuer)?)
    }
}
