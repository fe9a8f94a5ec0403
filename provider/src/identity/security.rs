//! `/account/security`: the signed-in user's second factors. TOTP is enrolled in two steps (a
//! secret shown as QR code and text, then a first code to confirm it, which also issues ten
//! recovery codes shown once); removing it or issuing new recovery codes asks for the password.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use oidc_core::unix_now;
use serde::{Deserialize, Serialize};

use crate::identity::login::{LoginError, client_address, see_other};
use crate::identity::session::current_login;
use crate::identity::totp;
use crate::pages::{csrf, error_page, render_with_status};
use crate::state::AppState;
use crate::storage::audit::{self, Event, Kind, Outcome};
use crate::storage::users::{self, User};
use crate::storage::{StorageError, recovery_codes, totp as totp_store};

const PAGE: &str = "/account/security";

/// Mounts `/account/security` and its forms.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PAGE, web::get().to(security_page))
        .route("/account/security/totp/start", web::post().to(start))
        .route("/account/security/totp/confirm", web::post().to(confirm))
        .route("/account/security/totp/disable", web::post().to(disable))
        .route(
            "/account/security/recovery-codes",
            web::post().to(regenerate),
        );
}

/// Messages another page may ask this one to show (by key, never by text from the request).
fn notice(key: &str) -> Option<&'static str> {
    match key {
        "admin_mfa" => Some(
            "The admin site requires a second factor. Set up an authenticator app below, then sign in again.",
        ),
        "mfa_required" => Some("This application requires a second factor. Set one up below."),
        "totp_removed" => Some("The authenticator app was removed."),
        _ => None,
    }
}

/// The signed-in, active user, or the redirect to the login page (back here afterwards).
async fn signed_in(
    state: &AppState,
    session: &Session,
) -> Result<Result<User, HttpResponse>, LoginError> {
    let user = match current_login(state, session).await? {
        Some(login) => {
            let id = login.user_id;
            state
                .db
                .run(move |conn| users::find(conn, &id))
                .await?
                .filter(|u| u.is_active)
        }
        None => None,
    };
    Ok(user.ok_or_else(|| {
        let query = serde_urlencoded::to_string([("next", PAGE)]).unwrap_or_default();
        see_other(&format!("/login?{query}"))
    }))
}

#[derive(Serialize)]
struct SecurityPage<'a> {
    csrf_token: String,
    username: &'a str,
    totp_enabled: bool,
    recovery_codes_left: i64,
    passkey: bool,
    notice: Option<&'static str>,
    error: Option<&'a str>,
}

async fn render_security(
    state: &AppState,
    session: &Session,
    user: &User,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<&str>,
) -> Result<HttpResponse, LoginError> {
    let id = user.id.clone();
    let (factors, left) = state
        .db
        .run(move |conn| {
            let factors = totp_store::factors(conn, &id)?;
            let left = recovery_codes::remaining(conn, &id)?;
            Ok::<_, StorageError>((factors, left))
        })
        .await?;
    let page = SecurityPage {
        csrf_token: csrf::token(session),
        username: &user.username,
        totp_enabled: factors.totp,
        recovery_codes_left: left,
        passkey: factors.passkey,
        notice,
        error,
    };
    Ok(render_with_status(
        &state.templates,
        status,
        "account/security.html",
        &page,
    ))
}

/// Query of `GET /account/security`.
#[derive(Deserialize)]
pub struct SecurityQuery {
    notice: Option<String>,
}

/// `GET /account/security`: which factors are on, and the forms to change them.
async fn security_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<SecurityQuery>,
) -> Result<HttpResponse, LoginError> {
    let user = match signed_in(&state, &session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let notice = query.notice.as_deref().and_then(notice);
    render_security(&state, &session, &user, StatusCode::OK, notice, None).await
}

/// Body of the forms without other fields.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

#[derive(Serialize)]
struct SetupPage<'a> {
    csrf_token: String,
    qr_svg: String,
    secret: &'a str,
    otpauth_uri: String,
    error: Option<&'a str>,
}

/// The label authenticator apps show: the issuer's host.
fn issuer_label(state: &AppState) -> String {
    url::Url::parse(&state.settings.issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| state.settings.issuer.clone())
}

fn render_setup(
    state: &AppState,
    session: &Session,
    user: &User,
    secret: &str,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let uri = totp::otpauth_uri(&issuer_label(state), &user.username, secret);
    let page = SetupPage {
        csrf_token: csrf::token(session),
        qr_svg: totp::qr_svg(&uri).unwrap_or_default(),
        secret,
        otpauth_uri: uri,
        error,
    };
    render_with_status(&state.templates, status, "account/totp_setup.html", &page)
}

fn already_on() -> HttpResponse {
    error_page(
        StatusCode::CONFLICT,
        "Already set up",
        "An authenticator app is already set up. Remove it first to set up another.",
    )
}

/// `POST /account/security/totp/start`: a new unconfirmed secret, shown for the app to scan.
async fn start(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, LoginError> {
    if !csrf::verify(&session, &form.csrf_token) {
        return Err(LoginError::Csrf);
    }
    let user = match signed_in(&state, &session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let secret = totp::generate_secret();
    let (id, stored) = (user.id.clone(), secret.clone());
    let started = state
        .db
        .write(move |conn| {
            Ok::<_, StorageError>(totp_store::start(conn, &id, &stored, unix_now())?)
        })
        .await?;
    if !started {
        return Ok(already_on());
    }
    Ok(render_setup(
        &state,
        &session,
        &user,
        &secret,
        StatusCode::OK,
        None,
    ))
}

/// Body of `POST /account/security/totp/confirm`.
#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf_token: String,
}

#[derive(Serialize)]
struct CodesPage<'a> {
    codes: &'a [String],
    enrolled: bool,
}

fn hashes_of(codes: &[String]) -> Vec<String> {
    codes
        .iter()
        .filter_map(|c| totp::normalize_recovery_code(c))
        .map(|c| totp::recovery_code_hash(&c))
        .collect()
}

/// `POST /account/security/totp/confirm`: a first code proves the app has the secret; the
/// credential becomes a factor and ten recovery codes are shown, once.
async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, LoginError> {
    if !csrf::verify(&session, &form.csrf_token) {
        return Err(LoginError::Csrf);
    }
    let user = match signed_in(&state, &session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let id = user.id.clone();
    let credential = state
        .db
        .run(move |conn| Ok::<_, StorageError>(totp_store::find(conn, &id)?))
        .await?;
    let Some(credential) = credential else {
        return Ok(see_other(PAGE));
    };
    if credential.is_confirmed() {
        return Ok(already_on());
    }
    let Some(step) = totp::matching_step(&credential.secret, &form.code, unix_now()) else {
        return Ok(render_setup(
            &state,
            &session,
            &user,
            &credential.secret,
            StatusCode::BAD_REQUEST,
            Some("That code is not right. Enter the code the app shows now."),
        ));
    };
    let codes = totp::generate_recovery_codes();
    let hashes = hashes_of(&codes);
    let address = client_address(&req, state.settings.trust_forwarded_for);
    let event = Event::new(Kind::FactorEnrolled, Outcome::Succeeded)
        .with_user(&user.id, &user.username)
        .with_address(&address)
        .with_detail("totp");
    let (id, secret) = (user.id.clone(), credential.secret.clone());
    let confirmed = state
        .db
        .write(move |conn| {
            let at = unix_now();
            if !totp_store::confirm(conn, &id, &secret, step, at)? {
                return Ok::<_, StorageError>(false);
            }
            recovery_codes::replace(conn, &id, &hashes, at)?;
            audit::record(conn, &event)?;
            Ok(true)
        })
        .await?;
    if !confirmed {
        // Replaced by another tab, or confirmed there already.
        return Ok(see_other(PAGE));
    }
    let page = CodesPage {
        codes: &codes,
        enrolled: true,
    };
    Ok(render_with_status(
        &state.templates,
        StatusCode::OK,
        "account/recovery_codes.html",
        &page,
    ))
}

/// Body of the forms that ask for the password.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
}

/// Checks the user's password, counted by the login throttle like a sign-in (a stolen session
/// must not become a way to guess it). `Err` holds the page to answer with.
async fn check_password(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
    user: &User,
    password: String,
) -> Result<Result<crate::identity::throttle::Attempt, HttpResponse>, LoginError> {
    let address = client_address(req, state.settings.trust_forwarded_for);
    let attempt = match state.throttle.begin(&user.username, &address).await? {
        Ok(attempt) => attempt,
        Err(_) => {
            let page = render_security(
                state,
                session,
                user,
                StatusCode::TOO_MANY_REQUESTS,
                None,
                Some("Too many failed attempts. Please wait a few minutes and try again."),
            )
            .await?;
            return Ok(Err(page));
        }
    };
    let matched = state
        .hasher
        .verify(password, Some(user.password_hash.clone()))
        .await
        .map_err(|e| LoginError::Unexpected(e.into()))?;
    if !matched {
        drop(attempt);
        let page = render_security(
            state,
            session,
            user,
            StatusCode::UNAUTHORIZED,
            None,
            Some("The password is not right."),
        )
        .await?;
        return Ok(Err(page));
    }
    Ok(Ok(attempt))
}

/// `POST /account/security/totp/disable`: removes TOTP and the recovery codes (password needed).
async fn disable(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, LoginError> {
    let form = form.into_inner();
    if !csrf::verify(&session, &form.csrf_token) {
        return Err(LoginError::Csrf);
    }
    let user = match signed_in(&state, &session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let attempt = match check_password(&req, &state, &session, &user, form.password).await? {
        Ok(attempt) => attempt,
        Err(page) => return Ok(page),
    };
    let address = client_address(&req, state.settings.trust_forwarded_for);
    let event = Event::new(Kind::FactorRemoved, Outcome::Succeeded)
        .with_user(&user.id, &user.username)
        .with_address(&address)
        .with_detail("totp");
    let id = user.id.clone();
    let removed = state
        .db
        .write(move |conn| {
            attempt.succeeded(conn)?;
            let removed = totp_store::remove(conn, &id)?;
            if removed {
                audit::record(conn, &event)?;
            }
            Ok::<_, StorageError>(removed)
        })
        .await?;
    if !removed {
        return Ok(see_other(PAGE));
    }
    Ok(see_other("/account/security?notice=totp_removed"))
}

/// `POST /account/security/recovery-codes`: ten new recovery codes replace the old ones
/// (password needed), shown once.
async fn regenerate(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, LoginError> {
    let form = form.into_inner();
    if !csrf::verify(&session, &form.csrf_token) {
        return Err(LoginError::Csrf);
    }
    let user = match signed_in(&state, &session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let attempt = match check_password(&req, &state, &session, &user, form.password).await? {
        Ok(attempt) => attempt,
        Err(page) => return Ok(page),
    };
    let codes = totp::generate_recovery_codes();
    let hashes = hashes_of(&codes);
    let address = client_address(&req, state.settings.trust_forwarded_for);
    let event = Event::new(Kind::FactorEnrolled, Outcome::Succeeded)
        .with_user(&user.id, &user.username)
        .with_address(&address)
        .with_detail("recovery_codes");
    let id = user.id.clone();
    let replaced = state
        .db
        .write(move |conn| {
            attempt.succeeded(conn)?;
            // Recovery codes stand in for TOTP: without it there is nothing to recover.
            if !totp_store::find(conn, &id)?.is_some_and(|c| c.is_confirmed()) {
                return Ok::<_, StorageError>(false);
            }
            recovery_codes::replace(conn, &id, &hashes, unix_now())?;
            audit::record(conn, &event)?;
            Ok(true)
        })
        .await?;
    if !replaced {
        return Ok(error_page(
            StatusCode::CONFLICT,
            "No authenticator app",
            "Recovery codes come with an authenticator app. Set one up first.",
        ));
    }
    let page = CodesPage {
        codes: &codes,
        enrolled: false,
    };
    Ok(render_with_status(
        &state.templates,
        StatusCode::OK,
        "account/recovery_codes.html",
        &page,
    ))
}
