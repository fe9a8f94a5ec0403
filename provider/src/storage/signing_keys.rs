//! The `signing_keys` table: private keys in PEM with their public JWK, and their life cycle
//! (active signs new tokens, published still verifies old ones, retired is gone from the JWKS).

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::prelude::*;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use oidc_core::jose::{Algorithm, SigningKey};
use oidc_core::unix_now;

use super::columns::{AlgorithmColumn, parse_text};
use super::schema::signing_keys;
use super::{Conn, StorageError};

/// Where a key is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow, serde::Serialize)]
#[diesel(sql_type = Text)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Signs new tokens of its algorithm (one per algorithm).
    Active,
    /// No longer signs, still in the JWKS so tokens it signed verify.
    Published,
    /// Out of the JWKS.
    Retired,
}

impl KeyStatus {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Published => "published",
            Self::Retired => "retired",
        }
    }

    fn parse(value: &str) -> Result<Self, String> {
        [Self::Active, Self::Published, Self::Retired]
            .into_iter()
            .find(|status| status.as_str() == value)
            .ok_or_else(|| "not a key status".to_owned())
    }
}

impl std::fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<DB: Backend> FromSql<Text, DB> for KeyStatus
where
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        parse_text::<DB, _, _>(bytes, "key status", Self::parse)
    }
}

impl<DB: Backend> ToSql<Text, DB> for KeyStatus
where
    str: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.as_str().to_sql(out)
    }
}

/// A stored key.
#[derive(Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = signing_keys)]
pub struct KeyRow {
    /// RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// The algorithm it signs with.
    #[diesel(deserialize_as = AlgorithmColumn, serialize_as = AlgorithmColumn)]
    pub alg: Algorithm,
    /// PKCS#8 PEM of the private key.
    #[serde(skip)]
    pub private_pem: String,
    /// The public JWK as JSON.
    pub public_jwk: String,
    /// Where the key is in its life cycle.
    pub status: KeyStatus,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// When another key replaced it as the active one.
    pub rotated_at: Option<i64>,
    /// When it left the JWKS.
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

fn row_for(key: &SigningKey, status: KeyStatus) -> Result<KeyRow, StorageError> {
    let public_jwk = serde_json::to_string(&key.public_jwk())
        .map_err(|e| StorageError::Corrupt(format!("public key of {}: {e}", key.kid())))?;
    Ok(KeyRow {
        kid: key.kid().to_owned(),
        alg: key.algorithm(),
        private_pem: key.to_pem(),
        public_jwk,
        status,
        created_at: unix_now(),
        rotated_at: None,
        retired_at: None,
    })
}

/// Every key, newest first.
pub fn list(conn: &mut Conn) -> Result<Vec<KeyRow>, StorageError> {
    Ok(signing_keys::table
        .order((signing_keys::created_at.desc(), signing_keys::kid.asc()))
        .select(KeyRow::as_select())
        .load(conn)?)
}

/// The active and published keys.
pub fn published(conn: &mut Conn) -> Result<Vec<KeyRow>, StorageError> {
    Ok(signing_keys::table
        .filter(signing_keys::status.eq_any([KeyStatus::Active, KeyStatus::Published]))
        .order((signing_keys::created_at.desc(), signing_keys::kid.asc()))
        .select(KeyRow::as_select())
        .load(conn)?)
}

/// A cheap summary of the table (`kid:status` of every key), compared to notice changes made
/// by another process on the same database.
pub fn fingerprint(conn: &mut Conn) -> Result<Vec<(String, KeyStatus)>, StorageError> {
    Ok(signing_keys::table
        .order(signing_keys::kid.asc())
        .select((signing_keys::kid, signing_keys::status))
        .load(conn)?)
}

/// Whether `alg` has an active key.
pub fn has_active(conn: &mut Conn, alg: Algorithm) -> Result<bool, StorageError> {
    let n: i64 = signing_keys::table
        .filter(signing_keys::alg.eq(AlgorithmColumn::from(alg)))
        .filter(signing_keys::status.eq(KeyStatus::Active))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Stores `key` as the active key of its algorithm unless one exists already (another process
/// may have been first); returns whether it was stored.
pub fn insert_if_no_active(conn: &mut Conn, key: &SigningKey) -> Result<bool, StorageError> {
    let row = row_for(key, KeyStatus::Active)?;
    crate::storage::write_transaction(conn, |conn| -> Result<bool, StorageError> {
        // Replicas starting together on a fresh database each try: one key per algorithm.
        crate::storage::serialize(conn, crate::storage::Serialized::SigningKeys)?;
        if has_active(conn, row.alg)? {
            return Ok(false);
        }
        diesel::insert_into(signing_keys::table)
            .values(row)
            .execute(conn)?;
        Ok(true)
    })
}

/// Makes `key` the active key of its algorithm; the previous active key stays published.
pub fn rotate(conn: &mut Conn, key: &SigningKey) -> Result<(), StorageError> {
    let row = row_for(key, KeyStatus::Active)?;
    let at = row.created_at;
    crate::storage::write_transaction(conn, |conn| -> Result<(), StorageError> {
        // Two rotations at once must not leave two active keys.
        crate::storage::serialize(conn, crate::storage::Serialized::SigningKeys)?;
        diesel::update(
            signing_keys::table
                .filter(signing_keys::alg.eq(AlgorithmColumn::from(row.alg)))
                .filter(signing_keys::status.eq(KeyStatus::Active)),
        )
        .set((
            signing_keys::status.eq(KeyStatus::Published),
            signing_keys::rotated_at.eq(at),
        ))
        .execute(conn)?;
        diesel::insert_into(signing_keys::table)
            .values(row)
            .execute(conn)?;
        Ok(())
    })
}

/// What [`retire`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetireOutcome {
    /// The key left the JWKS.
    Retired,
    /// No such key.
    NotFound,
    /// The key is active: rotate first, so there is always a key to sign with.
    Active,
    /// The key was already retired.
    AlreadyRetired,
}

/// Removes a published key from the JWKS; tokens it signed stop verifying.
pub fn retire(conn: &mut Conn, kid: &str) -> Result<RetireOutcome, StorageError> {
    crate::storage::write_transaction(conn, |conn| -> Result<RetireOutcome, StorageError> {
        // Not the key a concurrent rotation is making active (or demoting) mid-way.
        crate::storage::serialize(conn, crate::storage::Serialized::SigningKeys)?;
        let status: Option<KeyStatus> = signing_keys::table
            .find(kid)
            .select(signing_keys::status)
            .get_result(conn)
            .optional()?;
        match status {
            None => Ok(RetireOutcome::NotFound),
            Some(KeyStatus::Active) => Ok(RetireOutcome::Active),
            Some(KeyStatus::Retired) => Ok(RetireOutcome::AlreadyRetired),
            Some(KeyStatus::Published) => {
                diesel::update(signing_keys::table.find(kid))
                    .set((
                        signing_keys::status.eq(KeyStatus::Retired),
                        signing_keys::retired_at.eq(unix_now()),
                    ))
                    .execute(conn)?;
                Ok(RetireOutcome::Retired)
            }
        }
    })
}
