//! The database: a pool of SQLite connections tuned for concurrent use, embedded migrations,
//! and the queries of each table in its own module.
//!
//! Lookups by key use `get_result`, not `first`: `first` binds `LIMIT ?`, and SQLite re-plans a
//! statement whose LIMIT binding changes, which defeats the prepared-statement cache (measured:
//! most of the CPU of a userinfo request went to recompiling the token lookup).

pub mod clients;
pub mod grants;
pub mod keys;
pub mod schema;
pub mod users;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use diesel::connection::SimpleConnection as _;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _, embed_migrations};

/// The migrations of `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// The connection type every query function takes.
pub type Conn = SqliteConnection;

/// How long a connection waits for another writer before giving up. Writers hold the lock for
/// milliseconds, so reaching this means something is badly wrong, not ordinary contention.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A database failure. Never shown to users: it becomes a 500 page and a log line.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// No connection could be taken from the pool.
    #[error("no database connection available: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// The blocking task running the query was cancelled or panicked.
    #[error("database task failed: {0}")]
    Task(String),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A stored value could not be understood (e.g. malformed JSON in a column).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

#[derive(Debug)]
struct ConnectionSettings;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for ConnectionSettings {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // busy_timeout first, so that switching to WAL also waits instead of failing.
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {};
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;",
            BUSY_TIMEOUT.as_millis()
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Handle to the connection pool; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager<SqliteConnection>>,
    /// One permit per pooled connection: callers wait here, on the executor, instead of each
    /// holding a blocking thread that waits for a connection (threads piled up under load).
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating if needed) the database file and its folder, and builds the pool.
    pub fn open(path: &Path, pool_size: u32) -> Result<Self, StorageError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StorageError::Task(format!("cannot create folder {}: {e}", dir.display()))
            })?;
        }
        let manager = ConnectionManager::<SqliteConnection>::new(path.to_string_lossy());
        let pool = Pool::builder()
            .max_size(pool_size)
            .connection_timeout(Duration::from_secs(10))
            // Connections to a local file do not go stale; skip the `SELECT 1` per checkout.
            .test_on_check_out(false)
            .connection_customizer(Box::new(ConnectionSettings))
            .build(manager)?;
        Ok(Self {
            pool,
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(pool_size.max(1) as usize)),
        })
    }

    /// Applies pending migrations; called at start, before the port accepts requests.
    pub fn migrate(&self) -> Result<(), StorageError> {
        let mut conn = self.pool.get()?;
        // Under the write lock, so two processes starting on a fresh database do not both
        // try to create the tables.
        conn.immediate_transaction(|conn| {
            conn.run_pending_migrations(MIGRATIONS)
                .map(|_| ())
                .map_err(|e| StorageError::Migration(e.to_string()))
        })
    }

    /// A pooled connection for synchronous callers (the CLI, start-up).
    pub fn conn(
        &self,
    ) -> Result<PooledConnection<ConnectionManager<SqliteConnection>>, StorageError> {
        Ok(self.pool.get()?)
    }

    /// Runs diesel work on a blocking thread, never on the async executor.
    pub async fn run<F, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| StorageError::Task(e.to_string()))?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(StorageError::from)?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))?
    }

    /// Runs several statements as one write transaction on a blocking thread.
    ///
    /// The transaction starts with `BEGIN IMMEDIATE`: it takes the write lock up front (waiting
    /// up to the busy timeout), so it can never fail half-way with `database is locked` the
    /// way a read transaction upgraded to a write does.
    pub async fn write<F, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
    {
        self.run(move |conn| conn.immediate_transaction(f)).await
    }
}

/// Current time in unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A fresh random identifier: 128 bits, base64url without padding.
pub fn new_id() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a secret, base64url without padding: the only form in which secrets, codes and
/// tokens are stored.
pub fn hash_secret(secret: &str) -> String {
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// Whether `error` is a unique-constraint violation (e.g. a username already taken).
pub fn is_unique_violation(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_hashes_match_the_protocol_crate() {
        // The endpoints hash presented tokens with oidc-core; the storage must agree byte for byte.
        for secret in ["", "abc", "a-much-longer-secret-with-symbols-_~."] {
            assert_eq!(
                hash_secret(secret),
                oidc_core::types::TokenHash::of(secret).as_str()
            );
        }
    }

    #[test]
    fn ids_are_128_bit_base64url() {
        let id = new_id();
        assert_eq!(id.len(), 22);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(id, new_id());
    }
}
