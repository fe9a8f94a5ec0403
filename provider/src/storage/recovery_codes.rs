//! Recovery codes: shown once, stored as SHA-256 hashes (they are random and long enough that a
//! fast hash suffices), each usable once through a conditional update on `used_at`.

use diesel::prelude::*;

use super::Conn;
use super::schema::recovery_codes;

/// Replaces every recovery code of `user_id` with `hashes`.
pub fn replace(conn: &mut Conn, user_id: &str, hashes: &[String], at: i64) -> QueryResult<()> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    // One statement per code: batch inserts are not available over both backends.
    for hash in hashes {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::user_id.eq(user_id),
                recovery_codes::code_hash.eq(hash),
                recovery_codes::created_at.eq(at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Uses the code with hash `code_hash`: true only for the first use of an existing code.
pub fn use_code(conn: &mut Conn, user_id: &str, code_hash: &str, at: i64) -> QueryResult<bool> {
    let updated = diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::code_hash.eq(code_hash))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(at))
    .execute(conn)?;
    Ok(updated == 1)
}

/// How many unused codes `user_id` has left.
pub fn remaining(conn: &mut Conn, user_id: &str) -> QueryResult<i64> {
    recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
}
