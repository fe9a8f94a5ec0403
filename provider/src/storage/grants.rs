//! Grants, authorization codes, access and refresh tokens, and remembered consents.
//!
//! Every code and token belongs to a grant (one authorization of a client by a user), so a
//! replayed code or a reused refresh token revokes the whole family in one statement set.
//! Only SHA-256 hashes of codes and tokens reach the database. Writes run in immediate
//! transactions so that concurrent requests on SQLite queue on the busy timeout instead of
//! failing with "database is locked" when a read transaction tries to upgrade.

use diesel::prelude::*;
use oidc_core::types::Scopes;
use oidc_core::unix_now;

use super::Conn;
use super::columns::ScopesColumn;
use super::schema::{access_tokens, authorization_codes, consents, grants, refresh_tokens, users};

/// One authorization of a client by a user.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = grants)]
pub struct Grant {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    #[diesel(deserialize_as = ScopesColumn, serialize_as = ScopesColumn)]
    pub scope: Scopes,
    pub auth_time: i64,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// The session (its public id) the grant was issued in.
    pub session_id: Option<String>,
    /// How the user signed in (`amr`, space separated), kept for every ID token of the grant.
    pub amr: String,
    /// The `acr` the sign-in reached (`pwd` or `mfa`).
    pub acr: String,
}

/// A stored authorization code (only its hash).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
pub struct AuthorizationCodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    #[diesel(deserialize_as = ScopesColumn, serialize_as = ScopesColumn)]
    pub scope: Scopes,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub auth_time: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub created_at: i64,
    /// As the grant's: how the user signed in.
    pub amr: String,
    pub acr: String,
}

/// A stored access token (only its hash).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = access_tokens)]
pub struct AccessTokenRow {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    #[diesel(deserialize_as = ScopesColumn, serialize_as = ScopesColumn)]
    pub scope: Scopes,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

/// A stored refresh token (only its hash).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    #[diesel(deserialize_as = ScopesColumn, serialize_as = ScopesColumn)]
    pub scope: Scopes,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

/// The scopes a user agreed to for a client.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = consents)]
pub struct Consent {
    pub user_id: String,
    pub client_id: String,
    #[diesel(deserialize_as = ScopesColumn, serialize_as = ScopesColumn)]
    pub scope: Scopes,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The user columns the endpoints need for claims (never the password hash).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct ClaimsUser {
    pub id: String,
    pub subject: String,
    pub username: String,
    pub email: String,
    pub email_verified: bool,
    pub given_name: String,
    pub family_name: String,
    pub is_active: bool,
    pub updated_at: i64,
}

/// An access token together with its user, as the resource endpoints need it.
#[derive(Debug, Clone)]
pub struct ActiveAccessToken {
    pub token: AccessTokenRow,
    pub user: ClaimsUser,
}

/// The user columns needed for claims, by id.
pub fn find_claims_user(conn: &mut Conn, user_id: &str) -> QueryResult<Option<ClaimsUser>> {
    users::table
        .find(user_id)
        .select(ClaimsUser::as_select())
        .get_result(conn)
        .optional()
}

/// The user columns needed for claims, by subject (the `sub` claim).
pub fn find_claims_user_by_subject(
    conn: &mut Conn,
    subject: &str,
) -> QueryResult<Option<ClaimsUser>> {
    users::table
        .filter(users::subject.eq(subject))
        .select(ClaimsUser::as_select())
        .get_result(conn)
        .optional()
}

/// Creates a grant and its authorization code in one write transaction.
pub fn insert_grant_with_code(
    conn: &mut Conn,
    grant: Grant,
    code: AuthorizationCodeRow,
) -> QueryResult<()> {
    super::write_transaction(conn, |conn| {
        diesel::insert_into(grants::table)
            .values(grant)
            .execute(conn)?;
        diesel::insert_into(authorization_codes::table)
            .values(code)
            .execute(conn)?;
        Ok(())
    })
}

/// A grant by id.
pub fn find_grant(conn: &mut Conn, grant_id: &str) -> QueryResult<Option<Grant>> {
    grants::table
        .find(grant_id)
        .select(Grant::as_select())
        .get_result(conn)
        .optional()
}

/// A grant by id, locked until the end of the caller's transaction on PostgreSQL (SQLite's
/// write transactions hold the whole database): tokens issued from it cannot race its
/// revocation, which locks the same row first.
pub fn find_grant_for_update(conn: &mut Conn, grant_id: &str) -> QueryResult<Option<Grant>> {
    match conn {
        Conn::Sqlite(_) => find_grant(conn, grant_id),
        Conn::Pg(pg) => grants::table
            .find(grant_id)
            .select(Grant::as_select())
            .for_update()
            .get_result(pg)
            .optional(),
    }
}

/// The user columns needed for claims, by id, the row locked until the end of the caller's
/// transaction on PostgreSQL: deactivation and deletion update that row first, so what is
/// issued for an active user is either seen and ended by them or refused after them.
pub fn find_claims_user_for_update(
    conn: &mut Conn,
    user_id: &str,
) -> QueryResult<Option<ClaimsUser>> {
    match conn {
        Conn::Sqlite(_) => find_claims_user(conn, user_id),
        Conn::Pg(pg) => users::table
            .find(user_id)
            .select(ClaimsUser::as_select())
            .for_no_key_update()
            .get_result(pg)
            .optional(),
    }
}

/// The user columns needed for claims, by id, the row share-locked until the end of the
/// caller's transaction on PostgreSQL. Enough for issuing codes and tokens: deactivation,
/// deletion and ending all of a user's sessions need the row exclusively, so they wait for the
/// issuers holding it and issuers after them see their outcome; issuers never wait for each
/// other (an exclusive lock here serialized every flow of one user across all replicas).
pub fn find_claims_user_for_share(
    conn: &mut Conn,
    user_id: &str,
) -> QueryResult<Option<ClaimsUser>> {
    match conn {
        Conn::Sqlite(_) => find_claims_user(conn, user_id),
        Conn::Pg(pg) => users::table
            .find(user_id)
            .select(ClaimsUser::as_select())
            .for_share()
            .get_result(pg)
            .optional(),
    }
}

/// An authorization code by hash.
pub fn find_code(conn: &mut Conn, code_hash: &str) -> QueryResult<Option<AuthorizationCodeRow>> {
    authorization_codes::table
        .find(code_hash)
        .select(AuthorizationCodeRow::as_select())
        .get_result(conn)
        .optional()
}

/// Marks a code used if it was not already; returns whether this call was the one that used it,
/// so two concurrent redemptions cannot both succeed.
pub fn mark_code_used(conn: &mut Conn, code_hash: &str, at: i64) -> QueryResult<bool> {
    let updated = diesel::update(
        authorization_codes::table
            .filter(authorization_codes::code_hash.eq(code_hash))
            .filter(authorization_codes::used_at.is_null()),
    )
    .set(authorization_codes::used_at.eq(at))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Stores an access token.
pub fn insert_access_token(conn: &mut Conn, row: AccessTokenRow) -> QueryResult<()> {
    diesel::insert_into(access_tokens::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Stores a refresh token.
pub fn insert_refresh_token(conn: &mut Conn, row: RefreshTokenRow) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// A refresh token by hash.
pub fn find_refresh_token(
    conn: &mut Conn,
    token_hash: &str,
) -> QueryResult<Option<RefreshTokenRow>> {
    refresh_tokens::table
        .find(token_hash)
        .select(RefreshTokenRow::as_select())
        .get_result(conn)
        .optional()
}

/// Marks a refresh token rotated if it was not already; returns whether this call did it.
pub fn mark_refresh_token_used(conn: &mut Conn, token_hash: &str, at: i64) -> QueryResult<bool> {
    let updated = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .filter(refresh_tokens::used_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(at))
    .execute(conn)?;
    Ok(updated == 1)
}

/// An access token by hash.
pub fn find_access_token(conn: &mut Conn, token_hash: &str) -> QueryResult<Option<AccessTokenRow>> {
    access_tokens::table
        .find(token_hash)
        .select(AccessTokenRow::as_select())
        .get_result(conn)
        .optional()
}

/// An access token that is neither revoked nor expired, with its (active) user, in one query.
pub fn find_active_access_token(
    conn: &mut Conn,
    token_hash: &str,
    at: i64,
) -> QueryResult<Option<ActiveAccessToken>> {
    let found = access_tokens::table
        .inner_join(users::table.on(users::id.eq(access_tokens::user_id)))
        .filter(access_tokens::token_hash.eq(token_hash))
        .filter(access_tokens::revoked_at.is_null())
        .filter(access_tokens::expires_at.gt(at))
        .filter(users::is_active.eq(true))
        .select((AccessTokenRow::as_select(), ClaimsUser::as_select()))
        .first::<(AccessTokenRow, ClaimsUser)>(conn)
        .optional()?;
    Ok(found.map(|(token, user)| ActiveAccessToken { token, user }))
}

/// Revokes one access token.
pub fn revoke_access_token(conn: &mut Conn, token_hash: &str, at: i64) -> QueryResult<()> {
    diesel::update(
        access_tokens::table
            .filter(access_tokens::token_hash.eq(token_hash))
            .filter(access_tokens::revoked_at.is_null()),
    )
    .set(access_tokens::revoked_at.eq(at))
    .execute(conn)
    .map(|_| ())
}

/// Revokes a grant and everything issued from it (tokens; unused codes become unusable because
/// the grant is revoked). Runs inside the caller's transaction when there is one.
pub fn revoke_grant_family(conn: &mut Conn, grant_id: &str, at: i64) -> QueryResult<bool> {
    let updated = diesel::update(
        grants::table
            .filter(grants::id.eq(grant_id))
            .filter(grants::revoked_at.is_null()),
    )
    .set(grants::revoked_at.eq(at))
    .execute(conn)?;
    diesel::update(
        access_tokens::table
            .filter(access_tokens::grant_id.eq(grant_id))
            .filter(access_tokens::revoked_at.is_null()),
    )
    .set(access_tokens::revoked_at.eq(at))
    .execute(conn)?;
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::grant_id.eq(grant_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(at))
    .execute(conn)?;
    Ok(updated == 1)
}

/// The grants of a user, newest first (revoked ones included, with `revoked_at` set).
pub fn list_grants_for_user(conn: &mut Conn, user_id: &str) -> QueryResult<Vec<Grant>> {
    grants::table
        .filter(grants::user_id.eq(user_id))
        .order(grants::created_at.desc())
        .select(Grant::as_select())
        .load(conn)
}

/// Revokes a grant and every token issued from it; returns whether the grant was active.
pub fn revoke_grant(conn: &mut Conn, grant_id: &str) -> QueryResult<bool> {
    let at = unix_now();
    super::write_transaction(conn, |conn| revoke_grant_family(conn, grant_id, at))
}

/// The consent a user gave a client, if any.
pub fn find_consent(
    conn: &mut Conn,
    user_id: &str,
    client_id: &str,
) -> QueryResult<Option<Consent>> {
    consents::table
        .find((user_id, client_id))
        .select(Consent::as_select())
        .get_result(conn)
        .optional()
}

/// Remembers the scopes a user agreed to for a client (replacing an earlier consent).
pub fn upsert_consent(
    conn: &mut Conn,
    user_id: &str,
    client_id: &str,
    scope: &Scopes,
    at: i64,
) -> QueryResult<()> {
    // One statement, so two decisions at once cannot both insert; `ON CONFLICT` is spelled
    // alike on both backends but diesel builds it per backend.
    let upsert = diesel::insert_into(consents::table)
        .values(Consent {
            user_id: user_id.to_owned(),
            client_id: client_id.to_owned(),
            scope: scope.clone(),
            created_at: at,
            updated_at: at,
        })
        .on_conflict((consents::user_id, consents::client_id))
        .do_update()
        .set((
            consents::scope.eq(ScopesColumn::from(scope.clone())),
            consents::updated_at.eq(at),
        ));
    match conn {
        Conn::Sqlite(conn) => upsert.execute(conn),
        Conn::Pg(conn) => upsert.execute(conn),
    }
    .map(|_| ())
}

/// The consents of a user, newest first.
pub fn list_consents_for_user(conn: &mut Conn, user_id: &str) -> QueryResult<Vec<Consent>> {
    consents::table
        .filter(consents::user_id.eq(user_id))
        .order(consents::updated_at.desc())
        .select(Consent::as_select())
        .load(conn)
}

/// Forgets a consent and revokes the user's grants for that client, since withdrawing consent
/// means the application loses its access too. Returns whether a consent existed.
pub fn delete_consent(conn: &mut Conn, user_id: &str, client_id: &str) -> QueryResult<bool> {
    withdraw_client(conn, user_id, client_id, unix_now()).map(|w| w.consent)
}

/// What [`withdraw_client`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Withdrawn {
    /// Whether a remembered consent was forgotten.
    pub consent: bool,
    /// How many active grants were revoked (with their tokens).
    pub grants: usize,
}

impl Withdrawn {
    /// Whether anything was there to withdraw.
    pub fn any(self) -> bool {
        self.consent || self.grants > 0
    }
}

/// Forgets the consent `user_id` gave `client_id` and revokes the user's active grants of that
/// client with their tokens. Only that user's rows are touched: another user's client id
/// withdraws nothing.
pub fn withdraw_client(
    conn: &mut Conn,
    user_id: &str,
    client_id: &str,
    at: i64,
) -> QueryResult<Withdrawn> {
    super::write_transaction(conn, |conn| {
        let deleted = diesel::delete(consents::table.find((user_id, client_id))).execute(conn)?;
        let grant_ids: Vec<String> = grants::table
            .filter(grants::user_id.eq(user_id))
            .filter(grants::client_id.eq(client_id))
            .filter(grants::revoked_at.is_null())
            .select(grants::id)
            .load(conn)?;
        let mut revoked = 0;
        for grant_id in &grant_ids {
            if revoke_grant_family(conn, grant_id, at)? {
                revoked += 1;
            }
        }
        Ok(Withdrawn {
            consent: deleted == 1,
            grants: revoked,
        })
    })
}
