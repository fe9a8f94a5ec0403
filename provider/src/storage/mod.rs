//! The database: a pool of SQLite connections tuned for concurrent use, embedded migrations,
//! and the queries of each table in its own module.
//!
//! Lookups by key use `get_result`, not `first`: `first` binds `LIMIT ?`, and SQLite re-plans a
//! statement whose LIMIT binding changes, which defeats the prepared-statement cache (measured:
//! most of the CPU of a userinfo request went to recompiling the token lookup).

pub mod clients;
pub mod columns;
pub mod grants;
pub mod login_throttle;
pub mod logout_deliveries;
pub mod metrics;
pub mod schema;
pub mod sessions;
pub mod signing_keys;
pub mod sweep;
pub mod users;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use diesel::Connection as _;
use diesel::connection::{AnsiTransactionManager, SimpleConnection as _, TransactionManager};
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _, embed_migrations};
use tokio::sync::Semaphore;

/// The SQLite migrations of `migrations/sqlite/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

/// Names (suffixes) of the migrations that [`Db::migrate`] completes with Rust code.
const INITIAL_MIGRATION: &str = "_initial";
const USER_KEYS_MIGRATION: &str = "_user_keys";

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

/// Handle to the connection pool and the writer connection; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager<SqliteConnection>>,
    /// One permit per pooled connection: callers wait here, on the executor, instead of each
    /// holding a blocking thread that waits for a connection (threads piled up under load).
    permits: Arc<Semaphore>,
    writer: Arc<Writer>,
    metrics: metrics::DbMetrics,
}

/// The one connection of this process's write transactions ([`Db::write`]), owned by its own
/// thread, which commits the writes waiting for it together (group commit).
///
/// SQLite admits one writer at a time anyway. Handing each write to a thread of its own made
/// the lock pass between threads that the scheduler had to wake first, leaving it idle between
/// transactions under load; one thread draining a queue never waits to be woken while work is
/// queued, pays one `BEGIN`/`COMMIT` and one WAL append per batch instead of per request, and
/// keeps its page cache warm (SQLite drops a connection's cache whenever another connection has
/// written). Each write runs in its own savepoint, so a write that fails rolls back alone; its
/// caller hears back only once the batch has committed. Other processes on the same database
/// still take turns through the busy timeout.
struct Writer {
    jobs: std::sync::mpsc::Sender<Job>,
}

/// A write waiting for the writer thread: it runs its closure in a savepoint and returns what
/// delivers the closure's result (or the batch's commit error) to the caller.
type Job = Box<dyn FnOnce(&mut SqliteConnection) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Option<&diesel::result::Error>) + Send>;

/// Writes committed in one transaction at most, so that no caller waits behind a long batch.
const MAX_BATCH: usize = 64;

impl Writer {
    fn start(mut conn: SqliteConnection) -> Result<Self, StorageError> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || {
                // Ends when every handle to the database is dropped.
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    batch.extend(queue.try_iter().take(MAX_BATCH - 1));
                    Self::commit(&mut conn, batch);
                }
            })
            .map_err(|e| StorageError::Task(format!("cannot start the database writer: {e}")))?;
        Ok(Self { jobs })
    }

    fn commit(conn: &mut SqliteConnection, batch: Vec<Job>) {
        let mut replies = Vec::with_capacity(batch.len());
        let outcome = conn.immediate_transaction(|conn| {
            replies.extend(batch.into_iter().map(|job| job(conn)));
            Ok::<_, diesel::result::Error>(())
        });
        let error = outcome.err();
        for reply in replies {
            reply(error.as_ref());
        }
    }
}

/// What a caller of [`Db::write`] gets when its write was committed, or failed.
fn commit_error(error: &diesel::result::Error) -> StorageError {
    StorageError::Task(format!("the write transaction did not commit: {error}"))
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
        let path = path.to_string_lossy();
        // The writer connects first, so a new database is switched to WAL once, before the
        // pool opens its connections together.
        let writer = Arc::new(Writer::start(Self::connect(&path)?)?);
        let manager = ConnectionManager::<SqliteConnection>::new(path.as_ref());
        let pool = Pool::builder()
            .max_size(pool_size)
            .connection_timeout(Duration::from_secs(10))
            // Connections to a local file do not go stale; skip the `SELECT 1` per checkout.
            .test_on_check_out(false)
            .connection_customizer(Box::new(ConnectionSettings))
            .build(manager)?;
        Ok(Self {
            pool,
            permits: Arc::new(Semaphore::new(pool_size.max(1) as usize)),
            writer,
            metrics: metrics::DbMetrics::new(pool_size),
        })
    }

    /// Applies pending migrations; called at start, before the port accepts requests.
    pub fn migrate(&self) -> Result<(), StorageError> {
        let mut conn = self.pool.get()?;
        // Under the write lock, so two processes starting on a fresh database do not both
        // try to create the tables.
        conn.immediate_transaction(|conn| {
            let migration = |e: Box<dyn std::error::Error + Send + Sync>| {
                StorageError::Migration(e.to_string())
            };
            let pending: Vec<String> = conn
                .pending_migrations(MIGRATIONS)
                .map_err(migration)?
                .iter()
                .map(|m| m.name().to_string())
                .collect();
            // The user keys need rows checked before (a clear error for collisions) and keys
            // computed after (NFKC is beyond SQL); a fresh database has no rows to check.
            let adds_user_keys = pending.iter().any(|m| m.ends_with(USER_KEYS_MIGRATION));
            let fresh = pending.iter().any(|m| m.ends_with(INITIAL_MIGRATION));
            if adds_user_keys && !fresh {
                users::check_keys_before_migration(conn)?;
            }
            conn.run_pending_migrations(MIGRATIONS).map_err(migration)?;
            if adds_user_keys && !fresh {
                users::fill_keys_after_migration(conn)?;
            }
            Ok(())
        })
    }

    /// The pool's and the writer's metrics.
    pub fn metrics(&self) -> &metrics::DbMetrics {
        &self.metrics
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
        let _permit = (self.metrics.acquire(&self.permits).await)
            .map_err(|e| StorageError::Task(e.to_string()))?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(StorageError::from)?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))?
    }

    /// Runs `f` in a write transaction on the writer thread; it returns once the transaction
    /// has committed.
    ///
    /// The transaction starts with `BEGIN IMMEDIATE`: it takes the write lock up front (waiting
    /// up to the busy timeout), so it can never fail half-way with `database is locked` the
    /// way a read transaction upgraded to a write does. `f` runs in a savepoint of it: when `f`
    /// fails, its changes are rolled back and the writes batched with it still commit.
    pub async fn write<F, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |conn| {
            // A panic must not take the writer thread, or the batch, with it: the savepoint is
            // rolled back and the caller gets an error (its reply channel is dropped).
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                conn.transaction::<T, E, _>(f)
            }));
            let outcome = match outcome {
                Ok(outcome) => Some(outcome),
                Err(_) => {
                    let _ =
                        <AnsiTransactionManager as TransactionManager<Conn>>::rollback_transaction(
                            conn,
                        );
                    None
                }
            };
            Box::new(move |commit: Option<&diesel::result::Error>| {
                if let Some(outcome) = outcome {
                    let _ = reply.send(match (outcome, commit) {
                        (Ok(_), Some(error)) => Err(commit_error(error).into()),
                        (outcome, _) => outcome,
                    });
                }
            })
        });
        let job = self.metrics.queued(job);
        self.writer
            .jobs
            .send(job)
            .map_err(|_| StorageError::Task("the database writer has stopped".into()))?;
        result
            .await
            .map_err(|_| StorageError::Task("the write transaction panicked".into()))?
    }

    /// A connection with this module's settings, outside the pool.
    fn connect(path: &str) -> Result<SqliteConnection, StorageError> {
        let mut conn = SqliteConnection::establish(path)?;
        ConnectionSettings
            .on_acquire(&mut conn)
            .map_err(|e| StorageError::Task(e.to_string()))?;
        Ok(conn)
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
        let db = Db::open(&dir.path().join("db.sqlite3"), 2).unwrap();
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
