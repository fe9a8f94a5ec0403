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

/// How long a login lasts. The cookie store keeps no server-side record to expire, so the
/// age is checked against the login time carried in the (authenticated) cookie itself.
pub const MAX_LOGIN_AGE_SECS: i64 = 24 * 3600;

/// Who is logged in, if anyone. An unreadable value, or a login older than
/// [`MAX_LOGIN_AGE_SECS`], counts as logged out.
pub fn current_login(session: &Session) -> Option<Login> {
    let login = session.get::<Login>(LOGIN_KEY).ok().flatten()?;
    (crate::storage::now() - login.auth_time <= MAX_LOGIN_AGE_SECS).then_some(login)
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

#[cfg(test)]
mod tests {
    use actix_session::SessionExt as _;

    use super::*;
    use crate::storage::now;

    #[test]
    fn logins_expire_and_log_in_replaces_the_session() {
        let request = actix_web::test::TestRequest::default().to_srv_request();
        let session = request.get_session();
        let stale = Login {
            user_id: "u1".to_owned(),
            auth_time: now() - MAX_LOGIN_AGE_SECS - 1,
        };
        session.insert(LOGIN_KEY, stale).expect("insert");
        session.insert("planted", "value").expect("insert");
        assert_eq!(current_login(&session), None);

        log_in(&session, "u2", now()).expect("log in");
        assert_eq!(
            current_login(&session).map(|l| l.user_id).as_deref(),
            Some("u2")
        );
        assert!(!session.contains_key("planted"));

        log_out(&session);
        assert_eq!(current_login(&session), None);
    }
}
