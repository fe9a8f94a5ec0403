//! Back-channel logout deliveries (OpenID Connect Back-Channel Logout 1.0): one row per logout
//! token to post, recorded in the transaction that ends the session(s), sent by
//! `crate::backchannel`'s worker.

use std::collections::BTreeMap;

use diesel::prelude::*;

use super::schema::{clients, grants, logout_deliveries, users};
use super::sessions::SessionRow;
use super::{Conn, new_id};

pub const PENDING: &str = "pending";
pub const FAILED: &str = "failed";

/// Deliveries waiting at most: past it new ones are dropped with a warning, so an application
/// that never answers (or a flood of logins and logouts) cannot grow the table without bound.
pub const MAX_PENDING: i64 = 10_000;
/// Failed deliveries are kept this long for the admin page, then swept.
pub const KEEP_FAILED_SECS: i64 = 7 * 24 * 3600;

/// A delivery row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = logout_deliveries)]
pub struct Delivery {
    pub id: String,
    pub client_id: String,
    pub uri: String,
    pub subject: String,
    pub sid: Option<String>,
    #[serde(skip)]
    pub token: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Clients with a back-channel logout URI among `client_ids`: (id, uri, session required).
fn targets(conn: &mut Conn, client_ids: &[String]) -> QueryResult<Vec<(String, String, bool)>> {
    if client_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, Option<String>, bool)> = clients::table
        .filter(clients::id.eq_any(client_ids))
        .filter(clients::backchannel_logout_uri.is_not_null())
        .select((
            clients::id,
            clients::backchannel_logout_uri,
            clients::backchannel_logout_session_required,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, uri, required)| Some((id, uri?, required)))
        .collect())
}

fn subject_of(conn: &mut Conn, user_id: &str) -> QueryResult<Option<String>> {
    users::table
        .find(user_id)
        .select(users::subject)
        .get_result(conn)
        .optional()
}

fn insert(
    conn: &mut Conn,
    client_id: &str,
    uri: &str,
    subject: &str,
    sid: Option<&str>,
    at: i64,
) -> QueryResult<()> {
    diesel::insert_into(logout_deliveries::table)
        .values(&Delivery {
            id: new_id(),
            client_id: client_id.to_owned(),
            uri: uri.to_owned(),
            subject: subject.to_owned(),
            sid: sid.map(str::to_owned),
            token: None,
            attempts: 0,
            next_attempt_at: at,
            last_error: None,
            status: PENDING.to_owned(),
            created_at: at,
            updated_at: at,
        })
        .execute(conn)?;
    Ok(())
}

fn room(conn: &mut Conn) -> QueryResult<i64> {
    let pending: i64 = logout_deliveries::table
        .filter(logout_deliveries::status.eq(PENDING))
        .count()
        .get_result(conn)?;
    Ok(MAX_PENDING - pending)
}

/// Records a logout token for every application with a grant issued in the ended `session`
/// (`sid` and `sub`). Runs in the caller's transaction; returns how many were recorded.
pub fn record_for_session(conn: &mut Conn, session: &SessionRow, at: i64) -> QueryResult<usize> {
    let client_ids: Vec<String> = grants::table
        .filter(grants::session_id.eq(&session.public_id))
        .select(grants::client_id)
        .distinct()
        .load(conn)?;
    let targets = targets(conn, &client_ids)?;
    if targets.is_empty() {
        return Ok(0);
    }
    let Some(subject) = subject_of(conn, &session.user_id)? else {
        return Ok(0);
    };
    let mut room = room(conn)?;
    let mut recorded = 0;
    for (client_id, uri, _) in targets {
        if room <= 0 {
            tracing::warn!(client_id, "too many pending logout deliveries; one dropped");
            continue;
        }
        insert(
            conn,
            &client_id,
            &uri,
            &subject,
            Some(&session.public_id),
            at,
        )?;
        room -= 1;
        recorded += 1;
    }
    Ok(recorded)
}

/// Records logout tokens for a user-wide end (password reset, deactivation, deletion, admin):
/// to every application with a grant of the user, one per ended session it had a grant in
/// (`sid` and `sub`), or one with `sub` alone when it had none in those sessions (not sent to
/// an application that requires `sid`). Call before the grants are deleted.
pub fn record_for_user(
    conn: &mut Conn,
    user_id: &str,
    ended: &[SessionRow],
    at: i64,
) -> QueryResult<usize> {
    let rows: Vec<(String, Option<String>)> = grants::table
        .filter(grants::user_id.eq(user_id))
        .select((grants::client_id, grants::session_id))
        .distinct()
        .load(conn)?;
    let ended_ids: std::collections::HashSet<&str> =
        ended.iter().map(|s| s.public_id.as_str()).collect();
    let mut sessions_of: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for (client_id, sid) in rows {
        let entry = sessions_of.entry(client_id).or_default();
        if let Some(sid) = sid.filter(|s| ended_ids.contains(s.as_str())) {
            entry.insert(sid);
        }
    }
    let client_ids: Vec<String> = sessions_of.keys().cloned().collect();
    let targets = targets(conn, &client_ids)?;
    if targets.is_empty() {
        return Ok(0);
    }
    let Some(subject) = subject_of(conn, user_id)? else {
        return Ok(0);
    };
    let mut room = room(conn)?;
    let mut recorded = 0;
    for (client_id, uri, session_required) in targets {
        let sids = sessions_of.get(&client_id).cloned().unwrap_or_default();
        let tokens: Vec<Option<String>> = if sids.is_empty() {
            if session_required {
                continue;
            }
            vec![None]
        } else {
            sids.into_iter().map(Some).collect()
        };
        for sid in tokens {
            if room <= 0 {
                tracing::warn!(client_id, "too many pending logout deliveries; one dropped");
                continue;
            }
            insert(conn, &client_id, &uri, &subject, sid.as_deref(), at)?;
            room -= 1;
            recorded += 1;
        }
    }
    Ok(recorded)
}

/// Pending deliveries due at `at`, oldest first.
pub fn due(conn: &mut Conn, at: i64, limit: i64) -> QueryResult<Vec<Delivery>> {
    logout_deliveries::table
        .filter(logout_deliveries::status.eq(PENDING))
        .filter(logout_deliveries::next_attempt_at.le(at))
        .order(logout_deliveries::next_attempt_at.asc())
        .select(Delivery::as_select())
        .limit(limit)
        .load(conn)
}

/// Takes a due delivery for one attempt: moves its next attempt to `lease_until`, only if
/// nobody else (another worker, another process) took it first. Whether this caller has it.
pub fn claim(conn: &mut Conn, delivery: &Delivery, lease_until: i64) -> QueryResult<bool> {
    let n = diesel::update(
        logout_deliveries::table
            .find(&delivery.id)
            .filter(logout_deliveries::status.eq(PENDING))
            .filter(logout_deliveries::next_attempt_at.eq(delivery.next_attempt_at)),
    )
    .set(logout_deliveries::next_attempt_at.eq(lease_until))
    .execute(conn)?;
    Ok(n == 1)
}

/// A delivery was accepted: it is deleted.
pub fn delivered(conn: &mut Conn, id: &str) -> QueryResult<()> {
    diesel::delete(logout_deliveries::table.find(id)).execute(conn)?;
    Ok(())
}

/// An attempt failed: retried at `retry_at`, or given up (`None`).
pub fn failed(
    conn: &mut Conn,
    id: &str,
    token: &str,
    error: &str,
    retry_at: Option<i64>,
    at: i64,
) -> QueryResult<()> {
    let error: String = error.chars().take(500).collect();
    diesel::update(logout_deliveries::table.find(id))
        .set((
            logout_deliveries::attempts.eq(logout_deliveries::attempts + 1),
            logout_deliveries::last_error.eq(error),
            logout_deliveries::token.eq(token),
            logout_deliveries::status.eq(if retry_at.is_some() { PENDING } else { FAILED }),
            logout_deliveries::next_attempt_at.eq(retry_at.unwrap_or(at)),
            logout_deliveries::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

/// The most recent failed deliveries, newest first.
pub fn recent_failed(conn: &mut Conn, limit: i64) -> QueryResult<Vec<Delivery>> {
    logout_deliveries::table
        .filter(logout_deliveries::status.eq(FAILED))
        .order(logout_deliveries::updated_at.desc())
        .select(Delivery::as_select())
        .limit(limit)
        .load(conn)
}

/// Deletes up to `limit` failed deliveries last tried before `cutoff`; how many.
pub fn sweep_failed(conn: &mut Conn, cutoff: i64, limit: i64) -> QueryResult<usize> {
    let ids: Vec<String> = logout_deliveries::table
        .filter(logout_deliveries::status.eq(FAILED))
        .filter(logout_deliveries::updated_at.lt(cutoff))
        .select(logout_deliveries::id)
        .limit(limit)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(logout_deliveries::table.filter(logout_deliveries::id.eq_any(&ids)))
        .execute(conn)
}
