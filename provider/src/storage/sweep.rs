//! Removal of what has expired: authorization codes, access and refresh tokens past their
//! expiry, the grants left holding none of them, browser sessions past their idle or absolute
//! end, login throttle windows that have ended, and audit events older than their retention.
//! Without it the database grows with every flow for as long as the provider runs.
//!
//! A row goes once its own expiry (plus [`EXPIRY_MARGIN_SECS`]) has passed, never merely because
//! it was used or revoked: a used code and a rotated refresh token must stay until they expire,
//! so that presenting them again is still recognised as a replay and revokes their grant.
//! Consents are not grants (they are remembered per user and client) and are never swept.
//!
//! Deletion runs in small batches, each its own short write transaction; on SQLite each batch is
//! one job of the writer thread, so requests' writes queued behind it wait for one batch only.

use oidc_core::unix_now;
use std::time::Duration;

use diesel::dsl::{exists, not};
use diesel::prelude::*;

use super::schema::{access_tokens, authorization_codes, grants, refresh_tokens};
use super::{Conn, Db, StorageError, audit_query};

/// Seconds a row is kept past its expiry. Every check of an expiry uses the clock of the
/// process doing it; the margin keeps a row that a process whose clock runs behind (another
/// replica) still sees as live. Clocks kept by NTP differ by milliseconds, so a few seconds
/// cover them; a longer margin only holds more rows, and every flow pays for a larger index.
pub const EXPIRY_MARGIN_SECS: i64 = 5;

/// Rows deleted per transaction at most.
pub const BATCH_ROWS: usize = 300;

/// Pause of the background sweeper between two batches, so that a large backlog is worked off
/// as a trickle of short writes next to the requests' writes rather than a burst.
const BATCH_PAUSE: Duration = Duration::from_millis(5);

/// A sweep removing at least this many rows is logged at info, smaller ones at debug.
const LOG_INFO_FROM_ROWS: u64 = 10_000;

/// Rows removed by a sweep, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    pub authorization_codes: u64,
    pub access_tokens: u64,
    pub refresh_tokens: u64,
    pub grants: u64,
    /// Browser sessions past their idle or absolute end.
    pub sessions: u64,
    /// Login throttle windows that have ended.
    pub login_throttle: u64,
    /// Audit events older than the retention.
    pub audit_events: u64,
}

impl Swept {
    /// Rows of every kind together.
    pub fn total(&self) -> u64 {
        self.authorization_codes
            + self.access_tokens
            + self.refresh_tokens
            + self.grants
            + self.sessions
            + self.login_throttle
            + self.audit_events
    }

    fn add(&mut self, kind: Kind, batch: Batch) {
        let rows = batch.rows as u64;
        match kind {
            Kind::AuthorizationCodes => self.authorization_codes += rows,
            Kind::AccessTokens => self.access_tokens += rows,
            Kind::RefreshTokens => self.refresh_tokens += rows,
        }
        self.grants += batch.grants as u64;
    }
}

/// The tables with an expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AuthorizationCodes,
    AccessTokens,
    RefreshTokens,
}

impl Kind {
    pub const ALL: [Kind; 3] = [
        Kind::AuthorizationCodes,
        Kind::AccessTokens,
        Kind::RefreshTokens,
    ];
}

/// What one batch deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch {
    /// Rows of the swept kind.
    pub rows: usize,
    /// Grants of those rows left without any code or token.
    pub grants: usize,
}

/// Deletes up to `limit` rows of `kind` that expired before `cutoff`, then the grants of those
/// rows that hold no code or token any more. Runs in the caller's transaction.
///
/// A grant is looked at only when one of its rows goes, so a batch costs what it deletes and
/// never a scan of the grants; the last row of a grant to go always takes the grant with it.
pub fn sweep_batch(conn: &mut Conn, kind: Kind, cutoff: i64, limit: usize) -> QueryResult<Batch> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Read the batch, then delete it by key: diesel cannot delete through a subquery on the
    // table being deleted from, and both statements run in the same transaction anyway.
    let expired: Vec<(String, String)> = match kind {
        Kind::AuthorizationCodes => authorization_codes::table
            .filter(authorization_codes::expires_at.lt(cutoff))
            .select((
                authorization_codes::code_hash,
                authorization_codes::grant_id,
            ))
            .limit(limit)
            .load(conn)?,
        Kind::AccessTokens => access_tokens::table
            .filter(access_tokens::expires_at.lt(cutoff))
            .select((access_tokens::token_hash, access_tokens::grant_id))
            .limit(limit)
            .load(conn)?,
        Kind::RefreshTokens => refresh_tokens::table
            .filter(refresh_tokens::expires_at.lt(cutoff))
            .select((refresh_tokens::token_hash, refresh_tokens::grant_id))
            .limit(limit)
            .load(conn)?,
    };
    let (keys, mut grant_ids): (Vec<String>, Vec<String>) = expired.into_iter().unzip();
    if keys.is_empty() {
        return Ok(Batch::default());
    }
    let rows = match kind {
        Kind::AuthorizationCodes => diesel::delete(
            authorization_codes::table.filter(authorization_codes::code_hash.eq_any(&keys)),
        )
        .execute(conn)?,
        Kind::AccessTokens => {
            diesel::delete(access_tokens::table.filter(access_tokens::token_hash.eq_any(&keys)))
                .execute(conn)?
        }
        Kind::RefreshTokens => {
            diesel::delete(refresh_tokens::table.filter(refresh_tokens::token_hash.eq_any(&keys)))
                .execute(conn)?
        }
    };
    grant_ids.sort_unstable();
    grant_ids.dedup();
    let grants = delete_empty_grants(conn, &grant_ids)?;
    Ok(Batch { rows, grants })
}

/// Deletes the grants among `ids` that hold no code, access token or refresh token.
fn delete_empty_grants(conn: &mut Conn, ids: &[String]) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(
        grants::table
            .filter(grants::id.eq_any(ids))
            .filter(not(exists(
                authorization_codes::table.filter(authorization_codes::grant_id.eq(grants::id)),
            )))
            .filter(not(exists(
                access_tokens::table.filter(access_tokens::grant_id.eq(grants::id)),
            )))
            .filter(not(exists(
                refresh_tokens::table.filter(refresh_tokens::grant_id.eq(grants::id)),
            ))),
    )
    .execute(conn)
}

/// The cutoff of a sweep at `at`: rows that expired before it go.
pub fn cutoff(at: i64) -> i64 {
    at.saturating_sub(EXPIRY_MARGIN_SECS)
}

/// Sweeps everything that expired by `at` (less the margin), and audit events older than
/// `audit_retention_days` (0: kept forever), through the writer thread, one batch per write,
/// pausing `pause` between batches.
pub async fn sweep(
    db: &Db,
    at: i64,
    audit_retention_days: u32,
    pause: Duration,
) -> Result<Swept, StorageError> {
    let cutoff = cutoff(at);
    let mut swept = Swept::default();
    for kind in Kind::ALL {
        loop {
            let batch = db
                .write(move |conn| {
                    sweep_batch(conn, kind, cutoff, BATCH_ROWS).map_err(StorageError::from)
                })
                .await?;
            swept.add(kind, batch);
            if batch.rows < BATCH_ROWS {
                break;
            }
            tokio::time::sleep(pause).await;
        }
    }
    swept.sessions = drain(db, pause, move |conn| {
        super::sessions::sweep_batch(conn, cutoff, BATCH_ROWS)
    })
    .await?;
    swept.login_throttle = drain(db, pause, move |conn| {
        super::login_throttle::sweep_batch(conn, cutoff, BATCH_ROWS)
    })
    .await?;
    if let Some(before) = audit_query::retention_cutoff(at, audit_retention_days) {
        swept.audit_events = drain(db, pause, move |conn| {
            audit_query::sweep_batch(conn, before, BATCH_ROWS)
        })
        .await?;
    }
    Ok(swept)
}

/// Runs `batch` as one write after another until one deletes less than [`BATCH_ROWS`];
/// returns the rows deleted.
async fn drain<F>(db: &Db, pause: Duration, batch: F) -> Result<u64, StorageError>
where
    F: Fn(&mut Conn) -> QueryResult<usize> + Clone + Send + 'static,
{
    let mut total = 0;
    loop {
        let batch = batch.clone();
        let rows = db
            .write(move |conn| batch(conn).map_err(StorageError::from))
            .await?;
        total += rows as u64;
        if rows < BATCH_ROWS {
            return Ok(total);
        }
        tokio::time::sleep(pause).await;
    }
}

/// Like [`drain`], on a connection of its own, each batch in its own transaction.
fn drain_blocking(
    conn: &mut Conn,
    batch: impl Fn(&mut Conn) -> QueryResult<usize>,
) -> QueryResult<u64> {
    let mut total = 0;
    loop {
        let rows = super::write_transaction(conn, &batch)?;
        total += rows as u64;
        if rows < BATCH_ROWS {
            return Ok(total);
        }
    }
}

/// Like [`sweep`], on a connection of its own (the `cleanup` command): each batch in its own
/// immediate transaction, so a running server's writes interleave with them.
pub fn sweep_blocking(conn: &mut Conn, at: i64, audit_retention_days: u32) -> QueryResult<Swept> {
    let cutoff = cutoff(at);
    let mut swept = Swept::default();
    for kind in Kind::ALL {
        loop {
            let batch =
                super::write_transaction(conn, |conn| sweep_batch(conn, kind, cutoff, BATCH_ROWS))?;
            swept.add(kind, batch);
            if batch.rows < BATCH_ROWS {
                break;
            }
        }
    }
    swept.sessions = drain_blocking(conn, |conn| {
        super::sessions::sweep_batch(conn, cutoff, BATCH_ROWS)
    })?;
    swept.login_throttle = drain_blocking(conn, |conn| {
        super::login_throttle::sweep_batch(conn, cutoff, BATCH_ROWS)
    })?;
    if let Some(before) = audit_query::retention_cutoff(at, audit_retention_days) {
        swept.audit_events = drain_blocking(conn, |conn| {
            audit_query::sweep_batch(conn, before, BATCH_ROWS)
        })?;
    }
    Ok(swept)
}

/// Starts the background sweeper: a sweep every `every`, the first one `every` after start,
/// keeping audit events `audit_retention_days` (0: forever). A failed sweep is logged and
/// tried again on the next tick. Abort the handle to stop it.
pub fn spawn(db: Db, every: Duration, audit_retention_days: u32) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            interval.tick().await;
            match sweep(&db, unix_now(), audit_retention_days, BATCH_PAUSE).await {
                Ok(swept) if swept.total() >= LOG_INFO_FROM_ROWS => {
                    tracing::info!(?swept, "removed expired codes, tokens and grants");
                }
                Ok(swept) => {
                    tracing::debug!(?swept, "removed expired codes, tokens and grants");
                }
                Err(error) => tracing::warn!(
                    %error,
                    retry_in_secs = every.as_secs(),
                    "removing expired codes and tokens failed; trying again on the next tick"
                ),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection as _;

    use super::*;
    use crate::storage::grants::{
        self as stored, AccessTokenRow, AuthorizationCodeRow, Grant, RefreshTokenRow,
    };
    use crate::storage::schema::consents;

    const T: i64 = 1_000_000;

    /// A database with one user and one client.
    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db.sqlite3").to_str().unwrap(), 2).unwrap();
        db.migrate().unwrap();
        db.conn()
            .unwrap()
            .batch_execute(
                "INSERT INTO users (id, subject, username, email, password_hash, created_at, updated_at)
                     VALUES ('u', 's', 'alice', 'a@example.com', 'x', 0, 0);
                 INSERT INTO clients (id, name, client_type, redirect_uris, grant_types, created_at, updated_at)
                     VALUES ('c', 'C', 'confidential', '[]', 'authorization_code refresh_token', 0, 0);",
            )
            .unwrap();
        (dir, db)
    }

    fn openid() -> oidc_core::types::Scopes {
        oidc_core::types::Scopes::parse("openid").unwrap()
    }

    /// A grant with a code expiring at `code_expires`.
    fn grant(conn: &mut Conn, id: &str, code_expires: i64) {
        let grant = Grant {
            id: id.to_owned(),
            user_id: "u".into(),
            client_id: "c".into(),
            scope: openid(),
            auth_time: T,
            created_at: T,
            revoked_at: None,
            session_id: None,
            amr: "pwd".into(),
            acr: "pwd".into(),
        };
        let code = AuthorizationCodeRow {
            code_hash: format!("code-{id}"),
            grant_id: id.to_owned(),
            client_id: "c".into(),
            user_id: "u".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            scope: openid(),
            nonce: None,
            code_challenge: "x".into(),
            auth_time: T,
            expires_at: code_expires,
            used_at: Some(T),
            created_at: T,
            amr: "pwd".into(),
            acr: "pwd".into(),
        };
        stored::insert_grant_with_code(conn, grant, code).unwrap();
    }

    fn access(conn: &mut Conn, grant_id: &str, hash: &str, expires_at: i64) {
        stored::insert_access_token(
            conn,
            AccessTokenRow {
                token_hash: hash.to_owned(),
                grant_id: grant_id.to_owned(),
                client_id: "c".into(),
                user_id: "u".into(),
                scope: openid(),
                expires_at,
                revoked_at: None,
                created_at: T,
            },
        )
        .unwrap();
    }

    fn refresh(conn: &mut Conn, grant_id: &str, hash: &str, expires_at: i64) {
        stored::insert_refresh_token(
            conn,
            RefreshTokenRow {
                token_hash: hash.to_owned(),
                grant_id: grant_id.to_owned(),
                client_id: "c".into(),
                user_id: "u".into(),
                scope: openid(),
                expires_at,
                used_at: None,
                revoked_at: None,
                created_at: T,
            },
        )
        .unwrap();
    }

    /// Rows of (codes, access tokens, refresh tokens, grants).
    fn counts(conn: &mut Conn) -> (i64, i64, i64, i64) {
        (
            authorization_codes::table.count().get_result(conn).unwrap(),
            access_tokens::table.count().get_result(conn).unwrap(),
            refresh_tokens::table.count().get_result(conn).unwrap(),
            grants::table.count().get_result(conn).unwrap(),
        )
    }

    #[test]
    fn a_batch_takes_at_most_its_limit_and_only_rows_expired_before_the_cutoff() {
        let (_dir, db) = db();
        let conn = &mut *db.conn().unwrap();
        for i in 0..5 {
            grant(conn, &format!("old-{i}"), T - 1);
        }
        grant(conn, "live", T);
        let batch = crate::storage::write_transaction(conn, |c| {
            sweep_batch(c, Kind::AuthorizationCodes, T, 2)
        })
        .unwrap();
        assert_eq!(batch, Batch { rows: 2, grants: 2 });
        assert_eq!(counts(conn), (4, 0, 0, 4));
        let swept = sweep_blocking(conn, T + EXPIRY_MARGIN_SECS, 0).unwrap();
        assert_eq!(
            swept,
            Swept {
                authorization_codes: 3,
                grants: 3,
                sessions: 0,
                ..Swept::default()
            }
        );
        assert_eq!(counts(conn), (1, 0, 0, 1));
        assert!(stored::find_code(conn, "code-live").unwrap().is_some());
    }

    #[test]
    fn rows_are_kept_for_the_margin_past_their_expiry() {
        let (_dir, db) = db();
        let conn = &mut *db.conn().unwrap();
        grant(conn, "g", T);
        access(conn, "g", "a", T);
        refresh(conn, "g", "r", T);
        // Expired, but within the margin: a replay of the used code must still be recognised.
        assert_eq!(
            sweep_blocking(conn, T + EXPIRY_MARGIN_SECS, 0).unwrap(),
            Swept::default()
        );
        assert_eq!(counts(conn), (1, 1, 1, 1));
        let swept = sweep_blocking(conn, T + EXPIRY_MARGIN_SECS + 1, 0).unwrap();
        assert_eq!(
            swept,
            Swept {
                authorization_codes: 1,
                access_tokens: 1,
                refresh_tokens: 1,
                grants: 1,
                sessions: 0,
                login_throttle: 0,
                audit_events: 0,
            }
        );
        assert_eq!(counts(conn), (0, 0, 0, 0));
    }

    #[test]
    fn a_revoked_grant_stays_until_every_token_of_it_expired_and_consents_stay() {
        let (_dir, db) = db();
        let conn = &mut *db.conn().unwrap();
        grant(conn, "g", T);
        access(conn, "g", "a", T + 10);
        refresh(conn, "g", "rotated", T + 100);
        stored::mark_refresh_token_used(conn, "rotated", T).unwrap();
        refresh(conn, "g", "r", T + 1000);
        stored::revoke_grant_family(conn, "g", T).unwrap();
        stored::upsert_consent(conn, "u", "c", &openid(), T).unwrap();

        let at = T + 100 + EXPIRY_MARGIN_SECS + 1;
        let swept = sweep_blocking(conn, at, 0).unwrap();
        assert_eq!(
            swept,
            Swept {
                authorization_codes: 1,
                access_tokens: 1,
                refresh_tokens: 1,
                grants: 0,
                sessions: 0,
                login_throttle: 0,
                audit_events: 0,
            }
        );
        // Revoked, but the newest refresh token has not expired: its reuse must still be
        // answered as a revoked token of a revoked grant.
        let kept = stored::find_refresh_token(conn, "r").unwrap().unwrap();
        assert!(kept.revoked_at.is_some());
        assert!(stored::find_grant(conn, "g").unwrap().is_some());

        let swept = sweep_blocking(conn, T + 1000 + EXPIRY_MARGIN_SECS + 1, 0).unwrap();
        assert_eq!((swept.refresh_tokens, swept.grants), (1, 1));
        assert_eq!(counts(conn), (0, 0, 0, 0));
        let consents: i64 = consents::table.count().get_result(conn).unwrap();
        assert_eq!(consents, 1);
    }

    #[tokio::test]
    async fn the_writer_sweep_works_off_more_than_one_batch() {
        let (_dir, db) = db();
        {
            let conn = &mut *db.conn().unwrap();
            grant(conn, "g", T);
            crate::storage::write_transaction(conn, |conn| {
                for i in 0..(BATCH_ROWS * 2 + 7) {
                    access(conn, "g", &format!("a{i}"), T);
                }
                Ok::<_, diesel::result::Error>(())
            })
            .unwrap();
            grant(conn, "live", T + 10_000);
        }
        let swept = sweep(&db, T + EXPIRY_MARGIN_SECS + 1, 0, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            swept,
            Swept {
                authorization_codes: 1,
                access_tokens: (BATCH_ROWS * 2 + 7) as u64,
                refresh_tokens: 0,
                grants: 1,
                sessions: 0,
                login_throttle: 0,
                audit_events: 0,
            }
        );
        assert_eq!(counts(&mut db.conn().unwrap()), (1, 0, 0, 1));
    }

    #[tokio::test]
    async fn the_writer_sweep_removes_ended_login_throttle_windows_in_batches() {
        use crate::storage::login_throttle::{Kind, count};
        let (_dir, db) = db();
        {
            let conn = &mut *db.conn().unwrap();
            crate::storage::write_transaction(conn, |conn| {
                for i in 0..(BATCH_ROWS * 2 + 7) {
                    count(
                        conn,
                        Kind::Address,
                        &format!("10.0.{}.{}", i / 256, i % 256),
                        T,
                        60,
                    )?;
                }
                count(conn, Kind::Account, "alice", T + 100, 60)
            })
            .unwrap();
        }
        let swept = sweep(&db, T + 60 + EXPIRY_MARGIN_SECS + 1, 0, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            swept,
            Swept {
                login_throttle: (BATCH_ROWS * 2 + 7) as u64,
                ..Swept::default()
            }
        );
        let left: Vec<String> = crate::storage::schema::login_throttle::table
            .select(crate::storage::schema::login_throttle::key)
            .load(&mut *db.conn().unwrap())
            .unwrap();
        assert_eq!(left, ["alice"]);
    }
}
