//! User accounts: validated input types and the queries on the `users` table.
//!
//! Usernames and e-mail addresses are unique whatever their case or Unicode form, as at mature
//! providers: each row carries a comparison key ([`username_key`], [`email_key`]) under a unique
//! index, and lookups go through the key, while the value as typed is kept for display.

use oidc_core::unix_now;
use std::collections::BTreeMap;

use diesel::prelude::*;
use unicode_normalization::UnicodeNormalization as _;

use super::schema::users;
use super::{Conn, StorageError, is_unique_violation, new_id};

/// A user row (the password hash included: never serialize this to a page).
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    /// Random row id (used in URLs of the admin site and as the session's user id).
    pub id: String,
    /// Stable opaque subject identifier (the `sub` claim), never the row id.
    pub subject: String,
    /// Unique login name.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Whether the e-mail address is known to be the user's.
    pub email_verified: bool,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// bcrypt hash of the password.
    pub password_hash: String,
    /// May use the admin site.
    pub is_admin: bool,
    /// May log in; deactivated users keep their data but cannot sign in.
    pub is_active: bool,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Last change of the profile (unix seconds).
    pub updated_at: i64,
    /// Last successful login (unix seconds).
    pub last_login_at: Option<i64>,
}

impl User {
    /// "Given Family", or the username when both are empty.
    pub fn display_name(&self) -> String {
        let full = format!("{} {}", self.given_name, self.family_name);
        let full = full.trim();
        if full.is_empty() {
            self.username.clone()
        } else {
            full.to_owned()
        }
    }
}

/// Why a value for a user was refused; the message is shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserInputError {
    /// Bad username.
    #[error("the username must be 1 to 64 characters: letters, digits, '.', '_', '-' or '@'")]
    Username,
    /// Bad password.
    #[error("the password must be 8 to 256 characters")]
    Password,
    /// Bad e-mail address.
    #[error("the e-mail address must look like name@example.com (or be empty)")]
    Email,
    /// A name field is too long.
    #[error("names must be at most 128 characters")]
    Name,
    /// The username is taken (whatever the case).
    #[error("a user with this username already exists")]
    UsernameTaken,
    /// The e-mail address is another user's (whatever the case).
    #[error("a user with this e-mail address already exists")]
    EmailTaken,
}

/// NFKC, then lower case (NFKC again, as lower-casing can leave a string unnormalized).
fn fold(value: &str) -> String {
    value
        .trim()
        .nfkc()
        .collect::<String>()
        .to_lowercase()
        .nfkc()
        .collect()
}

/// The comparison key of a username: `ALICE`, `Alice` and fullwidth `ａｌｉｃｅ` are all `alice`.
pub fn username_key(username: &str) -> String {
    fold(username)
}

/// The comparison key of an e-mail address; `None` for an empty one (not unique).
pub fn email_key(email: &str) -> Option<String> {
    Some(fold(email)).filter(|key| !key.is_empty())
}

/// A valid username (case kept; uniqueness of its [`username_key`] is checked by the database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Checks length and characters, after NFKC: fullwidth letters and digits are the ASCII
    /// ones, so `ａｌｉｃｅ` is stored as `alice` and cannot stand beside it looking the same.
    pub fn parse(value: &str) -> Result<Self, UserInputError> {
        let value: String = value.trim().nfkc().collect();
        let value = value.trim();
        let valid = !value.is_empty()
            && value.len() <= 64
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(UserInputError::Username)
        }
    }

    /// The username.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a new password's length (bcrypt reads at most 72 bytes; longer ones are still
/// accepted, the tail simply does not count).
pub fn validate_password(password: &str) -> Result<(), UserInputError> {
    let len = password.chars().count();
    if (8..=256).contains(&len) {
        Ok(())
    } else {
        Err(UserInputError::Password)
    }
}

/// Checks an e-mail address loosely (one `@`, something on both sides, no spaces); empty is
/// allowed.
pub fn validate_email(email: &str) -> Result<(), UserInputError> {
    let email = email.trim();
    if email.is_empty() {
        return Ok(());
    }
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if valid {
        Ok(())
    } else {
        Err(UserInputError::Email)
    }
}

fn validate_name(name: &str) -> Result<(), UserInputError> {
    if name.chars().count() <= 128 {
        Ok(())
    } else {
        Err(UserInputError::Name)
    }
}

/// Profile fields of a new or edited user.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// E-mail address (may be empty).
    pub email: String,
    /// Whether the address is verified.
    pub email_verified: bool,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Admin flag.
    pub is_admin: bool,
}

impl Profile {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), UserInputError> {
        validate_email(&self.email)?;
        validate_name(&self.given_name)?;
        validate_name(&self.family_name)
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUserRow<'a> {
    id: &'a str,
    subject: &'a str,
    username: &'a str,
    email: &'a str,
    email_verified: bool,
    given_name: &'a str,
    family_name: &'a str,
    password_hash: &'a str,
    is_admin: bool,
    is_active: bool,
    created_at: i64,
    updated_at: i64,
    username_key: &'a str,
    email_key: Option<&'a str>,
}

/// Error of [`create`]: bad input, or a storage failure.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// The input was refused (e.g. the username is taken).
    #[error(transparent)]
    Input(#[from] UserInputError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<diesel::result::Error> for CreateUserError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Storage(e.into())
    }
}

/// Which unique key a failed insert or update ran into: the username's, or else the e-mail
/// address's (SQLite names the index's column in the message).
fn taken(error: &diesel::result::Error) -> UserInputError {
    match error {
        diesel::result::Error::DatabaseError(_, info) if info.message().contains("email_key") => {
            UserInputError::EmailTaken
        }
        _ => UserInputError::UsernameTaken,
    }
}

/// Whether another user than `except` has this e-mail key.
fn email_in_use(
    conn: &mut Conn,
    key: Option<&str>,
    except: Option<&str>,
) -> Result<bool, StorageError> {
    let Some(key) = key else {
        return Ok(false);
    };
    let owner: Option<String> = users::table
        .filter(users::email_key.eq(key))
        .select(users::id)
        .get_result(conn)
        .optional()?;
    Ok(owner.is_some_and(|id| Some(id.as_str()) != except))
}

/// Inserts a user whose password is already hashed. A username or e-mail address that differs
/// from another user's only by case or Unicode form is refused with
/// [`UserInputError::UsernameTaken`] / [`UserInputError::EmailTaken`].
pub fn create(
    conn: &mut Conn,
    username: &Username,
    password_hash: &str,
    profile: &Profile,
) -> Result<User, CreateUserError> {
    profile.validate()?;
    let at = unix_now();
    let id = new_id();
    let subject = new_id();
    let username_key = username_key(username.as_str());
    let email_key = email_key(&profile.email);
    // Checked first for a precise message; the unique indexes still decide under a race.
    if find_by_username(conn, username.as_str())?.is_some() {
        return Err(UserInputError::UsernameTaken.into());
    }
    if email_in_use(conn, email_key.as_deref(), None)? {
        return Err(UserInputError::EmailTaken.into());
    }
    let row = NewUserRow {
        username_key: &username_key,
        email_key: email_key.as_deref(),
        id: &id,
        subject: &subject,
        username: username.as_str(),
        email: profile.email.trim(),
        email_verified: profile.email_verified,
        given_name: profile.given_name.trim(),
        family_name: profile.family_name.trim(),
        password_hash,
        is_admin: profile.is_admin,
        is_active: true,
        created_at: at,
        updated_at: at,
    };
    match diesel::insert_into(users::table).values(&row).execute(conn) {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(taken(&e).into()),
        Err(e) => return Err(e.into()),
    }
    Ok(find(conn, &id)?.ok_or(diesel::result::Error::NotFound)?)
}

/// A user by row id.
pub fn find(conn: &mut Conn, id: &str) -> Result<Option<User>, StorageError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .get_result(conn)
        .optional()?)
}

/// A user by username, whatever the case or Unicode form typed.
pub fn find_by_username(conn: &mut Conn, username: &str) -> Result<Option<User>, StorageError> {
    Ok(users::table
        .filter(users::username_key.eq(username_key(username)))
        .select(User::as_select())
        .get_result(conn)
        .optional()?)
}

/// Every user, by username.
pub fn list(conn: &mut Conn) -> Result<Vec<User>, StorageError> {
    Ok(users::table
        .order(users::username.asc())
        .select(User::as_select())
        .load(conn)?)
}

/// Number of users.
pub fn count(conn: &mut Conn) -> Result<i64, StorageError> {
    Ok(users::table.count().get_result(conn)?)
}

/// Replaces the profile fields; returns whether the user exists.
pub fn update_profile(
    conn: &mut Conn,
    id: &str,
    profile: &Profile,
) -> Result<bool, CreateUserError> {
    profile.validate()?;
    let email_key = email_key(&profile.email);
    if email_in_use(conn, email_key.as_deref(), Some(id))? {
        return Err(UserInputError::EmailTaken.into());
    }
    let n = diesel::update(users::table.find(id))
        .set((
            users::email.eq(profile.email.trim()),
            users::email_key.eq(email_key.as_deref()),
            users::email_verified.eq(profile.email_verified),
            users::given_name.eq(profile.given_name.trim()),
            users::family_name.eq(profile.family_name.trim()),
            users::is_admin.eq(profile.is_admin),
            users::updated_at.eq(unix_now()),
        ))
        .execute(conn)
        .map_err(|e| match e {
            e if is_unique_violation(&e) => CreateUserError::Input(taken(&e)),
            e => e.into(),
        })?;
    Ok(n == 1)
}

/// Replaces the password hash; returns whether the user exists.
pub fn set_password_hash(
    conn: &mut Conn,
    id: &str,
    password_hash: &str,
) -> Result<bool, StorageError> {
    let n = diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(password_hash),
            users::updated_at.eq(unix_now()),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Sets a new password and ends everything the user held (sessions, grants, tokens): whoever
/// knew the old password must not keep what it got them. Returns whether the user exists.
pub fn reset_password(
    conn: &mut Conn,
    id: &str,
    password_hash: &str,
) -> Result<bool, StorageError> {
    if !set_password_hash(conn, id, password_hash)? {
        return Ok(false);
    }
    super::sessions::end_everything_for_user(conn, id, unix_now())?;
    Ok(true)
}

/// Deactivates a user and ends everything they held; reactivating restores none of it.
/// Returns whether the user exists.
pub fn deactivate(conn: &mut Conn, id: &str) -> Result<bool, StorageError> {
    if !set_active(conn, id, false)? {
        return Ok(false);
    }
    super::sessions::end_everything_for_user(conn, id, unix_now())?;
    Ok(true)
}

/// Deletes a user; their sessions, grants, codes, tokens and consents go with them (foreign
/// keys with `ON DELETE CASCADE`). Returns whether the user existed.
pub fn delete(conn: &mut Conn, id: &str) -> Result<bool, StorageError> {
    super::sessions::end_everything_for_user(conn, id, unix_now())?;
    let n = diesel::delete(users::table.find(id)).execute(conn)?;
    Ok(n == 1)
}

/// Activates or deactivates a user; returns whether the user exists.
pub fn set_active(conn: &mut Conn, id: &str, active: bool) -> Result<bool, StorageError> {
    let n = diesel::update(users::table.find(id))
        .set((
            users::is_active.eq(active),
            users::updated_at.eq(unix_now()),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Grants or removes the admin flag; returns whether the user exists.
pub fn set_admin(conn: &mut Conn, id: &str, admin: bool) -> Result<bool, StorageError> {
    let n = diesel::update(users::table.find(id))
        .set((users::is_admin.eq(admin), users::updated_at.eq(unix_now())))
        .execute(conn)?;
    Ok(n == 1)
}

/// Records a successful login.
pub fn touch_last_login(conn: &mut Conn, id: &str) -> Result<(), StorageError> {
    diesel::update(users::table.find(id))
        .set(users::last_login_at.eq(unix_now()))
        .execute(conn)?;
    Ok(())
}

/// Users whose keys collide, as `"alice" and "ALICE"` lists, one per colliding key.
fn collisions<'a>(rows: impl Iterator<Item = (Option<String>, &'a str)>) -> Vec<String> {
    let mut by_key: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (key, value) in rows {
        if let Some(key) = key {
            by_key.entry(key).or_default().push(value);
        }
    }
    by_key
        .into_values()
        .filter(|values| values.len() > 1)
        .map(|values| {
            values
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(" and ")
        })
        .collect()
}

/// Before the migration that adds the keys: refuses, naming them, users whose usernames or
/// e-mail addresses collide once compared by key, so the upgrade stops with a message an
/// operator can act on instead of a constraint failure half-way.
pub(super) fn check_keys_before_migration(conn: &mut Conn) -> Result<(), StorageError> {
    let rows: Vec<(String, String)> = users::table
        .select((users::username, users::email))
        .order(users::created_at.asc())
        .load(conn)?;
    let usernames = collisions(
        rows.iter()
            .map(|(u, _)| (Some(username_key(u)), u.as_str())),
    );
    let emails = collisions(rows.iter().map(|(_, e)| (email_key(e), e.as_str())));
    if usernames.is_empty() && emails.is_empty() {
        return Ok(());
    }
    let mut message = String::from(
        "usernames and e-mail addresses are now unique whatever their case or Unicode form, \
         and existing users collide:",
    );
    for names in &usernames {
        message.push_str(&format!(" usernames {names};"));
    }
    for emails in &emails {
        message.push_str(&format!(" e-mail addresses {emails};"));
    }
    message.push_str(
        " rename them or change their e-mail addresses with the previous version, then start again",
    );
    Err(StorageError::Migration(message))
}

/// Right after the migration that adds the keys: sets every key as this module computes it
/// (the SQL lower-cased ASCII only). Keys that change are cleared first, so that no row
/// briefly holds a key another row is about to give up.
pub(super) fn fill_keys_after_migration(conn: &mut Conn) -> Result<(), StorageError> {
    let rows: Vec<(String, String, String, String, Option<String>)> = users::table
        .select((
            users::id,
            users::username,
            users::email,
            users::username_key,
            users::email_key,
        ))
        .load(conn)?;
    let changed: Vec<_> = rows
        .into_iter()
        .map(|(id, username, email, old_username_key, old_email_key)| {
            let keys = (username_key(&username), email_key(&email));
            (id, keys.clone(), (old_username_key, old_email_key) != keys)
        })
        .filter(|(_, _, changed)| *changed)
        .collect();
    for (id, _, _) in &changed {
        diesel::update(users::table.find(id))
            .set((
                // Usernames are ASCII without '#': no real key looks like this.
                users::username_key.eq(format!("#{id}")),
                users::email_key.eq(None::<String>),
            ))
            .execute(conn)?;
    }
    for (id, (username_key, email_key), _) in &changed {
        diesel::update(users::table.find(id))
            .set((
                users::username_key.eq(username_key),
                users::email_key.eq(email_key),
            ))
            .execute(conn)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_rules() {
        assert!(Username::parse("alice.example@corp").is_ok());
        // NFKC: fullwidth letters are the ASCII ones; case is kept for display.
        assert_eq!(
            Username::parse("\u{ff21}lice").map(|u| u.as_str().to_owned()),
            Ok("Alice".to_owned())
        );
        for same in [
            "alice",
            "ALICE",
            "Alice",
            " alice ",
            "\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}",
        ] {
            assert_eq!(username_key(same), "alice", "{same:?}");
        }
        assert_eq!(
            email_key("\u{c9}MILE@Example.com").as_deref(),
            Some("\u{e9}mile@example.com")
        );
        // A decomposed accent is the same address as a composed one.
        assert_eq!(
            email_key("E\u{301}mile@example.com"),
            email_key("\u{e9}mile@example.com")
        );
        assert_eq!(email_key("  "), None);
        for bad in ["", " ", "has space", "emoji😀", &"x".repeat(65)] {
            assert_eq!(
                Username::parse(bad),
                Err(UserInputError::Username),
                "{bad:?}"
            );
        }
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password("1234567").is_err());
        assert!(validate_email("").is_ok());
        assert!(validate_email("a@example.com").is_ok());
        for bad in [
            "a",
            "a@b",
            "@example.com",
            "a b@example.com",
            "a@b@example.com",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }
}
