//! Typed values in text columns, through diesel's `ToSql` and `FromSql`: a stored value is read
//! once into its type, and one that does not parse is a deserialization error (a 500 and a log
//! line), never a default such as an empty set of scopes.
//!
//! Reading is written for any backend whose text is a `String`. Writing a value with a static
//! name (an algorithm) is too; writing scopes, whose text is made on the spot, is one small impl
//! per backend.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;
use oidc_core::jose::Algorithm;
use oidc_core::types::Scopes;

/// Reads a text column and parses it, naming the value in the error when it does not parse.
pub fn parse_text<DB, T, E>(
    bytes: DB::RawValue<'_>,
    what: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> deserialize::Result<T>
where
    DB: Backend,
    String: FromSql<Text, DB>,
    E: std::fmt::Debug,
{
    let text = String::from_sql(bytes)?;
    parse(&text).map_err(|e| format!("corrupt stored {what} {text:?}: {e:?}").into())
}

/// Declares a text column holding an oidc-core value: the value goes in and out through `From`,
/// and is parsed when read.
macro_rules! text_column {
    ($(#[$meta:meta])* $column:ident($value:ty), $what:literal, $parse:path) => {
        $(#[$meta])*
        #[derive(Debug, Clone, AsExpression, FromSqlRow)]
        #[diesel(sql_type = Text)]
        pub struct $column($value);

        impl From<$value> for $column {
            fn from(value: $value) -> Self {
                Self(value)
            }
        }

        impl From<$column> for $value {
            fn from(column: $column) -> Self {
                column.0
            }
        }

        impl<DB: Backend> FromSql<Text, DB> for $column
        where
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                parse_text::<DB, _, _>(bytes, $what, $parse).map(Self)
            }
        }
    };
}

text_column!(
    /// Scopes as stored: space-separated, as on the wire (RFC 6749 §3.3).
    ScopesColumn(Scopes),
    "scopes",
    Scopes::parse
);

text_column!(
    /// A JWS algorithm as stored: its name (`RS256`, `ES256`).
    AlgorithmColumn(Algorithm),
    "algorithm",
    Algorithm::parse
);

impl ToSql<Text, Sqlite> for ScopesColumn {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.to_string());
        Ok(IsNull::No)
    }
}

impl ToSql<Text, Pg> for ScopesColumn {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        use std::io::Write as _;
        write!(out, "{}", self.0)?;
        Ok(IsNull::No)
    }
}

impl ToSql<Text, super::MultiBackend> for ScopesColumn {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, super::MultiBackend>) -> serialize::Result {
        out.set_value((Text, self));
        Ok(IsNull::No)
    }
}

impl<DB: Backend> ToSql<Text, DB> for AlgorithmColumn
where
    str: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.0.as_str().to_sql(out)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError as _;
    use diesel::connection::SimpleConnection as _;

    use super::super::{Db, grants, signing_keys};
    use crate::oauth::error::OAuthError;

    /// A migrated database whose rows need not point at each other, so that one bad value can
    /// be planted alone.
    fn database() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db.sqlite3").to_str().unwrap(), 1).unwrap();
        db.migrate().unwrap();
        db.conn()
            .unwrap()
            .batch_execute("PRAGMA foreign_keys = OFF")
            .unwrap();
        (dir, db)
    }

    #[test]
    fn a_corrupt_stored_scope_is_an_error_and_a_500_not_an_empty_set_of_scopes() {
        let (_dir, db) = database();
        let mut conn = db.conn().unwrap();
        conn.batch_execute(
            "INSERT INTO grants (id, user_id, client_id, scope, auth_time, created_at)
             VALUES ('fine', 'u', 'c', 'openid profile', 0, 0),
                    ('bad', 'u', 'c', 'openid \"profile', 0, 0)",
        )
        .unwrap();
        let fine = grants::find_grant(&mut conn, "fine").unwrap().unwrap();
        assert_eq!(fine.scope.to_string(), "openid profile");

        let error = grants::find_grant(&mut conn, "bad").unwrap_err();
        assert!(
            matches!(error, diesel::result::Error::DeserializationError(_)),
            "{error:?}"
        );
        // The log line (the error's `Debug`) names the field and the stored value.
        let logged = format!("{error:?}");
        assert!(logged.contains("scope"), "{logged}");
        assert!(
            logged.contains(r#"corrupt stored scopes \"openid \\\"profile\""#),
            "{logged}"
        );
        assert_eq!(OAuthError::from(error).error_response().status(), 500);
    }

    #[test]
    fn a_corrupt_stored_algorithm_or_key_status_is_an_error() {
        let (_dir, db) = database();
        let mut conn = db.conn().unwrap();
        conn.batch_execute(
            "INSERT INTO signing_keys (kid, alg, private_pem, public_jwk, status, created_at)
             VALUES ('k1', 'none', '', '{}', 'active', 0)",
        )
        .unwrap();
        let error = signing_keys::list(&mut conn).unwrap_err();
        assert!(
            format!("{error:?}").contains(r#"corrupt stored algorithm \"none\""#),
            "{error:?}"
        );
        conn.batch_execute("UPDATE signing_keys SET alg = 'ES256', status = 'Active'")
            .unwrap();
        let error = signing_keys::list(&mut conn).unwrap_err();
        assert!(
            format!("{error:?}").contains(r#"corrupt stored key status \"Active\""#),
            "{error:?}"
        );
        conn.batch_execute("UPDATE signing_keys SET status = 'published'")
            .unwrap();
        let keys = signing_keys::list(&mut conn).unwrap();
        assert_eq!(keys[0].status, signing_keys::KeyStatus::Published);
    }
}
