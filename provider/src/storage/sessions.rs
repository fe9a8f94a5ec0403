//! Browser sessions: one row per login, found by the SHA-256 hash of the secret in the cookie.

use diesel::prelude::*;

use super::Conn;
use super::schema::{grants, sessions, users};

/// A stored session (the cookie secret only as its hash).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    #[serde(skip)]
    pub id_hash: String,
    /// Random, not secret: the `sid` claim and the key grants record.
    pub public_id: String,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub client_addr: String,
    pub user_agent: String,
    pub expires_at: i64,
    pub idle_expires_at: i64,
}

impl SessionRow {
    /// Whether the session is still valid at `at` with the idle lifetime `idle_secs` (checked
    /// against both the stored idle end and the setting, so lowering the setting takes effect
    /// at once).
    pub fn is_live(&self, at: i64, idle_secs: i64) -> bool {
        at < self.expires_at
            && at < self.idle_expires_at
            && at < self.last_seen_at.saturating_add(idle_secs)
    }
}

/// Stores a new session, deleting the one it replaces (the previous cookie's, if any) and the
/// user's least recently used sessions beyond `max_per_user` (`PROVIDER_SESSIONS_PER_USER`):
/// whoever knows a password cannot grow the table without bound by logging in again and again.
pub fn insert(
    conn: &mut Conn,
    row: &SessionRow,
    replaces: Option<&str>,
    max_per_user: i64,
) -> QueryResult<()> {
    if let Some(old) = replaces {
        end(conn, old, row.created_at)?;
    }
    diesel::insert_into(sessions::table)
        .values(row)
        .execute(conn)?;
    let beyond: Vec<String> = sessions::table
        .filter(sessions::user_id.eq(&row.user_id))
        .order((sessions::last_seen_at.desc(), sessions::created_at.desc()))
        .select(sessions::id_hash)
        .offset(max_per_user)
        .limit(max_per_user)
        .load(conn)?;
    let beyond: Vec<String> = beyond.into_iter().filter(|h| *h != row.id_hash).collect();
    if !beyond.is_empty() {
        let ended: Vec<SessionRow> =
            diesel::delete(sessions::table.filter(sessions::id_hash.eq_any(&beyond)))
                .returning(sessions::all_columns)
                .load(conn)?;
        for session in &ended {
            after_end(conn, session, row.created_at)?;
        }
    }
    Ok(())
}

/// The session with this hash and whether its user is active: one primary-key lookup and one
/// on the users' primary key.
pub fn find(conn: &mut Conn, id_hash: &str) -> QueryResult<Option<(SessionRow, bool)>> {
    sessions::table
        .find(id_hash)
        .inner_join(users::table)
        .select((SessionRow::as_select(), users::is_active))
        .get_result(conn)
        .optional()
}

/// Marks the session as seen at `at`, moving its idle end on.
pub fn touch(conn: &mut Conn, id_hash: &str, at: i64, idle_secs: i64) -> QueryResult<usize> {
    diesel::update(sessions::table.find(id_hash))
        .set((
            sessions::last_seen_at.eq(at),
            sessions::idle_expires_at.eq(at.saturating_add(idle_secs)),
        ))
        .execute(conn)
}

/// Raises a live session to a second factor: its methods become `amr` and its cookie secret is
/// replaced (new hash), keeping its public id, auth time and grants. Only the row that still has
/// `old_hash`, `public_id` and `user_id` changes, so an ended or replaced session stays ended.
pub fn elevate(
    conn: &mut Conn,
    old_hash: &str,
    new_hash: &str,
    public_id: &str,
    user_id: &str,
    amr: &str,
) -> QueryResult<bool> {
    let updated = diesel::update(
        sessions::table
            .filter(sessions::id_hash.eq(old_hash))
            .filter(sessions::public_id.eq(public_id))
            .filter(sessions::user_id.eq(user_id)),
    )
    .set((sessions::id_hash.eq(new_hash), sessions::amr.eq(amr)))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Ends the session: deletes it and records the back-channel logouts of the applications that
/// have a grant in it, in the caller's transaction. Of two logouts at once only the one that
/// deleted the row records them. Returns the row, if there was one.
pub fn end(conn: &mut Conn, id_hash: &str, at: i64) -> QueryResult<Option<SessionRow>> {
    let ended = delete(conn, id_hash)?;
    if let Some(session) = &ended {
        after_end(conn, session, at)?;
    }
    Ok(ended)
}

/// What follows the end of `session` (logout, admin, idle or absolute end), in the caller's
/// transaction: the applications with a grant in it are told (back-channel logout), and those
/// grants are revoked with their tokens, except grants holding `offline_access`, which are
/// meant to outlive the login (Back-Channel Logout 1.0 §2.7; OpenID Connect Core §11).
fn after_end(conn: &mut Conn, session: &SessionRow, at: i64) -> QueryResult<()> {
    super::logout_deliveries::record_for_session(conn, session, at)?;
    let grants: Vec<(String, String)> = grants::table
        .filter(grants::session_id.eq(&session.public_id))
        .filter(grants::revoked_at.is_null())
        .select((grants::id, grants::scope))
        .load(conn)?;
    for (grant_id, scope) in grants {
        if !scope.split_whitespace().any(|s| s == "offline_access") {
            super::grants::revoke_grant_family(conn, &grant_id, at)?;
        }
    }
    Ok(())
}

/// Deletes the session; the row it deleted, if there was one.
fn delete(conn: &mut Conn, id_hash: &str) -> QueryResult<Option<SessionRow>> {
    diesel::delete(sessions::table.find(id_hash))
        .returning(sessions::all_columns)
        .get_result(conn)
        .optional()
}

/// Whether the session with this public id still exists, and on PostgreSQL holds it (shared)
/// until the end of the caller's transaction: a grant recorded in it then cannot slip past
/// the end of the session, which deletes the row before it revokes the session's grants.
pub fn hold(conn: &mut Conn, public_id: &str) -> QueryResult<bool> {
    let query = sessions::table
        .filter(sessions::public_id.eq(public_id))
        .select(sessions::id_hash);
    let found: Option<String> = match conn {
        Conn::Sqlite(sqlite) => query.get_result(sqlite).optional()?,
        Conn::Pg(pg) => query.for_share().get_result(pg).optional()?,
    };
    Ok(found.is_some())
}

/// The sessions of a user, newest first.
pub fn for_user(conn: &mut Conn, user_id: &str) -> QueryResult<Vec<SessionRow>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .order(sessions::created_at.desc())
        .select(SessionRow::as_select())
        .load(conn)
}

/// Deletes up to `limit` sessions that ended (absolute or idle end) before `cutoff`; how many.
pub fn sweep_batch(conn: &mut Conn, cutoff: i64, limit: usize) -> QueryResult<usize> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let ended: Vec<String> = sessions::table
        .filter(
            sessions::expires_at
                .lt(cutoff)
                .or(sessions::idle_expires_at.lt(cutoff)),
        )
        .select(sessions::id_hash)
        .limit(limit)
        .load(conn)?;
    super::logout_deliveries::sweep_failed(
        conn,
        cutoff - super::logout_deliveries::KEEP_FAILED_SECS,
        limit,
    )?;
    if ended.is_empty() {
        return Ok(0);
    }
    let ended: Vec<SessionRow> =
        diesel::delete(sessions::table.filter(sessions::id_hash.eq_any(&ended)))
            .returning(sessions::all_columns)
            .load(conn)?;
    for session in &ended {
        after_end(conn, session, cutoff)?;
    }
    Ok(ended.len())
}

/// Ends everything a user holds: deletes all their sessions and revokes all their grants and
/// the access and refresh tokens of those grants (an unused code dies with its grant). Revoked
/// rows stay revoked, so reactivating the user later brings none of them back. Returns the
/// sessions deleted. Runs in the caller's transaction.
pub fn end_everything_for_user(
    conn: &mut Conn,
    user_id: &str,
    at: i64,
) -> QueryResult<Vec<SessionRow>> {
    use super::schema::{access_tokens, grants, refresh_tokens};
    // The user's row first (on PostgreSQL), as the code and token endpoints lock it before the
    // grant: what they issue at the same time either commits first, and is ended here, or
    // finds the user's grants revoked; and the two never wait for each other in a circle.
    super::grants::find_claims_user_for_update(conn, user_id)?;
    let ended = diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id)))
        .returning(sessions::all_columns)
        .load(conn)?;
    super::logout_deliveries::record_for_user(conn, user_id, &ended, at)?;
    // Through the user's grants (indexed by user and by grant), not a scan of the token tables.
    let grant_ids: Vec<String> = grants::table
        .filter(grants::user_id.eq(user_id))
        .select(grants::id)
        .load(conn)?;
    for chunk in grant_ids.chunks(500) {
        diesel::update(
            access_tokens::table
                .filter(access_tokens::grant_id.eq_any(chunk))
                .filter(access_tokens::revoked_at.is_null()),
        )
        .set(access_tokens::revoked_at.eq(at))
        .execute(conn)?;
        diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::grant_id.eq_any(chunk))
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set(refresh_tokens::revoked_at.eq(at))
        .execute(conn)?;
    }
    diesel::update(
        grants::table
            .filter(grants::user_id.eq(user_id))
            .filter(grants::revoked_at.is_null()),
    )
    .set(grants::revoked_at.eq(at))
    .execute(conn)?;
    Ok(ended)
}

/// Ends one session of a user, by its public id (as [`end`]); whether it existed.
pub fn end_for_user(conn: &mut Conn, user_id: &str, public_id: &str, at: i64) -> QueryResult<bool> {
    let ended: Option<SessionRow> = diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::public_id.eq(public_id)),
    )
    .returning(sessions::all_columns)
    .get_result(conn)
    .optional()?;
    if let Some(session) = &ended {
        after_end(conn, session, at)?;
    }
    Ok(ended.is_some())
}

/// Ends every session of a user but the one with public id `keep`, each as [`end`] (the
/// applications with a grant in it are told, its grants revoked); the sessions ended. Runs in
/// the caller's transaction.
pub fn end_others_for_user(
    conn: &mut Conn,
    user_id: &str,
    keep: &str,
    at: i64,
) -> QueryResult<Vec<SessionRow>> {
    let ended: Vec<SessionRow> = diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::public_id.ne(keep)),
    )
    .returning(sessions::all_columns)
    .load(conn)?;
    for session in &ended {
        after_end(conn, session, at)?;
    }
    Ok(ended)
}

/// After a password change made in the session `keep`: ends the user's other sessions (as
/// [`end_others_for_user`]) and revokes every grant not issued in `keep`, `offline_access`
/// ones included, with their tokens: whoever knew the old password must not keep what it got
/// them, while the session that changed it goes on. Runs in the caller's transaction.
pub fn end_everything_else_for_user(
    conn: &mut Conn,
    user_id: &str,
    keep: &str,
    at: i64,
) -> QueryResult<Vec<SessionRow>> {
    // The user's row first, as in `end_everything_for_user`: issuers hold it while they issue.
    super::grants::find_claims_user_for_update(conn, user_id)?;
    let ended = end_others_for_user(conn, user_id, keep, at)?;
    let elsewhere: Vec<String> = grants::table
        .filter(grants::user_id.eq(user_id))
        .filter(grants::revoked_at.is_null())
        .filter(grants::session_id.is_null().or(grants::session_id.ne(keep)))
        .select(grants::id)
        .load(conn)?;
    for grant_id in &elsewhere {
        super::grants::revoke_grant_family(conn, grant_id, at)?;
    }
    Ok(ended)
}
