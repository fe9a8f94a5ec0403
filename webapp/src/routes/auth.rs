//! NextAuth's routes under `/api/auth`: sign-in page and start, callback, session and CSRF JSON,
//! sign-out, and the error page.

use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use oidc_core::error::ErrorCode;
use oidc_core::types::State;
use serde::Deserialize;

use crate::after_signin::AfterSignIn;
use crate::flow::PendingSignIn;
use crate::metrics::SignInOutcome;
use crate::oidc::OidcError;
use crate::pages::{self, ErrorKind, Layout, LayoutUser, SignInPage, SignOutPage};
use crate::session::{self, UserSession};
use crate::state::AppState;

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/auth")
            .route("/signin", web::get().to(signin_page))
            .route("/signin/{provider_id}", web::post().to(signin_start))
            .route("/signin/{provider_id}", web::get().to(signin_start_get))
            .route("/callback/{provider_id}", web::get().to(callback))
            .route("/session", web::get().to(session_json))
            .route("/csrf", web::get().to(csrf_json))
            .route("/providers", web::get().to(providers_json))
            .route("/signout", web::get().to(signout_page))
            .route("/signout", web::post().to(signout))
            .route("/error", web::get().to(error_page))
            .route(
                "/backchannel-logout/{provider_id}",
                web::post().to(crate::backchannel_logout::backchannel_logout),
            )
            .default_service(web::to(|| async { pages::error_page(ErrorKind::NotFound) })),
    );
}

fn now() -> i64 {
    oidc_core::unix_now()
}

/// The layout for the current visitor.
pub fn layout(session: &Session) -> Layout {
    match session::current_user(session, now()) {
        Some(user) => Layout {
            user: Some(LayoutUser {
                name: user.name,
                email: user.email,
            }),
            csrf_token: session::csrf_token(session),
            app_name: pages::APP_NAME,
        },
        None => Layout::anonymous(),
    }
}

#[derive(Debug, Deserialize)]
struct SignInQuery {
    #[serde(rename = "callbackUrl")]
    callback_url: Option<String>,
    error: Option<String>,
}

async fn signin_page(
    state: web::Data<AppState>,
    session: Session,
    request: HttpRequest,
) -> HttpResponse {
    // A malformed query is treated as an empty one: this page must always render.
    let query: SignInQuery =
        serde_urlencoded::from_str(request.query_string()).unwrap_or(SignInQuery {
            callback_url: None,
            error: None,
        });
    let after_signin = AfterSignIn::sanitize(&state.settings.url, query.callback_url.as_deref());
    let csrf_token = session::csrf_token(&session);
    pages::render(
        StatusCode::OK,
        "signin.html",
        &SignInPage {
            layout: layout(&session),
            csrf_token,
            after_signin: after_signin.as_str().to_owned(),
            provider_id: state.settings.provider_id.as_str().to_owned(),
            provider_name: state.settings.provider_name.clone(),
            error_message: query.error.as_deref().map(ErrorKind::signin_message),
        },
    )
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(rename = "csrfToken")]
    csrf_token: Option<String>,
    #[serde(rename = "callbackUrl")]
    callback_url: Option<String>,
}

/// Errors of the sign-in start.
#[derive(Debug, thiserror::Error)]
enum SignInError {
    #[error("unknown provider id")]
    UnknownProvider,
    #[error("missing or wrong CSRF token")]
    Csrf,
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ResponseError for SignInError {
    fn status_code(&self) -> StatusCode {
        self.kind().status()
    }

    fn error_response(&self) -> HttpResponse {
        pages::error_page(self.kind())
    }
}

impl SignInError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::UnknownProvider => ErrorKind::NotFound,
            Self::Csrf => ErrorKind::Csrf,
            Self::Oidc(e) => oidc_error_kind(e),
            Self::Unexpected(_) => ErrorKind::OAuthSignin,
        }
    }
}

fn oidc_error_kind(error: &OidcError) -> ErrorKind {
    match error {
        // Try again in a moment: the provider is unreachable or said it failed itself.
        error if error.is_transient() => ErrorKind::Configuration,
        OidcError::Misconfigured(_) => ErrorKind::Configuration,
        _ => ErrorKind::OAuthCallback,
    }
}

fn log_error(route: &'static str, error: &dyn std::fmt::Display) {
    tracing::warn!(route, %error, "request failed");
}

async fn signin_start(
    state: web::Data<AppState>,
    session: Session,
    provider_id: web::Path<String>,
    form: web::Form<SignInForm>,
) -> HttpResponse {
    match start(&state, &session, &provider_id, form.into_inner()).await {
        Ok(response) => response,
        Err(error) => {
            log_error("signin", &error);
            error.error_response()
        }
    }
}

async fn start(
    state: &AppState,
    session: &Session,
    provider_id: &str,
    form: SignInForm,
) -> Result<HttpResponse, SignInError> {
    if provider_id != state.settings.provider_id.as_str() {
        return Err(SignInError::UnknownProvider);
    }
    if !session::csrf_valid(session, form.csrf_token.as_deref()) {
        return Err(SignInError::Csrf);
    }
    let after_signin = AfterSignIn::sanitize(&state.settings.url, form.callback_url.as_deref());
    let provider = state.oidc.provider().await?;
    let start = state.oidc.start_authorization(&provider);
    let pending = PendingSignIn {
        provider_id: provider_id.to_owned(),
        state: start.state,
        nonce: start.nonce,
        pkce_verifier: start.pkce_verifier,
        after_signin: after_signin.as_str().to_owned(),
        created_at: now(),
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, start.url.as_str()))
        .cookie(state.flow.seal(&pending))
        .finish())
}

/// A GET cannot carry the CSRF token: show the sign-in page instead (as NextAuth does).
async fn signin_start_get() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/api/auth/signin"))
        .finish()
}

/// Errors of the callback: none of them creates a session.
#[derive(Debug, thiserror::Error)]
enum CallbackError {
    #[error("unknown provider id")]
    UnknownProvider,
    #[error("bad query string")]
    BadQuery,
    #[error("no sign-in in progress (flow cookie missing, expired or invalid)")]
    NoPendingSignIn,
    #[error("sign-in was started for another provider")]
    ProviderMismatch,
    #[error("state missing or wrong")]
    StateMismatch,
    #[error("state already used")]
    StateReplayed,
    #[error("iss parameter missing or wrong")]
    IssuerMismatch,
    #[error("the provider answered with error {0:?}")]
    ProviderError(String),
    #[error("no code in the callback")]
    MissingCode,
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ResponseError for CallbackError {
    fn status_code(&self) -> StatusCode {
        self.kind().status()
    }

    fn error_response(&self) -> HttpResponse {
        pages::error_page(self.kind())
    }
}

impl CallbackError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::UnknownProvider => ErrorKind::NotFound,
            Self::Oidc(e) => oidc_error_kind(e),
            _ => ErrorKind::OAuthCallback,
        }
    }
}

/// The callback's query parameters (each at most once).
#[derive(Debug, Default)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

impl CallbackParams {
    fn parse(query: &str) -> Result<Self, CallbackError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query).map_err(|_| CallbackError::BadQuery)?;
        let mut params = Self::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "code" => &mut params.code,
                "state" => &mut params.state,
                "iss" => &mut params.iss,
                "error" => &mut params.error,
                _ => continue,
            };
            // A repeated parameter is ambiguous; RFC 6749 §3.1 forbids it.
            if slot.replace(value).is_some() {
                return Err(CallbackError::BadQuery);
            }
        }
        Ok(params)
    }
}

async fn callback(
    state: web::Data<AppState>,
    session: Session,
    request: HttpRequest,
    provider_id: web::Path<String>,
) -> HttpResponse {
    let mut response = match finish(&state, &session, &request, &provider_id).await {
        Ok(response) => response,
        Err(error) => {
            state.metrics.sign_in(SignInOutcome::Failed);
            log_error("callback", &error);
            error.error_response()
        }
    };
    // The flow cookie is single-use, whatever the outcome.
    if let Err(error) = response.add_cookie(&state.flow.removal()) {
        tracing::warn!(%error, "cannot remove the flow cookie");
    }
    response
}

async fn finish(
    state: &AppState,
    session: &Session,
    request: &HttpRequest,
    provider_id: &str,
) -> Result<HttpResponse, CallbackError> {
    if provider_id != state.settings.provider_id.as_str() {
        return Err(CallbackError::UnknownProvider);
    }
    let params = CallbackParams::parse(request.query_string())?;
    let pending = state
        .flow
        .open(request, now())
        .ok_or(CallbackError::NoPendingSignIn)?;
    // The flow is spent by its first callback, whatever the outcome: the response deletes the
    // cookie, and a copy of it is refused from now on.
    if !state.used_states.first_use(&pending, now()) {
        return Err(CallbackError::StateReplayed);
    }
    if pending.provider_id != provider_id {
        return Err(CallbackError::ProviderMismatch);
    }
    let returned_state = params
        .state
        .as_deref()
        .and_then(|s| State::parse(s).ok())
        .ok_or(CallbackError::StateMismatch)?;
    if !returned_state.ct_eq(&pending.state) {
        return Err(CallbackError::StateMismatch);
    }
    let provider = state.oidc.provider().await?;
    // RFC 9207: a present `iss` must be our issuer; a provider that promised it must send it.
    match params.iss.as_deref() {
        Some(iss) if iss != state.settings.issuer.as_str() => {
            return Err(CallbackError::IssuerMismatch);
        }
        None if state.oidc.requires_iss_parameter(&provider) => {
            return Err(CallbackError::IssuerMismatch);
        }
        _ => {}
    }
    if let Some(error) = params.error {
        if ErrorCode::parse(&error) == Some(ErrorCode::AccessDenied) {
            let location = format!(
                "/api/auth/signin?{}",
                serde_urlencoded::to_string([
                    ("error", "AccessDenied"),
                    ("callbackUrl", pending.after_signin.as_str()),
                ])
                .unwrap_or_default()
            );
            state.metrics.sign_in(SignInOutcome::Denied);
            tracing::info!("sign-in refused at the provider");
            return Ok(HttpResponse::Found()
                .insert_header((header::LOCATION, location))
                .finish());
        }
        return Err(CallbackError::ProviderError(error));
    }
    let code = params.code.ok_or(CallbackError::MissingCode)?;
    let tokens = state
        .oidc
        .exchange_code(&provider, &code, &pending.pkce_verifier, &pending.nonce)
        .await?;
    let max_age = i64::try_from(state.settings.session_max_age.as_secs()).unwrap_or(i64::MAX / 4);
    // A session already in this cookie ends: nothing from before sign-in survives.
    if let Some(previous) = session::current_user(session, now()) {
        state
            .store
            .end(&previous.session_id, now())
            .await
            .map_err(anyhow::Error::from)?;
    }
    let session_id = crate::store::new_session_id();
    let sid = tokens.sid.clone();
    let user = UserSession::new(tokens, session_id, now() + max_age, now());
    state
        .store
        .create(
            &user.session_id,
            &user.sub,
            sid.as_deref(),
            now(),
            user.expires,
        )
        .await
        .map_err(anyhow::Error::from)?;
    session::sign_in(session, &user)?;
    state.metrics.sign_in(SignInOutcome::Completed);
    tracing::info!(sub = user.sub, "signed in");
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, pending.after_signin))
        .finish())
}

async fn session_json(session: Session) -> HttpResponse {
    // NextAuth answers `{}` for nobody signed in.
    let body = session::current_user(&session, now())
        .map(|user| user.nextauth_json())
        .unwrap_or_else(|| serde_json::json!({}));
    HttpResponse::Ok().json(body)
}

async fn csrf_json(session: Session) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "csrfToken": session::csrf_token(&session) }))
}

async fn providers_json(state: web::Data<AppState>) -> HttpResponse {
    let settings = &state.settings;
    let id = settings.provider_id.as_str();
    HttpResponse::Ok().json(serde_json::json!({
        id: {
            "id": id,
            "name": settings.provider_name,
            "type": "oidc",
            "signinUrl": settings.url.join(&format!("/api/auth/signin/{id}")),
            "callbackUrl": settings.redirect_uri(),
        }
    }))
}

async fn signout_page(session: Session) -> HttpResponse {
    let mut layout = layout(&session);
    // The form needs a token even when the header shows nobody signed in.
    layout.csrf_token = session::csrf_token(&session);
    pages::render(StatusCode::OK, "signout.html", &SignOutPage { layout })
}

#[derive(Debug, Deserialize)]
struct SignOutForm {
    #[serde(rename = "csrfToken")]
    csrf_token: Option<String>,
}

async fn signout(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<SignOutForm>,
) -> HttpResponse {
    if !session::csrf_valid(&session, form.csrf_token.as_deref()) {
        log_error("signout", &"missing or wrong CSRF token");
        return pages::error_page(ErrorKind::Csrf);
    }
    let user = session::current_user(&session, now());
    if let Some(user) = &user {
        revoke_refresh_token(&state, user).await;
        if let Err(error) = state.store.end(&user.session_id, now()).await {
            // The cookie stays as it is: the user can try again, and nothing claims a
            // sign-out that a copy of the cookie would outlive.
            tracing::warn!(%error, "cannot end the session");
            return pages::error_page(ErrorKind::Configuration);
        }
    }
    session::sign_out(&session);
    let provider_logout = match (&user, state.settings.provider_logout) {
        (Some(user), true) => match state.oidc.provider().await {
            Ok(provider) => state.oidc.logout_url(&provider, user.id_token.as_ref()),
            Err(error) => {
                // The local session is gone either way; the provider's ends when it expires.
                tracing::warn!(%error, "provider unreachable: signed out locally only");
                None
            }
        },
        _ => None,
    };
    let location = provider_logout
        .map(|url| url.to_string())
        .unwrap_or_else(|| "/api/auth/signin".to_owned());
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Revokes the session's refresh token at the provider. A failure is logged and does not stop
/// the sign-out: the local session ends either way.
pub async fn revoke_refresh_token(state: &AppState, user: &UserSession) {
    let Some(refresh_token) = &user.refresh_token else {
        return;
    };
    let outcome = match state.oidc.provider().await {
        Ok(provider) => {
            state
                .oidc
                .revoke_refresh_token(&provider, refresh_token)
                .await
        }
        Err(error) => Err(error),
    };
    match outcome {
        Ok(()) => tracing::info!(sub = user.sub, "refresh token revoked"),
        Err(error) => tracing::warn!(%error, "cannot revoke the refresh token"),
    }
}

#[derive(Debug, Deserialize)]
struct ErrorQuery {
    error: Option<String>,
}

async fn error_page(request: HttpRequest) -> HttpResponse {
    let query: ErrorQuery =
        serde_urlencoded::from_str(request.query_string()).unwrap_or(ErrorQuery { error: None });
    pages::named_error_page(ErrorKind::from_code(query.error.as_deref().unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_params_refuse_repeats() {
        assert!(CallbackParams::parse("code=a&state=b&state=c").is_err());
        let params = CallbackParams::parse("code=a&state=b&iss=http%3A%2F%2Fx&extra=1").unwrap();
        assert_eq!(params.code.as_deref(), Some("a"));
        assert_eq!(params.iss.as_deref(), Some("http://x"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Any query parses or is `BadQuery`; it fails exactly when a known name repeats.
        #[test]
        fn callback_params_parse_any_query(
            pairs in proptest::collection::vec(
                ("(code|state|iss|error|other|%63ode|)", "[^&]{0,8}"),
                0..6,
            ),
            raw in "\\PC{0,40}",
        ) {
            let query: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
            let query = query.join("&");
            let decoded: Vec<(String, String)> = serde_urlencoded::from_str(&query).unwrap();
            let mut names: Vec<&str> = decoded
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| matches!(*n, "code" | "state" | "iss" | "error"))
                .collect();
            let count = names.len();
            names.sort_unstable();
            names.dedup();
            let parsed = CallbackParams::parse(&query);
            proptest::prop_assert_eq!(parsed.is_ok(), names.len() == count);
            match CallbackParams::parse(&raw) {
                Ok(_) | Err(CallbackError::BadQuery) => {}
                Err(other) => proptest::prop_assert!(false, "{}", other),
            }
        }
    }
}
