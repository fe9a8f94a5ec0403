//! A user's second factors as the admin site sees them: what is enrolled (never the secrets),
//! and their removal when an administrator resets them.

use diesel::prelude::*;

use super::Conn;
use super::schema::{passkeys, recovery_codes, totp_credentials};

/// A passkey as listed: its name and dates, not the credential.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PasskeyLine {
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// What second factors a user has.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// When TOTP was confirmed (its enrolment); `None` without a confirmed authenticator (an
    /// enrolment never confirmed is no factor).
    pub totp_confirmed_at: Option<i64>,
    /// Recovery codes not used yet.
    pub unused_recovery_codes: i64,
    /// Passkeys, oldest first.
    pub passkeys: Vec<PasskeyLine>,
}

impl Summary {
    /// Whether the user has any second factor.
    pub fn any(&self) -> bool {
        self.totp_confirmed_at.is_some()
            || self.unused_recovery_codes > 0
            || !self.passkeys.is_empty()
    }
}

/// The second factors of `user_id`.
pub fn summary(conn: &mut Conn, user_id: &str) -> QueryResult<Summary> {
    let totp_confirmed_at: Option<i64> = totp_credentials::table
        .find(user_id)
        .select(totp_credentials::confirmed_at)
        .get_result::<Option<i64>>(conn)
        .optional()?
        .flatten();
    let unused_recovery_codes = recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?;
    let passkeys = passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .order((passkeys::created_at.asc(), passkeys::id.asc()))
        .select((passkeys::name, passkeys::created_at, passkeys::last_used_at))
        .load::<(String, i64, Option<i64>)>(conn)?
        .into_iter()
        .map(|(name, created_at, last_used_at)| PasskeyLine {
            name,
            created_at,
            last_used_at,
        })
        .collect();
    Ok(Summary {
        totp_confirmed_at,
        unused_recovery_codes,
        passkeys,
    })
}

/// Rows removed by [`reset`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Removed {
    pub totp: usize,
    pub recovery_codes: usize,
    pub passkeys: usize,
}

impl Removed {
    /// `totp=1 recovery_codes=10 passkeys=2`, for the audit event's detail.
    pub fn describe(&self) -> String {
        format!(
            "totp={} recovery_codes={} passkeys={}",
            self.totp, self.recovery_codes, self.passkeys
        )
    }
}

/// Deletes every second factor of `user_id` (TOTP, recovery codes, passkeys). Runs in the
/// caller's transaction, which also ends the user's sessions: whoever enrolled a factor on a
/// stolen session must not keep that session.
pub fn reset(conn: &mut Conn, user_id: &str) -> QueryResult<Removed> {
    Ok(Removed {
        totp: diesel::delete(totp_credentials::table.filter(totp_credentials::user_id.eq(user_id)))
            .execute(conn)?,
        recovery_codes: diesel::delete(
            recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)),
        )
        .execute(conn)?,
        passkeys: diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id)))
            .execute(conn)?,
    })
}

/// Resets the factors of `user_id` and ends everything the user holds (sessions, grants,
/// tokens), recording `event` (a `factors_reset` with its actor; the rows removed are added
/// as its detail). Runs in the caller's transaction.
pub fn reset_and_end_sessions(
    conn: &mut Conn,
    user_id: &str,
    event: super::audit::Event,
    at: i64,
) -> QueryResult<Removed> {
    // Sessions first: ending them locks the user's row (on PostgreSQL) before any factor row,
    // in the order sign-ins take them, so the two never wait for each other in a circle.
    super::sessions::end_everything_for_user(conn, user_id, at)?;
    let removed = reset(conn, user_id)?;
    super::audit::record(conn, &event.with_detail(&removed.describe()))?;
    Ok(removed)
}
