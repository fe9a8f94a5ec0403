//! The browser session: an encrypted cookie (actix-session's cookie store with private
//! content) holding the CSRF token, the pending forced logins and the secret that names the
//! session's row; who is logged in comes from the row only, so ending the row ends the login
//! for every copy of the cookie.

use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::storage::CookieSessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::{Key, SameSite};
use oidc_core::types::TokenHash;
use oidc_core::unix_now;

use crate::config::CookieSecret;
use crate::state::AppState;
use crate::storage::audit;
use crate::storage::sessions::{self, SessionRow};
use crate::storage::{StorageError, new_id};

/// Name of the session cookie with an http issuer (local development).
pub const COOKIE_NAME: &str = "provider_session";
/// Name of the session cookie with an https issuer: the `__Host-` prefix makes browsers accept
/// it only from this origin over https, with `Path=/` and no `Domain`, so a sibling subdomain
/// cannot plant or overwrite it.
pub const SECURE_COOKIE_NAME: &str = "__Host-provider_session";
const FORCED_LOGINS_KEY: &str = "forced_logins";
/// Forced logins remembered at once (one per tab in flight); the oldest is dropped first.
const MAX_FORCED_LOGINS: usize = 4;

/// The cookie entry holding the session's secret: 256 random bits, base64url. The row is
/// found by its SHA-256 hash; the secret itself is stored nowhere on the server.
const SESSION_SECRET_KEY: &str = "sid";
/// `last_seen_at` is written at most this often per session, so a busy session costs one
/// write a minute rather than one per request.
const TOUCH_EVERY_SECS: i64 = 60;
/// Longest user agent kept with a session (it is only shown to administrators).
const MAX_USER_AGENT_CHARS: usize = 256;

/// The logged-in user of a session, as its row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// Row id of the user (`storage::users::User::id`).
    pub user_id: String,
    /// When the user last entered a password (unix seconds): the `auth_time` claim.
    pub auth_time: i64,
    /// The session's public id: the `sid` claim, recorded with each grant.
    pub session_id: String,
    /// Authentication methods of the login (`amr`), e.g. `["pwd"]`.
    pub amr: Vec<String>,
}

/// Where a login came from, kept with the session for the user's and administrators' eyes.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub address: String,
    pub user_agent: String,
}

impl Origin {
    /// The address (as the login throttle sees it) and user agent of `req`.
    pub fn of(req: &actix_web::HttpRequest, address: String) -> Self {
        let user_agent = req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(MAX_USER_AGENT_CHARS)
            .collect();
        Self {
            address,
            user_agent,
        }
    }
}

fn new_secret() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The hash of the session secret in the cookie, if there is one.
fn cookie_hash(session: &Session) -> Option<String> {
    let secret = session.get::<String>(SESSION_SECRET_KEY).ok().flatten()?;
    Some(TokenHash::of(&secret).into_string())
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

/// Who is logged in, if anyone: the session row named by the cookie, while it is within its
/// idle and absolute lifetimes and its user is active. One primary-key read; `last_seen_at` is
/// moved on (through the writer) only when it is a minute old or more.
pub async fn current_login(
    state: &AppState,
    session: &Session,
) -> Result<Option<Login>, StorageError> {
    let Some(id_hash) = cookie_hash(session) else {
        return Ok(None);
    };
    let lookup = id_hash.clone();
    let found = state
        .db
        .run(move |conn| sessions::find(conn, &lookup).map_err(StorageError::from))
        .await?;
    let at = unix_now();
    let idle = state.settings.session_idle_secs;
    let Some((row, true)) = found.filter(|(row, _)| row.is_live(at, idle)) else {
        // Ended, expired, or its user disabled: the cookie means nothing any more.
        session.remove(SESSION_SECRET_KEY);
        return Ok(None);
    };
    if at - row.last_seen_at >= TOUCH_EVERY_SECS {
        state
            .db
            .write(move |conn| {
                sessions::touch(conn, &id_hash, at, idle).map_err(StorageError::from)
            })
            .await?;
    }
    Ok(Some(Login {
        user_id: row.user_id,
        auth_time: row.auth_time,
        session_id: row.public_id,
        amr: row.amr.split_whitespace().map(str::to_owned).collect(),
    }))
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

/// Empties the cookie for a new login and renews it, so nothing planted in the session
/// beforehand survives the login. Only the forced logins the provider itself recorded are kept,
/// now marked as done. Returns the hash of the session secret the cookie held before.
fn start_fresh(
    session: &Session,
    secret: &str,
) -> Result<Option<String>, actix_session::SessionInsertError> {
    let previous = cookie_hash(session);
    let mut forced = forced_logins(session);
    for f in &mut forced {
        f.done = true;
    }
    session.clear();
    session.renew();
    store_forced_logins(session, forced)?;
    session.insert(SESSION_SECRET_KEY, secret)?;
    // The new session's CSRF token is made now, not by the first page that needs one: pages
    // opened at once right after signing in would each make their own, and all but the last
    // one's forms would be refused.
    crate::pages::csrf::token(session);
    Ok(previous)
}

/// A login about to start: who, since when (`auth_time`: the password entry) and how (`amr`).
#[derive(Debug, Clone)]
pub struct NewLogin {
    pub user_id: String,
    pub auth_time: i64,
    /// Authentication methods (RFC 8176 values), e.g. `["pwd"]` or `["pwd", "otp", "mfa"]`.
    pub amr: Vec<String>,
    pub origin: Origin,
}

/// Starts a new session for `user_id` who authenticated at `auth_time` with the methods `amr`:
/// a new row (replacing the cookie's previous one) and a fresh cookie naming it.
pub async fn log_in(
    state: &AppState,
    session: &Session,
    user_id: &str,
    auth_time: i64,
    amr: &[&str],
    origin: Origin,
) -> anyhow::Result<()> {
    let login = NewLogin {
        user_id: user_id.to_owned(),
        auth_time,
        amr: amr.iter().map(|m| (*m).to_owned()).collect(),
        origin,
    };
    log_in_with(state, session, login, |_| Ok(Some(()))).await?;
    Ok(())
}

/// [`log_in`], with `in_write` run first in the same write transaction (throttle reset, audit,
/// a factor's single use): when it returns `None`, no session is started and the cookie is left
/// as it was. Returns what `in_write` returned.
pub async fn log_in_with<T, F>(
    state: &AppState,
    session: &Session,
    login: NewLogin,
    in_write: F,
) -> anyhow::Result<Option<T>>
where
    T: Send + 'static,
    F: FnOnce(&mut crate::storage::Conn) -> Result<Option<T>, StorageError> + Send + 'static,
{
    let secret = new_secret();
    let previous = cookie_hash(session);
    let at = unix_now();
    let row = SessionRow {
        id_hash: TokenHash::of(&secret).into_string(),
        public_id: new_id(),
        user_id: login.user_id,
        auth_time: login.auth_time,
        amr: login.amr.join(" "),
        created_at: at,
        last_seen_at: at,
        client_addr: login.origin.address,
        user_agent: login.origin.user_agent,
        expires_at: at.saturating_add(state.settings.session_max_secs),
        idle_expires_at: at.saturating_add(state.settings.session_idle_secs),
    };
    let max_per_user = state.settings.sessions_per_user;
    let outcome = state
        .db
        .write(move |conn| {
            let Some(value) = in_write(conn)? else {
                return Ok::<_, StorageError>(None);
            };
            sessions::insert(conn, &row, previous.as_deref(), max_per_user)?;
            Ok(Some(value))
        })
        .await?;
    if outcome.is_some() {
        start_fresh(session, &secret)?;
    }
    Ok(outcome)
}

/// Raises the signed-in session `login` to the methods `amr` after a second factor, with
/// `in_write` run first in the same write (as for [`log_in_with`]). The password is not asked
/// again, so `auth_time` stays and forced logins waiting for a new login are not satisfied; the
/// cookie secret is renewed. `None` when `in_write` declined or the session ended meanwhile.
pub async fn step_up_with<T, F>(
    state: &AppState,
    session: &Session,
    login: &Login,
    amr: &[String],
    in_write: F,
) -> anyhow::Result<Option<T>>
where
    T: Send + 'static,
    F: FnOnce(&mut crate::storage::Conn) -> Result<Option<T>, StorageError> + Send + 'static,
{
    let Some(old_hash) = cookie_hash(session) else {
        return Ok(None);
    };
    let secret = new_secret();
    let new_hash = TokenHash::of(&secret).into_string();
    let (public_id, user_id) = (login.session_id.clone(), login.user_id.clone());
    let amr = amr.join(" ");
    let outcome = state
        .db
        .write(move |conn| {
            let Some(value) = in_write(conn)? else {
                return Ok::<_, StorageError>(None);
            };
            if !sessions::elevate(conn, &old_hash, &new_hash, &public_id, &user_id, &amr)? {
                return Ok(None);
            }
            Ok(Some(value))
        })
        .await?;
    if outcome.is_some() {
        let forced = forced_logins(session);
        session.clear();
        session.renew();
        store_forced_logins(session, forced)?;
        session.insert(SESSION_SECRET_KEY, secret)?;
        crate::pages::csrf::token(session);
    }
    Ok(outcome)
}

/// Ends the session: its row is deleted and the cookie removed.
pub async fn log_out(state: &AppState, session: &Session) -> Result<(), StorageError> {
    if let Some(id_hash) = cookie_hash(session) {
        state
            .db
            .write(move |conn| {
                let at = unix_now();
                if let Some(ended) = sessions::end(conn, &id_hash, at)? {
                    let mut event =
                        audit::Event::new(audit::Kind::SessionEnded, audit::Outcome::Succeeded)
                            .with_detail("signed out");
                    event.user_id = Some(ended.user_id.clone());
                    audit::record_at(conn, &event, at)?;
                }
                Ok::<_, StorageError>(())
            })
            .await?;
    }
    session.purge();
    Ok(())
}

#[cfg(test)]
mod tests {
    use actix_session::SessionExt as _;

    use super::*;

    #[test]
    fn a_fresh_start_drops_what_was_planted_and_names_the_previous_session() {
        let request = actix_web::test::TestRequest::default().to_srv_request();
        let session = request.get_session();
        session.insert("planted", "value").expect("insert");
        assert_eq!(start_fresh(&session, "first").expect("fresh"), None);
        assert!(!session.contains_key("planted"));
        assert_eq!(
            start_fresh(&session, "second").expect("fresh"),
            Some(TokenHash::of("first").into_string())
        );
        assert_eq!(
            cookie_hash(&session),
            Some(TokenHash::of("second").into_string())
        );
    }

    #[test]
    fn session_secrets_are_256_bit_and_random() {
        let secret = new_secret();
        assert_eq!(secret.len(), 43);
        assert_ne!(secret, new_secret());
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
        start_fresh(&session, "secret").expect("log in");
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
