//! The key ring: the signing keys in memory, parsed once, the active key per algorithm, and the JWKS
//! (value and JSON) ready to serve. Changes made by this process take effect at once; changes
//! made by another process on the same database (the CLI) are noticed by a periodic check.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use oidc_core::jose::{Algorithm, SigningKey};
use oidc_core::jwk::{Jwk, JwkSet};

use crate::storage::audit::{self, Event, Kind, Outcome};
use crate::storage::signing_keys::{self as stored, KeyRow, KeyStatus, RetireOutcome};
use crate::storage::{Conn, Db, StorageError};

/// The algorithms the provider always has an active key for.
pub const ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

struct Loaded {
    active: HashMap<Algorithm, Arc<SigningKey>>,
    jwks: JwkSet,
    jwks_json: Arc<str>,
    fingerprint: Vec<(String, KeyStatus)>,
}

/// The key set shared by every request; cheap to clone.
#[derive(Clone)]
pub struct KeyStore {
    db: Db,
    loaded: Arc<RwLock<Arc<Loaded>>>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let loaded = self.current();
        f.debug_struct("KeyStore")
            .field("published", &loaded.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Generates and stores an active key for every algorithm that has none (first start).
/// Generation happens outside the write transaction, which only checks and inserts.
pub fn ensure_active_keys(conn: &mut Conn) -> anyhow::Result<()> {
    for alg in ALGORITHMS {
        if !stored::has_active(conn, alg)? {
            let key = SigningKey::generate(alg)
                .with_context(|| format!("generating a {alg} signing key"))?;
            if stored::insert_if_no_active(conn, &key)? {
                tracing::info!(kid = key.kid(), %alg, "generated a signing key");
            }
        }
    }
    Ok(())
}

/// Generates a key for `alg` and makes it the active one, recording who did it (`actor`, an
/// admin's username or `cli`) in the same transaction; returns its kid. The key is generated
/// before the transaction, which only swaps the keys.
pub fn rotate_blocking(conn: &mut Conn, alg: Algorithm, actor: &str) -> anyhow::Result<String> {
    let key =
        SigningKey::generate(alg).with_context(|| format!("generating a {alg} signing key"))?;
    let event = Event::new(Kind::KeyRotated, Outcome::Succeeded)
        .with_actor(actor)
        .with_detail(&format!("{alg} {}", key.kid()));
    crate::storage::write_transaction(conn, |conn| -> Result<(), StorageError> {
        stored::rotate(conn, &key)?;
        audit::record(conn, &event)?;
        Ok(())
    })?;
    Ok(key.kid().to_owned())
}

fn load(conn: &mut Conn) -> anyhow::Result<Loaded> {
    let rows = stored::published(conn)?;
    let fingerprint = stored::fingerprint(conn)?;
    let mut active = HashMap::new();
    let mut keys = Vec::new();
    for row in &rows {
        let jwk: Jwk = serde_json::from_str(&row.public_jwk)
            .with_context(|| format!("stored public key {} is not a JWK", row.kid))?;
        keys.push(jwk);
        if row.status == KeyStatus::Active {
            let key = SigningKey::from_pem(row.alg, &row.private_pem)
                .with_context(|| format!("stored key {} cannot be read", row.kid))?;
            active.insert(row.alg, Arc::new(key));
        }
    }
    let jwks = JwkSet::new(keys);
    let jwks_json = serde_json::to_string(&jwks).context("serializing the JWKS")?;
    Ok(Loaded {
        active,
        jwks,
        jwks_json: jwks_json.into(),
        fingerprint,
    })
}

impl KeyStore {
    /// Makes sure every algorithm has an active key, then loads the published keys.
    pub async fn open(db: Db) -> anyhow::Result<Self> {
        let loaded = db
            .run(|conn| -> anyhow::Result<Loaded> {
                ensure_active_keys(conn)?;
                load(conn)
            })
            .await?;
        Ok(Self {
            db,
            loaded: Arc::new(RwLock::new(Arc::new(loaded))),
        })
    }

    fn current(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The key that signs new tokens of `alg`.
    pub fn active(&self, alg: Algorithm) -> Option<Arc<SigningKey>> {
        self.current().active.get(&alg).cloned()
    }

    /// The published keys (active and rotated, not retired).
    pub fn jwks(&self) -> JwkSet {
        self.current().jwks.clone()
    }

    /// The published keys as the JSON the JWKS endpoint serves (serialized once per change).
    pub fn jwks_json(&self) -> String {
        self.current().jwks_json.to_string()
    }

    /// Reads the keys from the database again.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let loaded = self.db.run(load).await?;
        *self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(loaded);
        Ok(())
    }

    /// Reloads when the stored keys differ from the loaded ones; returns whether it did.
    pub async fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let fingerprint = self.db.run(stored::fingerprint).await?;
        if fingerprint == self.current().fingerprint {
            return Ok(false);
        }
        self.reload().await?;
        tracing::info!("signing keys changed in the database; reloaded");
        Ok(true)
    }

    /// Checks for changes made by other processes every `every`, for as long as the runtime
    /// runs.
    pub fn spawn_watcher(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            loop {
                interval.tick().await;
                if let Err(error) = store.reload_if_changed().await {
                    tracing::warn!(error = ?error, "checking the signing keys failed");
                }
            }
        })
    }

    /// Every stored key, newest first (for the admin site).
    pub async fn list(&self) -> Result<Vec<KeyRow>, StorageError> {
        self.db.run(stored::list).await
    }

    /// Makes a new key active for `alg`; the old one stays published. Returns the new kid.
    pub async fn rotate(&self, alg: Algorithm) -> anyhow::Result<String> {
        self.rotate_as(alg, "system").await
    }

    /// Like [`rotate`](Self::rotate), recording `actor` (an administrator) as who rotated.
    pub async fn rotate_as(&self, alg: Algorithm, actor: &str) -> anyhow::Result<String> {
        let actor = actor.to_owned();
        let kid = self
            .db
            .run(move |conn| rotate_blocking(conn, alg, &actor))
            .await?;
        self.reload().await?;
        Ok(kid)
    }

    /// Removes a published key from the JWKS.
    pub async fn retire(&self, kid: &str) -> anyhow::Result<RetireOutcome> {
        let kid = kid.to_owned();
        let outcome = self.db.run(move |conn| stored::retire(conn, &kid)).await?;
        self.reload().await?;
        Ok(outcome)
    }
}
