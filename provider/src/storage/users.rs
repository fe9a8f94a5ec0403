//! User accounts: validated input types and the queries on the `users` table.

use diesel::prelude::*;

use super::schema::users;
use super::{Conn, StorageError, is_unique_violation, new_id, now};

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
    /// The username is taken.
    #[error("this username is already taken")]
    UsernameTaken,
}

/// A valid username (case kept; uniqueness is checked by the database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Checks length and characters.
    pub fn parse(value: &str) -> Result<Self, UserInputError> {
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

/// Inserts a user whose password is already hashed.
pub fn create(
    conn: &mut Conn,
    username: &Username,
    password_hash: &str,
    profile: &Profile,
) -> Result<User, CreateUserError> {
    profile.validate()?;
    let at = now();
    let id = new_id();
    let subject = new_id();
    let row = NewUserRow {
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
        Err(e) if is_unique_violation(&e) => return Err(UserInputError::UsernameTaken.into()),
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

/// A user by username (exact match).
pub fn find_by_username(conn: &mut Conn, username: &str) -> Result<Option<User>, StorageError> {
    Ok(users::table
        .filter(users::username.eq(username))
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
    let n = diesel::update(users::table.find(id))
        .set((
            users::email.eq(profile.email.trim()),
            users::email_verified.eq(profile.email_verified),
            users::given_name.eq(profile.given_name.trim()),
            users::family_name.eq(profile.family_name.trim()),
            users::is_admin.eq(profile.is_admin),
            users::updated_at.eq(now()),
        ))
        .execute(conn)?;
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
            users::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Activates or deactivates a user; returns whether the user exists.
pub fn set_active(conn: &mut Conn, id: &str, active: bool) -> Result<bool, StorageError> {
    let n = diesel::update(users::table.find(id))
        .set((users::is_active.eq(active), users::updated_at.eq(now())))
        .execute(conn)?;
    Ok(n == 1)
}

/// Grants or removes the admin flag; returns whether the user exists.
pub fn set_admin(conn: &mut Conn, id: &str, admin: bool) -> Result<bool, StorageError> {
    let n = diesel::update(users::table.find(id))
        .set((users::is_admin.eq(admin), users::updated_at.eq(now())))
        .execute(conn)?;
    Ok(n == 1)
}

/// Records a successful login.
pub fn touch_last_login(conn: &mut Conn, id: &str) -> Result<(), StorageError> {
    diesel::update(users::table.find(id))
        .set(users::last_login_at.eq(now()))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_rules() {
        assert!(Username::parse("alice.example@corp").is_ok());
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
