//! The database: a pool of SQLite or PostgreSQL connections behind one connection type,
//! embedded migrations, and the queries of each table in its own module.
//!
//! Lookups by key use `get_result`, not `first`: `first` binds `LIMIT ?`, and SQLite re-plans a
//! statement whose LIMIT binding changes, which defeats the prepared-statement cache (measured:
//! most of the CPU of a userinfo request went to recompiling the token lookup).

pub mod audit;
pub mod audit_query;
pub mod clients;
pub mod columns;
pub mod factors;
pub mod grants;
pub mod login_throttle;
pub mod logout_deliveries;
pub mod metrics;
pub mod passkeys;
pub mod postgres;
pub mod recovery_codes;
pub mod schema;
pub mod sessions;
pub mod signing_keys;
pub mod sweep;
pub mod totp;
pub mod users;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use diesel::Connection as _;
use diesel::connection::{AnsiTransactionManager, SimpleConnection as _, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _, embed_migrations};
use tokio::sync::Semaphore;

/// The SQLite migrations of `migrations/sqlite/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

/// Names (suffixes) of the migrations that [`Db::migrate`] completes with Rust code.
const INITIAL_MIGRATION: &str = "_initial";
const USER_KEYS_MIGRATION: &str = "_user_keys";

/// The connection type every query function takes: SQLite or PostgreSQL. Queries are written
/// once; the few statements that differ match on the variant.
#[derive(diesel::MultiConnection)]
pub enum Conn {
    /// A SQLite database file.
    Sqlite(SqliteConnection),
    /// A PostgreSQL server.
    Pg(PgConnection),
}

/// How long a connection waits for another writer before giving up. Writers hold the lock for
/// milliseconds, so reaching this means something is badly wrong, not ordinary contention.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long taking a pooled connection may wait (a lost PostgreSQL server fails this fast).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// A database failure. Never shown to users: it becomes a 500 page and a log line.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// No connection could be taken from the pool.
    #[error("no database connection available: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// The database could not be opened.
    #[error("cannot open the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
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

/// Where the database is, read from `PROVIDER_DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A SQLite file (a path, or `sqlite://path`, `sqlite:path`).
    Sqlite(PathBuf),
    /// A PostgreSQL server (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl Target {
    /// Reads a database URL. The error does not echo it, as it may hold a password.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        let Some((scheme, _)) = url.split_once(':') else {
            return Ok(Self::Sqlite(PathBuf::from(url)));
        };
        // RFC 3986 scheme syntax; one letter is a Windows drive (`C:\data\provider.db`).
        let is_scheme = scheme.len() > 1
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !is_scheme {
            return Ok(Self::Sqlite(PathBuf::from(url)));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(Self::Postgres(url.to_owned())),
            other => Err(format!(
                "the scheme {other:?} is not supported; set postgres://user:password@host/database \
                 or the path of a SQLite database file (or sqlite://path)"
            )),
        }
    }

    /// The URL without its password, for messages and logs.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url) => match url::Url::parse(url) {
                Ok(mut parsed) => {
                    if parsed.password().is_some() {
                        let _ = parsed.set_password(Some("***"));
                    }
                    parsed.to_string()
                }
                Err(_) => "a postgres:// URL".to_owned(),
            },
        }
    }
}

fn sqlite_settings(conn: &mut SqliteConnection) -> Result<(), diesel::result::Error> {
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {};",
        BUSY_TIMEOUT.as_millis()
    ))?;
    // Switching a new file to WAL can fail at once with "database is locked" while another
    // process switches it too (SQLite does not wait on the busy handler there): retry for as
    // long as a busy write would wait.
    let started = std::time::Instant::now();
    loop {
        match conn.batch_execute("PRAGMA journal_mode = WAL;") {
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("locked") && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other?,
        }
    }
    conn.batch_execute(
        "PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;",
    )
}

/// Opens [`Conn`]s of one [`Target`] for the pool; a broken connection (a PostgreSQL server
/// that went away) is dropped on return and replaced by a new one when next needed.
#[derive(Debug)]
pub struct Manager {
    target: Target,
}

impl Manager {
    fn open(&self) -> Result<Conn, StorageError> {
        Ok(match &self.target {
            Target::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
                sqlite_settings(&mut conn)?;
                Conn::Sqlite(conn)
            }
            Target::Postgres(url) => Conn::Pg(postgres::connect(url)?),
        })
    }
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Conn, Self::Error> {
        self.open().map_err(|error| match error {
            StorageError::Connect(e) => diesel::r2d2::Error::ConnectionError(e),
            StorageError::Query(e) => diesel::r2d2::Error::QueryError(e),
            other => diesel::r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(
                other.to_string(),
            )),
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// A pooled connection.
pub type PooledConn = PooledConnection<Manager>;

/// Handle to the connection pool (and, on SQLite, the writer connection); cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    /// One permit per pooled connection: callers wait here, on the executor, instead of each
    /// holding a blocking thread that waits for a connection (threads piled up under load).
    permits: Arc<Semaphore>,
    /// SQLite's writer thread; `None` on PostgreSQL, where writes take pooled connections.
    writer: Option<Arc<writer::Writer>>,
    metrics: metrics::DbMetrics,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the database at `url` (see [`Target::parse`]) and builds the pool: a SQLite file is
    /// created with its folder if needed; a PostgreSQL server must answer now.
    pub fn open(url: &str, pool_size: u32) -> Result<Self, StorageError> {
        let target = Target::parse(url).map_err(StorageError::Task)?;
        let manager = Manager {
            target: target.clone(),
        };
        let builder = Pool::builder()
            .max_size(pool_size)
            .connection_timeout(CONNECTION_TIMEOUT);
        let (pool, writer) = match &target {
            Target::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StorageError::Task(format!("cannot create folder {}: {e}", dir.display()))
                    })?;
                }
                // The writer connects first, so a new database is switched to WAL once, before
                // the pool opens its connections together.
                let writer = writer::Writer::start(manager.open()?)?;
                // Connections to a local file do not go stale; skip the `SELECT 1` per checkout.
                let pool = builder.test_on_check_out(false).build(manager)?;
                (pool, Some(Arc::new(writer)))
            }
            Target::Postgres(_) => {
                // One connection now, so an unreachable server is reported at once with libpq's
                // reason; the rest are opened as needed. Checked out connections are tested, so
                // the pool recovers when the server comes back.
                drop(manager.open()?);
                let pool = builder
                    .min_idle(Some(1))
                    .test_on_check_out(true)
                    .build_unchecked(manager);
                (pool, None)
            }
        };
        Ok(Self {
            pool,
            permits: Arc::new(Semaphore::new(pool_size.max(1) as usize)),
            writer,
            metrics: metrics::DbMetrics::new(pool_size),
        })
    }

    /// Whether the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.writer.is_none()
    }

    /// Applies pending migrations; called at start, before the port accepts requests.
    pub fn migrate(&self) -> Result<(), StorageError> {
        let mut conn = self.pool.get()?;
        // The user keys need rows checked before (a clear error for collisions) and keys
        // computed after (NFKC is beyond SQL); a fresh database has no rows to check.
        let before = |conn: &mut Conn, pending: &[String]| {
            if adds_user_keys_to_rows(pending) {
                users::check_keys_before_migration(conn)?;
            }
            Ok(())
        };
        let after = |conn: &mut Conn, pending: &[String]| {
            if adds_user_keys_to_rows(pending) {
                users::fill_keys_after_migration(conn)?;
            }
            Ok(())
        };
        let Conn::Sqlite(_) = &mut *conn else {
            return postgres::migrate(&mut conn, before, after);
        };
        // Under the write lock, so two processes starting on a fresh database do not both
        // try to create the tables.
        write_transaction(&mut conn, |conn| {
            let migration = |e: Box<dyn std::error::Error + Send + Sync>| {
                StorageError::Migration(e.to_string())
            };
            let Conn::Sqlite(sqlite) = conn else {
                unreachable!("matched above");
            };
            let pending: Vec<String> = sqlite
                .pending_migrations(MIGRATIONS)
                .map_err(migration)?
                .iter()
                .map(|m| m.name().to_string())
                .collect();
            before(conn, &pending)?;
            let Conn::Sqlite(sqlite) = conn else {
                unreachable!("matched above");
            };
            sqlite
                .run_pending_migrations(MIGRATIONS)
                .map_err(migration)?;
            after(conn, &pending)
        })
    }

    /// The pool's and the writer's metrics.
    pub fn metrics(&self) -> &metrics::DbMetrics {
        &self.metrics
    }

    /// A pooled connection for synchronous callers (the CLI, start-up).
    pub fn conn(&self) -> Result<PooledConn, StorageError> {
        Ok(self.pool.get()?)
    }

    /// Runs diesel work on a blocking thread, never on the async executor.
    pub async fn run<F, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let _permit = (self.metrics.acquire(&self.permits).await)
            .map_err(|e| StorageError::Task(e.to_string()))?;
        let pool = self.pool.clone();
        let (result, lost) = tokio::task::spawn_blocking(move || {
            let mut conn = match pool.get() {
                Ok(conn) => conn,
                Err(e) => return (Err(StorageError::from(e).into()), true),
            };
            let result = f(&mut conn);
            // A call that failed on a connection that no longer answers lost its database
            // (checked only on failure: the happy path pays nothing).
            let lost = result.is_err() && conn.ping().is_err();
            (result, lost)
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))?;
        if lost {
            crate::unavailable::database_lost();
        }
        result
    }

    /// Runs `f` in a write transaction; it returns once the transaction has committed.
    ///
    /// On SQLite, on the writer thread: the transaction starts with `BEGIN IMMEDIATE`, taking
    /// the write lock up front, so it can never fail half-way with `database is locked` the way
    /// a read transaction upgraded to a write does; `f` runs in a savepoint of it, so when `f`
    /// fails its changes are rolled back and the writes batched with it still commit. On
    /// PostgreSQL, in a transaction on a pooled connection. Writes there run concurrently,
    /// with other replicas too: a check-then-act in `f` must lock or update conditionally.
    pub async fn write<F, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.write(f, &self.metrics).await,
            None => self.run(move |conn| postgres::write(conn, f)).await,
        }
    }
}

/// Writes that check, then act, on rows that may not exist yet (so no row can be locked):
/// on PostgreSQL each takes a transaction-level advisory lock of its own; on SQLite every write
/// transaction holds the database's one write lock already.
#[derive(Debug, Clone, Copy)]
pub enum Serialized {
    /// Changes to the signing keys (one active key per algorithm).
    SigningKeys = 1,
    /// The bootstrap client, created by whichever replica starts first.
    BootstrapClient = 2,
}

/// Waits for, and holds until the end of the caller's transaction, the lock of `what`.
pub fn serialize(conn: &mut Conn, what: Serialized) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl as _;
    match conn {
        Conn::Sqlite(_) => Ok(()),
        Conn::Pg(pg) => {
            // Keys below the migration lock's; the high word says "oidcprov" lock space.
            let key = 0x6f69_6463_0000_0000_i64 + what as i64;
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<diesel::sql_types::BigInt, _>(key)
                .execute(pg)
                .map(|_| ())
        }
    }
}

/// Whether the pending migrations add the user keys to a database that already has rows.
fn adds_user_keys_to_rows(pending: &[String]) -> bool {
    let adds_user_keys = pending.iter().any(|m| m.ends_with(USER_KEYS_MIGRATION));
    let fresh = pending.iter().any(|m| m.ends_with(INITIAL_MIGRATION));
    adds_user_keys && !fresh
}

/// Runs `f` in a write transaction, or inside the caller's transaction when there already is
/// one (as under [`Db::write`]). On SQLite it begins `IMMEDIATE` (taking the write lock up front,
/// so it cannot fail half-way with "database is locked"); on PostgreSQL it is a plain `BEGIN`.
pub fn write_transaction<T, E>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    let depth =
        <Conn as diesel::Connection>::TransactionManager::transaction_manager_status_mut(conn)
            .transaction_depth()?;
    if depth.is_some() {
        return f(conn);
    }
    match conn {
        Conn::Sqlite(sqlite) => {
            AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
        }
        Conn::Pg(pg) => AnsiTransactionManager::begin_transaction(pg)?,
    }
    type Manager = <Conn as diesel::Connection>::TransactionManager;
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            // The caller's error is what matters; a failed rollback leaves the connection
            // marked broken, and the pool drops it.
            let _ = Manager::rollback_transaction(conn);
            Err(error)
        }
    }
}

/// A fresh random identifier: 128 bits, base64url without padding.
pub fn new_id() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
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
    use diesel::RunQueryDsl as _;

    use super::*;

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

    /// A database with a scratch table, in a temporary folder.
    fn scratch_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db.sqlite3").to_str().unwrap(), 2).unwrap();
        db.conn()
            .unwrap()
            .batch_execute("CREATE TABLE scratch (x INTEGER PRIMARY KEY)")
            .unwrap();
        (dir, db)
    }

    fn insert(conn: &mut Conn, x: i32) -> Result<(), StorageError> {
        diesel::sql_query(format!("INSERT INTO scratch (x) VALUES ({x})")).execute(conn)?;
        Ok(())
    }

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        x: i32,
    }

    fn stored(db: &Db) -> Vec<i32> {
        diesel::sql_query("SELECT x FROM scratch ORDER BY x")
            .load::<Row>(&mut db.conn().unwrap())
            .unwrap()
            .into_iter()
            .map(|row| row.x)
            .collect()
    }

    /// Holds the writer thread for a moment, so that the writes sent meanwhile queue up and
    /// are committed together in the next batch.
    async fn while_writer_is_busy<T>(db: &Db, writes: impl std::future::Future<Output = T>) -> T {
        let blocker = db.write(|_conn| {
            std::thread::sleep(Duration::from_millis(150));
            Ok::<_, StorageError>(())
        });
        let writes = async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            writes.await
        };
        let (blocked, out) = tokio::join!(blocker, writes);
        blocked.unwrap();
        out
    }

    #[tokio::test]
    async fn a_failed_write_rolls_back_alone_and_the_rest_of_its_batch_commits() {
        let (_dir, db) = scratch_db();
        let (a, b, c, d) = while_writer_is_busy(&db, async {
            tokio::join!(
                db.write(|conn| insert(conn, 1)),
                db.write(|conn| {
                    insert(conn, 2)?;
                    Err::<(), _>(StorageError::Corrupt("refused after writing".into()))
                }),
                db.write(|conn| insert(conn, 1)), // unique violation
                db.write(|conn| insert(conn, 3)),
            )
        })
        .await;
        assert!(a.is_ok(), "{a:?}");
        assert!(matches!(b, Err(StorageError::Corrupt(_))), "{b:?}");
        assert!(
            matches!(&c, Err(StorageError::Query(e)) if is_unique_violation(e)),
            "{c:?}"
        );
        assert!(d.is_ok(), "{d:?}");
        assert_eq!(stored(&db), [1, 3]);
    }

    #[tokio::test]
    async fn a_panicking_write_is_an_error_and_the_writer_goes_on() {
        let (_dir, db) = scratch_db();
        let (panicked, fine) = while_writer_is_busy(&db, async {
            tokio::join!(
                db.write(|conn| -> Result<(), StorageError> {
                    insert(conn, 7)?;
                    panic!("a bug in a write");
                }),
                db.write(|conn| insert(conn, 8)),
            )
        })
        .await;
        assert!(
            matches!(panicked, Err(StorageError::Task(_))),
            "{panicked:?}"
        );
        assert!(fine.is_ok(), "{fine:?}");
        db.write(|conn| insert(conn, 9)).await.unwrap();
        assert_eq!(stored(&db), [8, 9]);
    }

    #[tokio::test]
    async fn concurrent_writes_are_all_committed_before_their_callers_resume() {
        let (_dir, db) = scratch_db();
        let writes = (0..200).map(|x| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |conn| insert(conn, x)).await.unwrap();
                // Visible to the pool's connections as soon as the caller resumes.
                let seen = db
                    .run(move |conn| {
                        diesel::sql_query(format!("SELECT x FROM scratch WHERE x = {x}"))
                            .load::<Row>(conn)
                            .map_err(StorageError::from)
                    })
                    .await;
                assert_eq!(
                    seen.unwrap().len(),
                    1,
                    "row {x} not visible after its write returned"
                );
            })
        });
        for write in writes.collect::<Vec<_>>() {
            write.await.unwrap();
        }
        assert_eq!(stored(&db), (0..200).collect::<Vec<_>>());
    }
}
