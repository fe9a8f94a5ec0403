//! Passkeys (WebAuthn credentials): one row per credential, keyed by its credential id
//! (base64url), holding the credential as webauthn-rs stores it (JSON: public key, counter).
//! Every change names the owner too, so another user's credential id changes nothing.

use diesel::prelude::*;

use super::Conn;
use super::schema::passkeys;

/// Passkeys one user may have: enough for a phone, a laptop and a few security keys, and few
/// enough that a ceremony listing them all still fits in the session cookie.
pub const MAX_PER_USER: i64 = 10;

/// Longest name kept.
pub const MAX_NAME_CHARS: usize = 64;

/// A stored passkey.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = passkeys)]
pub struct PasskeyRow {
    /// The credential id, base64url without padding.
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// The webauthn-rs `Passkey` as JSON.
    pub passkey: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A name as kept: trimmed, control characters dropped, at most [`MAX_NAME_CHARS`]; `None` when
/// nothing is left.
pub fn clean_name(name: &str) -> Option<String> {
    let name: String = name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim().to_owned();
    (!name.is_empty()).then_some(name)
}

/// The user's passkeys, oldest first.
pub fn list_for_user(conn: &mut Conn, user_id: &str) -> QueryResult<Vec<PasskeyRow>> {
    passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .order((passkeys::created_at.asc(), passkeys::id.asc()))
        .select(PasskeyRow::as_select())
        .load(conn)
}

/// The passkey with credential id `id`, whoever owns it.
pub fn find(conn: &mut Conn, id: &str) -> QueryResult<Option<PasskeyRow>> {
    passkeys::table
        .find(id)
        .select(PasskeyRow::as_select())
        .get_result(conn)
        .optional()
}

/// What [`insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Stored,
    /// The user has [`MAX_PER_USER`] passkeys already.
    TooMany,
    /// A credential with this id is registered already (to this user or another).
    Exists,
}

/// Stores a new passkey unless its owner has [`MAX_PER_USER`] already or the credential id is
/// taken. Run inside a write: the count and the insert are one transaction.
pub fn insert(conn: &mut Conn, row: &PasskeyRow) -> QueryResult<Inserted> {
    let count: i64 = passkeys::table
        .filter(passkeys::user_id.eq(&row.user_id))
        .count()
        .get_result(conn)?;
    if count >= MAX_PER_USER {
        return Ok(Inserted::TooMany);
    }
    if find(conn, &row.id)?.is_some() {
        return Ok(Inserted::Exists);
    }
    // Registered at the same moment elsewhere (PostgreSQL): the unique violation fails the
    // caller's write as a whole.
    diesel::insert_into(passkeys::table)
        .values(row)
        .execute(conn)?;
    Ok(Inserted::Stored)
}

/// Renames the user's passkey `id`; returns whether it was the user's.
pub fn rename(conn: &mut Conn, user_id: &str, id: &str, name: &str) -> QueryResult<bool> {
    diesel::update(
        passkeys::table
            .filter(passkeys::id.eq(id))
            .filter(passkeys::user_id.eq(user_id)),
    )
    .set(passkeys::name.eq(name))
    .execute(conn)
    .map(|n| n == 1)
}

/// Removes the user's passkey `id`; returns the removed row when it was the user's.
pub fn remove(conn: &mut Conn, user_id: &str, id: &str) -> QueryResult<Option<PasskeyRow>> {
    diesel::delete(
        passkeys::table
            .filter(passkeys::id.eq(id))
            .filter(passkeys::user_id.eq(user_id)),
    )
    .returning(passkeys::all_columns)
    .get_result(conn)
    .optional()
}

/// Records a sign-in with passkey `id` under a ceremony issued at `issued_at`: stores the
/// updated credential (its counter) and the time of use, only if the passkey was not used since
/// the ceremony was issued. That makes each ceremony good for one use even when its state is
/// presented again, and two concurrent uses cannot both win. Returns whether it was recorded.
pub fn record_use(
    conn: &mut Conn,
    id: &str,
    passkey_json: &str,
    issued_at: i64,
    at: i64,
) -> QueryResult<bool> {
    diesel::update(
        passkeys::table.filter(passkeys::id.eq(id)).filter(
            passkeys::last_used_at
                .is_null()
                .or(passkeys::last_used_at.lt(issued_at)),
        ),
    )
    .set((
        passkeys::passkey.eq(passkey_json),
        // Never before the ceremony, whatever another replica's clock says: a replay sees it.
        passkeys::last_used_at.eq(at.max(issued_at)),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Db;
    use crate::storage::schema::users;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db.sqlite3").to_string_lossy(), 2).unwrap();
        db.migrate().unwrap();
        (dir, db)
    }

    fn add_user(conn: &mut Conn, id: &str) {
        diesel::insert_into(users::table)
            .values((
                users::id.eq(id),
                users::subject.eq(format!("sub-{id}")),
                users::username.eq(id),
                users::username_key.eq(id),
                users::email.eq(""),
                users::email_verified.eq(false),
                users::given_name.eq(""),
                users::family_name.eq(""),
                users::password_hash.eq("x"),
                users::is_admin.eq(false),
                users::is_active.eq(true),
                users::created_at.eq(0),
                users::updated_at.eq(0),
            ))
            .execute(conn)
            .unwrap();
    }

    fn row(id: &str, user_id: &str) -> PasskeyRow {
        PasskeyRow {
            id: id.to_owned(),
            user_id: user_id.to_owned(),
            name: format!("key {id}"),
            passkey: "{}".to_owned(),
            created_at: 100,
            last_used_at: None,
        }
    }

    #[test]
    fn names_are_trimmed_clipped_and_never_empty() {
        assert_eq!(clean_name("  Laptop \n"), Some("Laptop".to_owned()));
        assert_eq!(clean_name("a\u{0}b\u{7}"), Some("ab".to_owned()));
        assert_eq!(clean_name(" \t "), None);
        assert_eq!(
            clean_name(&"x".repeat(100)).map(|n| n.chars().count()),
            Some(MAX_NAME_CHARS)
        );
    }

    #[test]
    fn a_user_has_at_most_the_limit_and_a_credential_one_owner() {
        let (_dir, db) = db();
        let mut conn = db.conn().unwrap();
        add_user(&mut conn, "alice");
        add_user(&mut conn, "bob");
        for i in 0..MAX_PER_USER {
            let id = format!("a{i}");
            assert_eq!(insert(&mut conn, &row(&id, "alice")), Ok(Inserted::Stored));
        }
        assert_eq!(
            insert(&mut conn, &row("more", "alice")),
            Ok(Inserted::TooMany)
        );
        assert_eq!(insert(&mut conn, &row("a0", "bob")), Ok(Inserted::Exists));
        assert_eq!(list_for_user(&mut conn, "alice").unwrap().len(), 10);
        assert!(list_for_user(&mut conn, "bob").unwrap().is_empty());
        assert_eq!(find(&mut conn, "a0").unwrap().unwrap().user_id, "alice");
    }

    #[test]
    fn only_the_owner_renames_or_removes() {
        let (_dir, db) = db();
        let mut conn = db.conn().unwrap();
        add_user(&mut conn, "alice");
        add_user(&mut conn, "bob");
        insert(&mut conn, &row("k", "alice")).unwrap();
        assert!(!rename(&mut conn, "bob", "k", "mine").unwrap());
        assert_eq!(remove(&mut conn, "bob", "k").unwrap(), None);
        assert_eq!(find(&mut conn, "k").unwrap().unwrap().name, "key k");
        assert!(rename(&mut conn, "alice", "k", "laptop").unwrap());
        let removed = remove(&mut conn, "alice", "k").unwrap().unwrap();
        assert_eq!(
            (removed.id.as_str(), removed.name.as_str()),
            ("k", "laptop")
        );
        assert_eq!(find(&mut conn, "k").unwrap(), None);
    }

    #[test]
    fn a_use_is_recorded_once_per_ceremony() {
        let (_dir, db) = db();
        let mut conn = db.conn().unwrap();
        add_user(&mut conn, "alice");
        insert(&mut conn, &row("k", "alice")).unwrap();
        // A ceremony issued at 200, finished at 210.
        assert!(record_use(&mut conn, "k", "{\"n\":1}", 200, 210).unwrap());
        let stored = find(&mut conn, "k").unwrap().unwrap();
        assert_eq!(
            (stored.passkey.as_str(), stored.last_used_at),
            ("{\"n\":1}", Some(210))
        );
        // The same ceremony again, or one issued before that use: refused, nothing changes.
        assert!(!record_use(&mut conn, "k", "{\"n\":2}", 200, 220).unwrap());
        assert!(!record_use(&mut conn, "k", "{\"n\":2}", 205, 220).unwrap());
        assert!(!record_use(&mut conn, "k", "{\"n\":2}", 210, 220).unwrap());
        assert_eq!(
            find(&mut conn, "k").unwrap().unwrap().last_used_at,
            Some(210)
        );
        // A later ceremony is fine; a clock behind the ceremony's still moves the use past it.
        assert!(record_use(&mut conn, "k", "{\"n\":3}", 230, 225).unwrap());
        assert_eq!(
            find(&mut conn, "k").unwrap().unwrap().last_used_at,
            Some(230)
        );
        assert!(!record_use(&mut conn, "k", "{\"n\":4}", 230, 231).unwrap());
        assert!(!record_use(&mut conn, "missing", "{}", 0, 1).unwrap());
    }
}
