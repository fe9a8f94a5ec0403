//! `/login` and `/logout`: the password form, its checks and throttling, and signing out.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use oidc_core::unix_now;
use serde::{Deserialize, Serialize};

use crate::identity::factor::{PendingLogin, ask_for_factor};
use crate::identity::session::{self, NewLogin, current_login};
use crate::metrics::LoginOutcome;
use crate::pages::{self, csrf, error_page, render_with_status, safe_next};
use crate::state::AppState;
use crate::storage::audit::{self, Event, Kind, Outcome};
use crate::storage::users::{self, User};
use crate::storage::{StorageError, totp};

/// The one message for a wrong password, an unknown user and a deactivated account, so the
/// form does not tell which usernames exist.
pub const LOGIN_FAILED: &str = "Incorrect username or password.";

/// Mounts `/login` and `/logout`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/login")
            .route(web::get().to(login_form))
            .route(web::post().to(login)),
    )
    .service(
        web::resource("/logout")
            .route(web::get().to(logout_form))
            .route(web::post().to(logout)),
    );
}

/// Failures of the login and logout pages.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The form's CSRF token is missing or wrong.
    #[error("the form expired or was not sent from this site")]
    Csrf,
    /// Anything else; logged, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StorageError> for LoginError {
    fn from(e: StorageError) -> Self {
        Self::Unexpected(e.into())
    }
}

impl ResponseError for LoginError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Csrf => error_page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form has expired or was not sent from this site. Go back, reload the page and try again.",
            ),
            Self::Unexpected(error) => {
                tracing::error!(error = ?error, "login failed unexpectedly");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Signing in failed. Please try again later.",
                )
            }
        }
    }
}

/// Query of `GET /login`.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    /// Local path to continue to after signing in.
    pub next: Option<String>,
    /// A username to fill in (the `login_hint` of an authorization request).
    pub login_hint: Option<String>,
}

#[derive(Serialize)]
struct LoginPage<'a> {
    csrf_token: String,
    next: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

/// `GET /login`: the form, shown even to a signed-in user so a forced re-login works.
async fn login_form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<NextQuery>,
) -> HttpResponse {
    let next = safe_next(query.next.as_deref());
    let hint = query
        .login_hint
        .as_deref()
        .filter(|h| h.len() <= 256)
        .unwrap_or_default();
    render_login(&state, &session, StatusCode::OK, &next, hint, None)
}

fn render_login(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    next: &str,
    username: &str,
    error: Option<&str>,
) -> HttpResponse {
    let page = LoginPage {
        csrf_token: csrf::token(session),
        next,
        username,
        error,
    };
    render_with_status(&state.templates, status, "login.html", &page)
}

/// Body of `POST /login`.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    next: Option<String>,
}

/// The client address used for throttling: the TCP peer, or, behind a trusted reverse proxy,
/// the last `X-Forwarded-For` entry (the one that proxy appended; earlier ones are the
/// client's word).
pub(crate) fn client_address(req: &HttpRequest, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty());
        if let Some(address) = forwarded {
            return address.to_owned();
        }
    }
    req.peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string())
}

/// `POST /login`: checks the CSRF token and the throttle, then the password (against a dummy
/// hash for unknown users, so both cost the same); on success starts a fresh session.
async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, LoginError> {
    let form = form.into_inner();
    if !csrf::verify(&session, &form.csrf_token) {
        return Err(LoginError::Csrf);
    }
    let next = safe_next(form.next.as_deref());
    let username = form.username.trim().to_owned();
    let address = client_address(&req, state.settings.trust_forwarded_for);

    // Counted before the password is hashed: concurrent requests cannot all pass the check.
    let attempt = match state.throttle.begin(&username, &address).await? {
        Ok(attempt) => attempt,
        Err(throttled) => {
            state.metrics.login(LoginOutcome::Throttled);
            let event = Event::new(Kind::SignIn, Outcome::Throttled)
                .with_username(&username)
                .with_address(&address);
            record_refusal(&state, event).await?;
            let mut response = render_login(
                &state,
                &session,
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                &username,
                Some("Too many failed sign-in attempts. Please wait a few minutes and try again."),
            );
            if let Ok(value) =
                header::HeaderValue::from_str(&throttled.retry_after_secs.to_string())
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return Ok(response);
        }
    };

    let lookup = username.clone();
    let (user, factors) = state
        .db
        .run(move |conn| {
            let user = users::find_by_username(conn, &lookup)?.filter(|u| u.is_active);
            let factors = match &user {
                Some(user) => totp::factors(conn, &user.id)?,
                None => totp::Factors::default(),
            };
            Ok::<_, StorageError>((user, factors))
        })
        .await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let matched = state
        .hasher
        .verify(form.password, hash)
        .await
        .map_err(|e| LoginError::Unexpected(e.into()))?;

    let user = match user {
        Some(user) if matched => user,
        user => {
            // The attempt stays counted: it already is, in the database.
            drop(attempt);
            state.metrics.login(LoginOutcome::Failed);
            let event = match &user {
                Some(user) => {
                    Event::new(Kind::SignIn, Outcome::Failed).with_user(&user.id, &user.username)
                }
                None => Event::new(Kind::SignIn, Outcome::Failed).with_username(&username),
            }
            .with_address(&address)
            .with_detail("pwd");
            state
                .db
                .write(move |conn| Ok::<_, StorageError>(audit::record(conn, &event)?))
                .await?;
            return Ok(render_login(
                &state,
                &session,
                StatusCode::UNAUTHORIZED,
                &next,
                &username,
                Some(LOGIN_FAILED),
            ));
        }
    };

    if factors.any() {
        // No session before the second factor. The attempt stays counted until the factor
        // succeeds: a right password alone must not reset the count wrong codes add to.
        drop(attempt);
        let pending = PendingLogin::after_password(&user.id, &user.username, &next);
        return ask_for_factor(&session, &pending).map_err(|e| LoginError::Unexpected(e.into()));
    }

    // The throttle's reset, the login time and the audit event share the write that stores
    // the session: no write of their own. Should the login fail, the attempt stays counted
    // (failing closed).
    let user_id = user.id.clone();
    let event = Event::new(Kind::SignIn, Outcome::Succeeded)
        .with_user(&user.id, &user.username)
        .with_address(&address)
        .with_detail("pwd");
    let login = NewLogin {
        user_id: user.id.clone(),
        auth_time: unix_now(),
        amr: vec!["pwd".to_owned()],
        origin: session::Origin::of(&req, address),
    };
    session::log_in_with(&state, &session, login, move |conn| {
        attempt.succeeded(conn)?;
        users::touch_last_login(conn, &user_id)?;
        audit::record(conn, &event)?;
        Ok(Some(()))
    })
    .await?;
    state.metrics.login(LoginOutcome::Succeeded);
    tracing::info!(user = %user.username, "signed in");
    Ok(see_other(&next))
}

/// Records a throttled attempt, once per throttle window for one username and address: a
/// refusal writes nothing else, and a flood of them must not fill the audit log.
pub(crate) async fn record_refusal(state: &AppState, event: Event) -> Result<(), StorageError> {
    let window = i64::try_from(state.settings.login_throttle.window_secs).unwrap_or(i64::MAX);
    let since = unix_now().saturating_sub(window);
    let check = event.clone();
    let recorded = state
        .db
        .run(move |conn| Ok::<_, StorageError>(audit::recorded_since(conn, &check, since)?))
        .await?;
    if !recorded {
        state
            .db
            .write(move |conn| Ok::<_, StorageError>(audit::record(conn, &event)?))
            .await?;
    }
    Ok(())
}

/// A 303 redirect to a local path.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

#[derive(Serialize)]
struct LogoutPage {
    csrf_token: String,
    signed_in: bool,
}

/// `GET /logout`: asks for confirmation (a GET must not sign anyone out).
async fn logout_form(state: web::Data<AppState>, session: Session) -> HttpResponse {
    let page = LogoutPage {
        csrf_token: csrf::token(&session),
        signed_in: matches!(current_login(&state, &session).await, Ok(Some(_))),
    };
    pages::render(&state.templates, "logout.html", &page)
}

/// Body of `POST /logout`.
#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

/// `POST /logout`: ends the session.
async fn logout(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, LoginError> {
    if !csrf::verify(&session, &form.csrf_token) {
        return Err(LoginError::Csrf);
    }
    session::log_out(&state, &session).await?;
    Ok(see_other("/login"))
}

/// The signed-in user, if the session has one that still exists and is active.
pub async fn signed_in_user(
    state: &AppState,
    session: &Session,
) -> Result<Option<User>, StorageError> {
    let Some(login) = current_login(state, session).await? else {
        return Ok(None);
    };
    let user = state
        .db
        .run(move |conn| users::find(conn, &login.user_id))
        .await?;
    Ok(user.filter(|u| u.is_active))
}
