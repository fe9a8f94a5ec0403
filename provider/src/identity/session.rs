//! The browser session: an encrypted cookie (actix-session's cookie store with private
//! content), and who is logged in.

use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::storage::CookieSessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::{Key, SameSite};

use crate::config::CookieSecret;

/// Name of the session cookie with an http issuer (local development).
pub const COOKIE_NAME: &str = "provider_session";
/// Name of the session cookie with an https issuer: the `__Host-` prefix makes browsers accept
/// it only from this origin over https, with `Path=/` and no `Domain`, so a sibling subdomain
/// cannot plant or overwrite it.
pub const SECURE_COOKIE_NAME: &str = "__Host-provider_session";
const LOGIN_KEY: &str = "login";
const FORCED_LOGINS_KEY: &str = "forced_logins";
/// Forced logins remembered at once (one per tab in flight); the oldest is dropped first.
const MAX_FORCED_LOGINS: usize = 4;

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
/// authorization flow but not on cross-site posts), `Path=/` without `Domain`, and for an https
/// issuer `Secure` with the `__Host-` name.
pub fn middleware(secret: &CookieSecret, secure: bool) -> SessionMiddleware<CookieSessionStore> {
    let name = if secure {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    };
    SessionMiddleware::builder(CookieSessionStore::default(), Key::from(secret.as_bytes()))
        .cookie_name(name.to_owned())
        .cookie_path("/".to_owned())
        .cookie_domain(None)
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

/// An authorization request that sent the user to log in again (`prompt=login`, `max_age`),
/// by a digest of its parameters. Kept in the session, never in the request: the provider's own
/// bookkeeping of the round trip must not be something a request can claim.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct ForcedLogin {
    request: String,
    /// Whether a login was made since the request asked for it.
    done: bool,
}

fn forced_logins(session: &Session) -> Vec<ForcedLogin> {
    session
        .get::<Vec<ForcedLogin>>(FORCED_LOGINS_KEY)
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn store_forced_logins(
    session: &Session,
    mut list: Vec<ForcedLogin>,
) -> Result<(), actix_session::SessionInsertError> {
    if list.len() > MAX_FORCED_LOGINS {
        list.drain(..list.len() - MAX_FORCED_LOGINS);
    }
    if list.is_empty() {
        session.remove(FORCED_LOGINS_KEY);
        return Ok(());
    }
    session.insert(FORCED_LOGINS_KEY, list)
}

/// Remembers that the request with digest `request` asks for a new login.
pub fn expect_login_for(
    session: &Session,
    request: &str,
) -> Result<(), actix_session::SessionInsertError> {
    let mut list = forced_logins(session);
    list.retain(|f| f.request != request);
    list.push(ForcedLogin {
        request: request.to_owned(),
        done: false,
    });
    store_forced_logins(session, list)
}

/// Whether a login was made since the request with digest `request` asked for one.
pub fn login_done_for(session: &Session, request: &str) -> bool {
    forced_logins(session)
        .iter()
        .any(|f| f.done && f.request == request)
}

/// Uses up the login made for the request with digest `request`: it satisfies the request once.
pub fn take_login_for(session: &Session, request: &str) -> bool {
    let mut list = forced_logins(session);
    let Some(i) = list.iter().position(|f| f.done && f.request == request) else {
        return false;
    };
    list.remove(i);
    // Not being able to write the cookie only means the request would be asked for again.
    store_forced_logins(session, list).is_ok()
}

/// Starts a fresh session for `user_id`: everything stored before the login is dropped and the
/// session is renewed, so nothing planted in the session beforehand survives the login. Only
/// the forced logins the provider itself recorded are kept, now marked as done.
pub fn log_in(
    session: &Session,
    user_id: &str,
    auth_time: i64,
) -> Result<(), actix_session::SessionInsertError> {
    let mut forced = forced_logins(session);
    for f in &mut forced {
        f.done = true;
    }
    session.clear();
    session.renew();
    store_forced_logins(session, forced)?;
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

    #[test]
    fn a_forced_login_is_done_by_the_next_login_and_used_once() {
        let request = actix_web::test::TestRequest::default().to_srv_request();
        let session = request.get_session();
        for i in 0..6 {
            expect_login_for(&session, &format!("r{i}")).expect("insert");
        }
        assert!(!login_done_for(&session, "r5"), "not before a login");
        assert!(!take_login_for(&session, "r5"));
        log_in(&session, "u1", now()).expect("log in");
        assert!(
            !login_done_for(&session, "r1"),
            "only the newest few are kept"
        );
        assert!(login_done_for(&session, "r5"));
        assert!(take_login_for(&session, "r5"));
        assert!(!take_login_for(&session, "r5"), "once");
        assert!(take_login_for(&session, "r2"));
        // A request asking again after the login waits for another one.
        expect_login_for(&session, "r3").expect("insert");
        assert!(!take_login_for(&session, "r3"));
    }
}
