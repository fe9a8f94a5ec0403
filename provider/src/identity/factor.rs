//! The second step of a login: after a correct password, a user with a second factor (a
//! confirmed TOTP credential or a passkey) gets no session yet. A pending login is kept in the
//! encrypted session cookie (user, time, where to go next; five minutes) and `/login/factor`
//! asks for a TOTP code or a recovery code. The same page raises an existing session to a
//! second factor (step-up) without asking for the password again.
//!
//! A pending login is only a note that the password was right; it grants nothing by itself.
//! Every code is single use on the server (see [`crate::storage::totp`]), so a copy of the
//! cookie cannot replay one, and wrong codes count against the login throttle exactly like
//! wrong passwords.
//!
//! Other factors (passkeys) finish the same pending login with [`pending`] and [`finish`].

use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use oidc_core::unix_now;
use serde::{Deserialize, Serialize};

use crate::identity::login::{LoginError, client_address, record_refusal, see_other};
use crate::identity::session::{self, Login, NewLogin, Origin, current_login};
use crate::identity::totp;
use crate::metrics::LoginOutcome;
use crate::pages::{csrf, render_with_status};
use crate::state::AppState;
use crate::storage::audit::{self, Event, Kind, Outcome};
use crate::storage::{Conn, StorageError, recovery_codes, totp as totp_store, users};

/// The `acr` of a login with a password only.
pub const ACR_PASSWORD: &str = "pwd";
/// The `acr` of a login with a password and a second factor (TOTP, a recovery code, or a
/// passkey with user verification): the value `acr_values=mfa` asks for.
pub const ACR_MFA: &str = "mfa";

/// The `acr` that the methods `amr` reach.
pub fn acr_for(amr: &[String]) -> &'static str {
    if amr.iter().any(|m| m == "mfa") {
        ACR_MFA
    } else {
        ACR_PASSWORD
    }
}

/// Whether a login with the methods `amr` counts as multi-factor.
pub fn is_mfa(amr: &[String]) -> bool {
    acr_for(amr) == ACR_MFA
}

const PENDING_KEY: &str = "pending_login";
/// How long a pending login waits for its second factor.
pub const PENDING_TTL_SECS: i64 = 300;
/// What is added to `amr` by a TOTP code, and by a recovery code.
const TOTP_AMR: [&str; 2] = ["otp", "mfa"];
const RECOVERY_AMR: [&str; 2] = ["mfa", "otp"];
/// Shown for a wrong, reused or malformed code alike.
pub const WRONG_CODE: &str = "That code is not right, or was already used. Try the next code.";

/// Mounts `/login/factor`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/login/factor")
            .route(web::get().to(factor_form))
            .route(web::post().to(factor_submit)),
    );
}

/// A login waiting for its second factor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingLogin {
    pub user_id: String,
    pub username: String,
    /// Local path to continue to once signed in.
    pub next: String,
    /// When the password was entered (the session's `auth_time`).
    pub auth_time: i64,
    /// Methods already used: `["pwd"]`, or the existing session's for a step-up.
    pub amr: Vec<String>,
    /// For a step-up: the public id of the session to raise.
    pub session_id: Option<String>,
    /// When the pending login was made (unix seconds); it expires [`PENDING_TTL_SECS`] later.
    pub created_at: i64,
}

impl PendingLogin {
    /// A pending login after a correct password.
    pub fn after_password(user_id: &str, username: &str, next: &str) -> Self {
        let at = unix_now();
        Self {
            user_id: user_id.to_owned(),
            username: username.to_owned(),
            next: next.to_owned(),
            auth_time: at,
            amr: vec!["pwd".to_owned()],
            session_id: None,
            created_at: at,
        }
    }

    /// A pending step-up of the signed-in `login` of `username`: no password again.
    pub fn step_up(login: &Login, username: &str, next: &str) -> Self {
        Self {
            user_id: login.user_id.clone(),
            username: username.to_owned(),
            next: next.to_owned(),
            auth_time: login.auth_time,
            amr: login.amr.clone(),
            session_id: Some(login.session_id.clone()),
            created_at: unix_now(),
        }
    }

    /// The methods after adding `extra`, each once, in order.
    fn amr_with(&self, extra: &[&str]) -> Vec<String> {
        let mut amr = self.amr.clone();
        for m in extra {
            if !amr.iter().any(|a| a == m) {
                amr.push((*m).to_owned());
            }
        }
        amr
    }
}

/// Keeps `pending` in the session (replacing any other) and sends the user to the factor page.
pub fn ask_for_factor(
    session: &Session,
    pending: &PendingLogin,
) -> Result<HttpResponse, actix_session::SessionInsertError> {
    session.insert(PENDING_KEY, pending)?;
    Ok(see_other("/login/factor"))
}

/// The session's pending login, while it has not expired.
pub fn pending(session: &Session) -> Option<PendingLogin> {
    let pending = session.get::<PendingLogin>(PENDING_KEY).ok().flatten()?;
    let age = unix_now() - pending.created_at;
    if !(0..PENDING_TTL_SECS).contains(&age) {
        session.remove(PENDING_KEY);
        return None;
    }
    Some(pending)
}

/// Finishes `pending` after another factor (a passkey) succeeded: starts the session, or raises
/// the existing one for a step-up, with `extra_amr` added to its methods, records the sign-in,
/// and sends the user on. The pending login is used up.
pub async fn finish(
    state: &AppState,
    session: &Session,
    req: &HttpRequest,
    pending: PendingLogin,
    extra_amr: &[&str],
) -> Result<HttpResponse, LoginError> {
    let address = client_address(req, state.settings.trust_forwarded_for);
    let done = complete(
        state,
        session,
        req,
        &pending,
        extra_amr,
        sign_in_event(&pending, &address, "passkey"),
        |_| Ok(Some(())),
    )
    .await?;
    match done {
        Some(()) => Ok(see_other(&pending.next)),
        None => Ok(restart(session, &pending)),
    }
}

/// The `sign_in succeeded` event of `pending` finished with `how`.
fn sign_in_event(pending: &PendingLogin, address: &str, how: &str) -> Event {
    let kind = if pending.session_id.is_some() {
        "step_up"
    } else {
        "pwd"
    };
    Event::new(Kind::SignIn, Outcome::Succeeded)
        .with_user(&pending.user_id, &pending.username)
        .with_address(address)
        .with_detail(&format!("{kind}+{how}"))
}

/// Starts or raises the session of `pending` with `check` run first in the same write; the
/// sign-in event and the last-login time are written there too. `None` when `check` declined
/// or the session to raise ended meanwhile.
async fn complete<F>(
    state: &AppState,
    session: &Session,
    req: &HttpRequest,
    pending: &PendingLogin,
    extra_amr: &[&str],
    event: Event,
    check: F,
) -> Result<Option<()>, LoginError>
where
    F: FnOnce(&mut Conn) -> Result<Option<()>, StorageError> + Send + 'static,
{
    let amr = pending.amr_with(extra_amr);
    let user_id = pending.user_id.clone();
    let in_write = move |conn: &mut Conn| {
        if check(conn)?.is_none() {
            return Ok(None);
        }
        users::touch_last_login(conn, &user_id)?;
        audit::record(conn, &event)?;
        Ok(Some(()))
    };
    let done = match &pending.session_id {
        None => {
            let address = client_address(req, state.settings.trust_forwarded_for);
            let login = NewLogin {
                user_id: pending.user_id.clone(),
                auth_time: pending.auth_time,
                amr,
                origin: Origin::of(req, address),
            };
            session::log_in_with(state, session, login, in_write).await?
        }
        Some(session_id) => {
            let Some(login) = current_login(state, session)
                .await?
                .filter(|l| l.session_id == *session_id && l.user_id == pending.user_id)
            else {
                return Ok(None);
            };
            session::step_up_with(state, session, &login, &amr, in_write).await?
        }
    };
    if done.is_some() {
        session.remove(PENDING_KEY);
        state.metrics.login(LoginOutcome::Succeeded);
        tracing::info!(user = %pending.username, "signed in with a second factor");
    }
    Ok(done)
}

/// Back to the login page, for a pending login that can no longer finish.
fn restart(session: &Session, pending: &PendingLogin) -> HttpResponse {
    session.remove(PENDING_KEY);
    let query = serde_urlencoded::to_string([("next", &pending.next)]).unwrap_or_default();
    see_other(&format!("/login?{query}"))
}

#[derive(Serialize)]
struct FactorPage<'a> {
    csrf_token: String,
    username: &'a str,
    totp: bool,
    passkey: bool,
    error: Option<&'a str>,
}

fn render_factor(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    pending: &PendingLogin,
    factors: totp_store::Factors,
    error: Option<&str>,
) -> HttpResponse {
    let page = FactorPage {
        csrf_token: csrf::token(session),
        username: &pending.username,
        totp: factors.totp,
        passkey: factors.passkey,
        error,
    };
    render_with_status(&state.templates, status, "login_factor.html", &page)
}

async fn factors_of(state: &AppState, user_id: &str) -> Result<totp_store::Factors, StorageError> {
    let user_id = user_id.to_owned();
    state
        .db
        .run(move |conn| Ok(totp_store::factors(conn, &user_id)?))
        .await
}

/// `GET /login/factor`: the code form, while a login is pending.
async fn factor_form(
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, LoginError> {
    let Some(pending) = pending(&session) else {
        return Ok(see_other("/login"));
    };
    let factors = factors_of(&state, &pending.user_id).await?;
    Ok(render_factor(
        &state,
        &session,
        StatusCode::OK,
        &pending,
        factors,
        None,
    ))
}

/// Body of `POST /login/factor`.
#[derive(Deserialize)]
pub struct FactorForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf_token: String,
}

/// What was typed: a TOTP code (with the step it matched, if any) or a recovery code (its
/// hash, if well-formed).
enum Typed {
    Totp(Option<i64>),
    Recovery(Option<String>),
}

impl Typed {
    fn detail(&self) -> &'static str {
        match self {
            Self::Totp(_) => "totp",
            Self::Recovery(_) => "recovery_code",
        }
    }

    fn amr(&self) -> &'static [&'static str] {
        match self {
            Self::Totp(_) => &TOTP_AMR,
            Self::Recovery(_) => &RECOVERY_AMR,
        }
    }
}

fn read_code(code: &str, secret: Option<&str>, at: i64) -> Typed {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() == totp::DIGITS && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Typed::Totp(secret.and_then(|s| totp::matching_step(s, &digits, at)));
    }
    Typed::Recovery(totp::normalize_recovery_code(code).map(|c| totp::recovery_code_hash(&c)))
}

/// `POST /login/factor`: checks the CSRF token, the throttle (the password's counters), then
/// the code, each code accepted once; on success the session starts (or is raised).
async fn factor_submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<FactorForm>,
) -> Result<HttpResponse, LoginError> {
    if !csrf::verify(&session, &form.csrf_token) {
        return Err(LoginError::Csrf);
    }
    let Some(pending) = pending(&session) else {
        return Ok(see_other("/login"));
    };
    let address = client_address(&req, state.settings.trust_forwarded_for);
    let attempt = match state.throttle.begin(&pending.username, &address).await? {
        Ok(attempt) => attempt,
        Err(throttled) => {
            state.metrics.login(LoginOutcome::Throttled);
            let event = Event::new(Kind::FactorUsed, Outcome::Throttled)
                .with_user(&pending.user_id, &pending.username)
                .with_address(&address);
            record_refusal(&state, event).await?;
            let factors = factors_of(&state, &pending.user_id).await?;
            let mut response = render_factor(
                &state,
                &session,
                StatusCode::TOO_MANY_REQUESTS,
                &pending,
                factors,
                Some("Too many failed attempts. Please wait a few minutes and try again."),
            );
            if let Ok(value) =
                header::HeaderValue::from_str(&throttled.retry_after_secs.to_string())
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return Ok(response);
        }
    };
    let user_id = pending.user_id.clone();
    let (credential, active) = state
        .db
        .run(move |conn| {
            let credential = totp_store::find(conn, &user_id)?.filter(|c| c.is_confirmed());
            let active = users::find(conn, &user_id)?.is_some_and(|u| u.is_active);
            Ok::<_, StorageError>((credential, active))
        })
        .await?;
    if !active {
        drop(attempt);
        return Ok(restart(&session, &pending));
    }
    let typed = read_code(
        &form.code,
        credential.as_ref().map(|c| c.secret.as_str()),
        unix_now(),
    );
    let detail = typed.detail();
    let extra_amr = typed.amr();
    let failed = Event::new(Kind::FactorUsed, Outcome::Failed)
        .with_user(&pending.user_id, &pending.username)
        .with_address(&address)
        .with_detail(detail);
    let used = Event::new(Kind::FactorUsed, Outcome::Succeeded)
        .with_user(&pending.user_id, &pending.username)
        .with_address(&address)
        .with_detail(detail);
    let user_id = pending.user_id.clone();
    let check = move |conn: &mut Conn| -> Result<Option<()>, StorageError> {
        let accepted = use_code(conn, &user_id, &typed, unix_now())?;
        if !accepted {
            audit::record(conn, &failed)?;
            // The attempt stays counted, like a wrong password.
            drop(attempt);
            return Ok(None);
        }
        audit::record(conn, &used)?;
        attempt.succeeded(conn)?;
        Ok(Some(()))
    };
    let event = sign_in_event(&pending, &address, detail);
    let done = complete(&state, &session, &req, &pending, extra_amr, event, check).await?;
    if done.is_some() {
        return Ok(see_other(&pending.next));
    }
    if pending.session_id.is_some() && !still_signed_in(&state, &session, &pending).await? {
        return Ok(restart(&session, &pending));
    }
    state.metrics.login(LoginOutcome::Failed);
    let factors = factors_of(&state, &pending.user_id).await?;
    Ok(render_factor(
        &state,
        &session,
        StatusCode::UNAUTHORIZED,
        &pending,
        factors,
        Some(WRONG_CODE),
    ))
}

/// Whether the session a step-up is for is still the signed-in one.
async fn still_signed_in(
    state: &AppState,
    session: &Session,
    pending: &PendingLogin,
) -> Result<bool, StorageError> {
    Ok(current_login(state, session)
        .await?
        .is_some_and(|l| Some(&l.session_id) == pending.session_id.as_ref()))
}

/// Uses the typed code once: a TOTP step later than every accepted one, or an unused recovery
/// code (only while TOTP is on: recovery codes stand in for it).
fn use_code(conn: &mut Conn, user_id: &str, typed: &Typed, at: i64) -> Result<bool, StorageError> {
    Ok(match typed {
        Typed::Totp(Some(step)) => totp_store::use_step(conn, user_id, *step)?,
        Typed::Recovery(Some(hash)) => {
            let on = totp_store::find(conn, user_id)?.is_some_and(|c| c.is_confirmed());
            on && recovery_codes::use_code(conn, user_id, hash, at)?
        }
        Typed::Totp(None) | Typed::Recovery(None) => false,
    })
}

#[cfg(test)]
mod tests {
    use actix_session::SessionExt as _;

    use super::*;

    #[test]
    fn a_pending_login_expires_after_five_minutes() {
        let request = actix_web::test::TestRequest::default().to_srv_request();
        let session = request.get_session();
        let mut pending = PendingLogin::after_password("u1", "alice", "/next");
        session.insert(PENDING_KEY, &pending).expect("insert");
        assert_eq!(super::pending(&session), Some(pending.clone()));
        pending.created_at -= PENDING_TTL_SECS;
        session.insert(PENDING_KEY, &pending).expect("insert");
        assert_eq!(super::pending(&session), None);
        assert!(
            !session.contains_key(PENDING_KEY),
            "an expired one is dropped"
        );
        // One from the future (a clock step back) is not trusted either.
        pending.created_at = unix_now() + 10;
        session.insert(PENDING_KEY, &pending).expect("insert");
        assert_eq!(super::pending(&session), None);
    }

    #[test]
    fn acr_follows_the_methods() {
        let amr = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(acr_for(&amr(&["pwd"])), ACR_PASSWORD);
        assert_eq!(acr_for(&amr(&["pwd", "otp", "mfa"])), ACR_MFA);
        let pending = PendingLogin::after_password("u1", "alice", "/");
        assert_eq!(pending.amr_with(&TOTP_AMR), amr(&["pwd", "otp", "mfa"]));
        assert_eq!(pending.amr_with(&RECOVERY_AMR), amr(&["pwd", "mfa", "otp"]));
    }
}
