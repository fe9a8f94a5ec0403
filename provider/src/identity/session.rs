//! The browser session: an encrypted cookie (actix-session's cookie store with private
//! content), and who is logged in.

use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::storage::CookieSessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::{Key, SameSite};

use crate::config::CookieSecret;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "provider_session";
const LOGIN_KEY: &str = "login";

/// The logged-in user of a session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Login {
    /// Row id of the user (`storage::users::User::id`).
    pub user_id: String,
    /// When the user last entered a password (unix seconds): the `auth_time` claim.
    pub auth_time: i64,
}

/// The session middleware. The cookie's content is encrypted and authenticated with the key,
/// `HttpOnly`, `SameSite=Lax` (so it rides along on the top-level redirects of the
/// authorization flow but not on cross-site posts) and `Secure` for an https issuer.
pub fn middleware(secret: &CookieSecret, secure: bool) -> SessionMiddleware<CookieSessionStore> {
    SessionMiddleware::builder(CookieSessionStore::default(), Key::from(secret.as_bytes()))
        .cookie_name(COOKIE_NAME.to_owned())
        .cookie_content_security(CookieContentSecurity::Private)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_secure(secure)
        .session_lifecycle(BrowserSession::default())
        .build()
}

/// Who is logged in, if anyone. An unreadable value counts as logged out.
pub fn current_login(session: &Session) -> Option<Login> {
    session.get::<Login>(LOGIN_KEY).ok().flatten()
}

/// Starts a fresh session for `user_id`: everything stored before the login is dropped and the
/// session is renewed, so nothing planted in the session beforehand survives the login.
pub fn log_in(
    session: &Session,
    user_id: &str,
    auth_time: i64,
) -> Result<(), actix_session::SessionInsertError> {
    session.clear();
    session.renew();
    session.insert(
        LOGIN_KEY,
        Login {
            user_id: user_id.to_owned(),
            auth_time,
        },
    )
}

/// Ends the session: the cookie is removed.
pub fn log_out(session: &Session) {
    session.purge();
}
