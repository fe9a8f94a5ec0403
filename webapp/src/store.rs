//! The web app's own small SQLite database: the sessions it can end (sign-out, back-channel
//! logout) and the `jti` of the logout tokens it accepted.
//!
//! The cookie carries a random 256-bit session id; only its SHA-256 is stored, so a copy of the
//! database does not give anyone a cookie. The tokens stay in the encrypted cookie: the row only
//! says whether the session still counts, which is all a copied cookie must be checked against.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _, embed_migrations};
use rand::RngCore as _;
use servicekit::metrics::PoolMetrics;
use sha2::{Digest as _, Sha256};

/// The migrations of `webapp/migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How long a connection waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections in the pool: the queries are single-row lookups and updates.
const POOL_SIZE: u32 = 4;

mod schema {
    diesel::table! {
        sessions (id_hash) {
            id_hash -> Text,
            sub -> Text,
            sid -> Nullable<Text>,
            created_at -> BigInt,
            expires_at -> BigInt,
            ended_at -> Nullable<BigInt>,
        }
    }

    diesel::table! {
        seen_logout_tokens (jti) {
            jti -> Text,
            keep_until -> BigInt,
        }
    }
}

use schema::{seen_logout_tokens, sessions};

/// A database failure: logged, answered 503, never shown in detail.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// No connection could be taken from the pool.
    #[error("no database connection available: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// The database could not be opened or migrated.
    #[error("cannot open the database: {0}")]
    Open(String),
    /// The blocking task running the query failed.
    #[error("database task failed: {0}")]
    Task(String),
}

#[derive(Debug)]
struct ConnectionSettings;

/// Counts (and logs) the pool's failures to open a connection, which r2d2 otherwise only logs.
#[derive(Debug, Clone, Default)]
struct ConnectErrors(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl diesel::r2d2::HandleError<diesel::r2d2::Error> for ConnectErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(%error, "cannot open a database connection");
    }
}

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for ConnectionSettings {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // WAL is set once, before the pool opens (see `Store::open`): switching to it here,
        // on r2d2's threads opening connections together, could fail with "database is locked".
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {};
             PRAGMA synchronous = NORMAL;",
            BUSY_TIMEOUT.as_millis()
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// A new session's row.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = sessions)]
struct NewSession<'a> {
    id_hash: &'a str,
    sub: &'a str,
    sid: Option<&'a str>,
    created_at: i64,
    expires_at: i64,
}

/// A fresh random session id (256 bits, base64url) for the cookie.
pub fn new_session_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored for a session id: its SHA-256, base64url.
pub fn session_id_hash(session_id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(session_id.as_bytes()))
}

/// The database handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool<ConnectionManager<SqliteConnection>>,
    metrics: PoolMetrics,
    connect_errors: ConnectErrors,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating it and its folder if needed) the database and applies the migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Open(format!("cannot create folder {}: {e}", dir.display()))
            })?;
        }
        // The journal mode is stored in the file: one connection switches it before the pool
        // opens several at once.
        SqliteConnection::establish(&path.to_string_lossy())
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?
            .batch_execute(&format!(
                "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL;",
                BUSY_TIMEOUT.as_millis()
            ))
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        let manager = ConnectionManager::<SqliteConnection>::new(path.to_string_lossy());
        let connect_errors = ConnectErrors::default();
        let pool = Pool::builder()
            .error_handler(Box::new(connect_errors.clone()))
            .max_size(POOL_SIZE)
            .connection_timeout(Duration::from_secs(10))
            .test_on_check_out(false)
            .connection_customizer(Box::new(ConnectionSettings))
            .build(manager)
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        let mut conn = pool.get()?;
        conn.run_pending_migrations(MIGRATIONS)
            .map_err(|e| StoreError::Open(format!("migrations: {e}")))?;
        Ok(Self {
            pool,
            metrics: PoolMetrics::new(POOL_SIZE),
            connect_errors,
        })
    }

    /// How many times the pool failed to open a connection since the store was opened.
    pub fn connect_errors(&self) -> u64 {
        self.connect_errors
            .0
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The pool's metrics: connections in use, its size, and the waits for a connection.
    pub fn metrics(&self) -> &PoolMetrics {
        &self.metrics
    }

    async fn run<T: Send + 'static>(
        &self,
        query: impl FnOnce(&mut SqliteConnection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = self.pool.clone();
        let metrics = self.metrics.clone();
        let since = std::time::Instant::now();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            metrics.waited(since);
            let _in_use = metrics.in_use();
            query(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Records a new session of `sub` (with the provider's session id `sid`, if it sent one).
    pub async fn create(
        &self,
        session_id: &str,
        sub: &str,
        sid: Option<&str>,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let (id_hash, sub, sid) = (
            session_id_hash(session_id),
            sub.to_owned(),
            sid.map(str::to_owned),
        );
        self.run(move |conn| {
            diesel::insert_into(sessions::table)
                .values(NewSession {
                    id_hash: &id_hash,
                    sub: &sub,
                    sid: sid.as_deref(),
                    created_at: now,
                    expires_at,
                })
                .execute(conn)?;
            Ok(())
        })
        .await
    }

    /// Whether the session still counts: its row exists, was not ended and has not expired.
    pub async fn is_active(&self, session_id: &str, now: i64) -> Result<bool, StoreError> {
        let id_hash = session_id_hash(session_id);
        self.run(move |conn| {
            let found: Option<(Option<i64>, i64)> = sessions::table
                .filter(sessions::id_hash.eq(&id_hash))
                .select((sessions::ended_at, sessions::expires_at))
                .get_result(conn)
                .optional()?;
            Ok(matches!(found, Some((None, expires_at)) if expires_at > now))
        })
        .await
    }

    /// Moves an active session's expiry (the sliding session).
    pub async fn extend(&self, session_id: &str, expires_at: i64) -> Result<(), StoreError> {
        let id_hash = session_id_hash(session_id);
        self.run(move |conn| {
            diesel::update(
                sessions::table
                    .filter(sessions::id_hash.eq(&id_hash))
                    .filter(sessions::ended_at.is_null()),
            )
            .set(sessions::expires_at.eq(expires_at))
            .execute(conn)?;
            Ok(())
        })
        .await
    }

    /// Ends one session (sign-out).
    pub async fn end(&self, session_id: &str, now: i64) -> Result<(), StoreError> {
        let id_hash = session_id_hash(session_id);
        self.run(move |conn| {
            diesel::update(
                sessions::table
                    .filter(sessions::id_hash.eq(&id_hash))
                    .filter(sessions::ended_at.is_null()),
            )
            .set(sessions::ended_at.eq(now))
            .execute(conn)?;
            Ok(())
        })
        .await
    }

    /// A back-channel logout: remembers `jti` until `keep_until` and ends the sessions named by
    /// `sid` and/or `sub` (both given: the sessions matching both), in one transaction, so a
    /// failure leaves the token retryable. `None` when `jti` was seen before (a replay): then
    /// nothing is ended. Otherwise the number of sessions ended.
    pub async fn back_channel_logout(
        &self,
        jti: &str,
        keep_until: i64,
        sub: Option<&str>,
        sid: Option<&str>,
        now: i64,
    ) -> Result<Option<usize>, StoreError> {
        let (jti, sub, sid) = (
            jti.to_owned(),
            sub.map(str::to_owned),
            sid.map(str::to_owned),
        );
        self.run(move |conn| {
            conn.immediate_transaction(|conn| {
                // A row whose time is over is the sweep's, not a replay: the claim checks
                // already refuse any token that old.
                diesel::delete(
                    seen_logout_tokens::table
                        .filter(seen_logout_tokens::jti.eq(&jti))
                        .filter(seen_logout_tokens::keep_until.lt(now)),
                )
                .execute(conn)?;
                let inserted = diesel::insert_or_ignore_into(seen_logout_tokens::table)
                    .values((
                        seen_logout_tokens::jti.eq(&jti),
                        seen_logout_tokens::keep_until.eq(keep_until),
                    ))
                    .execute(conn)?;
                if inserted == 0 {
                    return Ok(None);
                }
                let mut query = diesel::update(sessions::table)
                    .filter(sessions::ended_at.is_null())
                    .into_boxed();
                if let Some(sub) = &sub {
                    query = query.filter(sessions::sub.eq(sub));
                }
                if let Some(sid) = &sid {
                    query = query.filter(sessions::sid.eq(sid));
                }
                if sub.is_none() && sid.is_none() {
                    // The claim checks never let this through; end nothing rather than all.
                    return Ok(Some(0));
                }
                Ok(Some(query.set(sessions::ended_at.eq(now)).execute(conn)?))
            })
        })
        .await
    }

    /// Deletes up to `batch` ended or expired sessions and up to `batch` seen-jti rows whose
    /// time is over; returns how many rows went.
    pub async fn sweep(&self, now: i64, batch: i64) -> Result<usize, StoreError> {
        self.run(move |conn| {
            let ended = sessions::table
                .filter(
                    sessions::ended_at
                        .is_not_null()
                        .or(sessions::expires_at.le(now)),
                )
                .select(sessions::id_hash)
                .limit(batch);
            let sessions_gone = diesel::delete(
                sessions::table.filter(sessions::id_hash.eq_any(ended.load::<String>(conn)?)),
            )
            .execute(conn)?;
            let old = seen_logout_tokens::table
                .filter(seen_logout_tokens::keep_until.lt(now))
                .select(seen_logout_tokens::jti)
                .limit(batch);
            let jtis_gone = diesel::delete(
                seen_logout_tokens::table
                    .filter(seen_logout_tokens::jti.eq_any(old.load::<String>(conn)?)),
            )
            .execute(conn)?;
            Ok(sessions_gone + jtis_gone)
        })
        .await
    }

    /// The subjects of the sessions that still count, for operators and tests.
    pub async fn active_subjects(&self, now: i64) -> Result<Vec<String>, StoreError> {
        self.run(move |conn| {
            Ok(sessions::table
                .filter(sessions::ended_at.is_null())
                .filter(sessions::expires_at.gt(now))
                .select(sessions::sub)
                .distinct()
                .load(conn)?)
        })
        .await
    }

    /// Rows in (sessions, seen logout tokens), for tests and the sweep's log.
    pub async fn counts(&self) -> Result<(i64, i64), StoreError> {
        self.run(|conn| {
            let sessions = sessions::table.count().get_result(conn)?;
            let jtis = seen_logout_tokens::table.count().get_result(conn)?;
            Ok((sessions, jtis))
        })
        .await
    }

    /// Deletes in the background, every `every`, the rows [`Store::sweep`] finds, in batches
    /// (looping while a batch was full). Stops when the runtime does.
    pub fn spawn_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        const BATCH: i64 = 500;
        let store = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            loop {
                ticker.tick().await;
                loop {
                    let now = oidc_core::unix_now();
                    match store.sweep(now, BATCH).await {
                        Ok(gone) if gone as i64 >= BATCH => continue,
                        Ok(_) => break,
                        Err(error) => {
                            tracing::warn!(%error, "session sweep failed");
                            break;
                        }
                    }
                }
            }
        })
    }
}

/// `WEBAPP_DATABASE_URL`: a path, or `sqlite://` and a path. Any other scheme is an error.
pub fn parse_database_url(value: &str) -> Result<PathBuf, String> {
    let value = value.trim();
    let path = if let Some(rest) = value.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = value.strip_prefix("sqlite:") {
        rest
    } else if let Some((scheme, _)) = value.split_once("://") {
        return Err(format!(
            "only SQLite is supported (a path or sqlite://path), not {:?}",
            scheme.chars().take(32).collect::<String>()
        ));
    } else {
        value
    };
    if path.is_empty() {
        return Err("names no file".into());
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_paths_or_sqlite() {
        assert_eq!(
            parse_database_url("./data/webapp.db").unwrap(),
            PathBuf::from("./data/webapp.db")
        );
        assert_eq!(
            parse_database_url("sqlite:///var/lib/webapp.db").unwrap(),
            PathBuf::from("/var/lib/webapp.db")
        );
        assert!(parse_database_url("postgres://db/webapp").is_err());
        assert!(parse_database_url("sqlite://").is_err());
    }

    /// r2d2 opens the pool's connections on several threads at once; none of them may fail on
    /// a fresh file (switching a new database to WAL while another connection opens it).
    #[test]
    fn a_fresh_database_opens_every_pooled_connection_without_an_error() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("w.db")).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while store.pool.state().connections < POOL_SIZE && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(store.pool.state().connections, POOL_SIZE);
            assert_eq!(store.connect_errors(), 0);
        }
    }

    #[tokio::test]
    async fn sessions_end_by_id_sub_and_sid_and_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("w.db")).unwrap();
        for (id, sub, sid) in [
            ("a", "u1", Some("s1")),
            ("b", "u1", Some("s2")),
            ("c", "u2", Some("s1")),
            ("d", "u1", None),
        ] {
            store.create(id, sub, sid, 100, 1000).await.unwrap();
        }
        assert!(store.is_active("a", 200).await.unwrap());
        assert!(!store.is_active("a", 1000).await.unwrap(), "expired");
        assert!(!store.is_active("zz", 200).await.unwrap(), "no row");

        // sub and sid together: only the sessions matching both.
        let ended = store
            .back_channel_logout("j1", 500, Some("u1"), Some("s1"), 200)
            .await
            .unwrap();
        assert_eq!(ended, Some(1));
        assert!(!store.is_active("a", 200).await.unwrap());
        assert!(store.is_active("c", 200).await.unwrap());
        // A replayed jti ends nothing.
        assert_eq!(
            store
                .back_channel_logout("j1", 500, Some("u1"), None, 200)
                .await
                .unwrap(),
            None
        );
        assert!(store.is_active("b", 200).await.unwrap());
        // sub alone: every session of u1.
        assert_eq!(
            store
                .back_channel_logout("j2", 500, Some("u1"), None, 200)
                .await
                .unwrap(),
            Some(2)
        );
        assert!(store.is_active("c", 200).await.unwrap());
        store.end("c", 200).await.unwrap();
        assert!(!store.is_active("c", 200).await.unwrap());

        assert_eq!(store.counts().await.unwrap(), (4, 2));
        assert_eq!(
            store.sweep(300, 2).await.unwrap(),
            2,
            "batches of 2 sessions"
        );
        store.sweep(600, 100).await.unwrap();
        assert_eq!(store.counts().await.unwrap(), (0, 0));
    }
}
