//! TOTP credentials (RFC 6238), one per user: enrolled unconfirmed, confirmed by a first code.
//! `last_used_step` is the highest time step accepted so far; every acceptance is a conditional
//! update on it, so a code is accepted at most once, even when replicas race on PostgreSQL.

use diesel::prelude::*;

use super::Conn;
use super::schema::{passkeys, recovery_codes, totp_credentials, users};

/// A stored TOTP credential.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = totp_credentials)]
pub struct TotpCredential {
    pub user_id: String,
    /// The shared secret, base32 without padding (the authenticator needs it in clear).
    pub secret: String,
    /// When a first code confirmed it; until then it is no factor.
    pub confirmed_at: Option<i64>,
    /// The highest time step accepted so far.
    pub last_used_step: i64,
    pub created_at: i64,
}

impl TotpCredential {
    pub fn is_confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

/// The user's credential, confirmed or not.
pub fn find(conn: &mut Conn, user_id: &str) -> QueryResult<Option<TotpCredential>> {
    totp_credentials::table
        .find(user_id)
        .select(TotpCredential::as_select())
        .get_result(conn)
        .optional()
}

/// Stores a new unconfirmed secret, replacing an unconfirmed one. Returns false (and changes
/// nothing) when the user has a confirmed credential: that one must be removed first.
pub fn start(conn: &mut Conn, user_id: &str, secret: &str, at: i64) -> QueryResult<bool> {
    diesel::delete(
        totp_credentials::table
            .filter(totp_credentials::user_id.eq(user_id))
            .filter(totp_credentials::confirmed_at.is_null()),
    )
    .execute(conn)?;
    let row = TotpCredential {
        user_id: user_id.to_owned(),
        secret: secret.to_owned(),
        confirmed_at: None,
        last_used_step: 0,
        created_at: at,
    };
    // In a savepoint: on PostgreSQL a failed statement would otherwise abort the caller's
    // whole transaction.
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(totp_credentials::table)
            .values(row)
            .execute(conn)
    });
    match inserted {
        Ok(_) => Ok(true),
        // A confirmed credential holds the key (or one was confirmed meanwhile).
        Err(e) if super::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Confirms the unconfirmed credential holding `secret` with a code of time step `step`.
/// Naming the secret makes a confirmation for a secret replaced meanwhile (another tab) fail.
pub fn confirm(
    conn: &mut Conn,
    user_id: &str,
    secret: &str,
    step: i64,
    at: i64,
) -> QueryResult<bool> {
    let updated = diesel::update(
        totp_credentials::table
            .filter(totp_credentials::user_id.eq(user_id))
            .filter(totp_credentials::secret.eq(secret))
            .filter(totp_credentials::confirmed_at.is_null())
            .filter(totp_credentials::last_used_step.lt(step)),
    )
    .set((
        totp_credentials::confirmed_at.eq(at),
        totp_credentials::last_used_step.eq(step),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Accepts a code of time step `step` for the confirmed credential: true only for the first
/// use of a step later than every step accepted before.
pub fn use_step(conn: &mut Conn, user_id: &str, step: i64) -> QueryResult<bool> {
    let updated = diesel::update(
        totp_credentials::table
            .filter(totp_credentials::user_id.eq(user_id))
            .filter(totp_credentials::confirmed_at.is_not_null())
            .filter(totp_credentials::last_used_step.lt(step)),
    )
    .set(totp_credentials::last_used_step.eq(step))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Removes the user's credential and recovery codes; returns whether a confirmed one existed.
pub fn remove(conn: &mut Conn, user_id: &str) -> QueryResult<bool> {
    let confirmed = diesel::delete(
        totp_credentials::table
            .filter(totp_credentials::user_id.eq(user_id))
            .filter(totp_credentials::confirmed_at.is_not_null()),
    )
    .execute(conn)?;
    diesel::delete(totp_credentials::table.filter(totp_credentials::user_id.eq(user_id)))
        .execute(conn)?;
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    Ok(confirmed == 1)
}

/// The second factors a user has, as the login needs to know them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Factors {
    /// A confirmed TOTP credential.
    pub totp: bool,
    /// At least one passkey.
    pub passkey: bool,
}

impl Factors {
    /// Whether the user has any second factor.
    pub fn any(self) -> bool {
        self.totp || self.passkey
    }
}

/// The second factors of `user_id`.
pub fn factors(conn: &mut Conn, user_id: &str) -> QueryResult<Factors> {
    let totp = diesel::select(diesel::dsl::exists(
        totp_credentials::table
            .filter(totp_credentials::user_id.eq(user_id))
            .filter(totp_credentials::confirmed_at.is_not_null()),
    ))
    .get_result(conn)?;
    let passkey = diesel::select(diesel::dsl::exists(
        passkeys::table.filter(passkeys::user_id.eq(user_id)),
    ))
    .get_result(conn)?;
    Ok(Factors { totp, passkey })
}

/// Whether any active administrator has a second factor (the `auto` admin policy).
pub fn any_admin_has_factor(conn: &mut Conn) -> QueryResult<bool> {
    let admins = users::table
        .filter(users::is_admin.eq(true))
        .filter(users::is_active.eq(true))
        .select(users::id);
    let totp = diesel::select(diesel::dsl::exists(
        totp_credentials::table
            .filter(totp_credentials::confirmed_at.is_not_null())
            .filter(totp_credentials::user_id.eq_any(admins)),
    ))
    .get_result(conn)?;
    if totp {
        return Ok(true);
    }
    diesel::select(diesel::dsl::exists(
        passkeys::table.filter(passkeys::user_id.eq_any(admins)),
    ))
    .get_result(conn)
}
