//! What differs on PostgreSQL: connecting, migrating under an advisory lock, and write
//! transactions on pooled connections.
//!
//! Several processes (replicas) share one database, and PostgreSQL runs transactions at READ
//! COMMITTED: a write that checks, then acts, does so with a conditional `UPDATE`/`DELETE`
//! (rows affected, `RETURNING`) or after `SELECT … FOR UPDATE`, never on what it read before.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _, embed_migrations};

use super::{Conn, StorageError};

/// The PostgreSQL migrations of `migrations/postgres/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// The advisory lock key held while migrating ("oidcprov" in ASCII): two replicas starting on
/// a fresh database take turns instead of both creating the tables.
const MIGRATION_LOCK: i64 = 0x6f69_6463_7072_6f76;

/// A new connection to `url`. libpq's reasons span lines (one per address tried): they are
/// joined into one, for a one-line start-up error and log line.
pub(super) fn connect(url: &str) -> Result<PgConnection, diesel::ConnectionError> {
    PgConnection::establish(url).map_err(|error| match error {
        diesel::ConnectionError::BadConnection(reason) => {
            let lines: Vec<&str> = reason
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            diesel::ConnectionError::BadConnection(lines.join("; "))
        }
        other => other,
    })
}

/// Runs `f` in a transaction. A serialization failure or deadlock fails the write (it is
/// not run again: closures own single-use secrets, so they cannot be cloned for a retry).
pub(super) fn write<F, T, E>(conn: &mut Conn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut Conn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    conn.transaction::<T, E, _>(f)
}

/// Applies the pending migrations in one transaction, holding the migration lock; `before`
/// and `after` run in it around them, with the names of the pending migrations.
pub(super) fn migrate(
    conn: &mut Conn,
    before: impl FnOnce(&mut Conn, &[String]) -> Result<(), StorageError>,
    after: impl FnOnce(&mut Conn, &[String]) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let migration =
        |e: Box<dyn std::error::Error + Send + Sync>| StorageError::Migration(e.to_string());
    conn.transaction(|conn| {
        let Conn::Pg(pg) = conn else {
            return Err(StorageError::Migration(
                "not a PostgreSQL connection".into(),
            ));
        };
        // A transaction-level lock: released at commit or rollback, whatever happens here.
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")).execute(pg)?;
        let pending: Vec<String> = pg
            .pending_migrations(MIGRATIONS)
            .map_err(migration)?
            .iter()
            .map(|m| m.name().to_string())
            .collect();
        before(conn, &pending)?;
        let Conn::Pg(pg) = conn else {
            unreachable!("checked above");
        };
        pg.run_pending_migrations(MIGRATIONS).map_err(migration)?;
        after(conn, &pending)
    })
}
