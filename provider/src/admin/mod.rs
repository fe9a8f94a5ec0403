//! The admin site at `/admin`: applications, users (with their grants and consents), signing
//! keys and the audit log. Administrators only; every form carries a CSRF token; plain server-rendered HTML.

mod applications;
mod audit;
mod second_factor;
mod signing_keys;
mod user_security;
mod users;

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt as _};
use actix_web::dev::Payload;
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Responder, ResponseError, web};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::identity::login::see_other;
use crate::identity::session::current_login;
use crate::pages::{csrf, error_page, render_with_status};
use crate::state::AppState;
use crate::storage::StorageError;
use crate::storage::users::User;

/// Mounts every admin route under `/admin`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(all_routes().scope);
}

/// Every admin route, method and path (with `{name}` placeholders), as mounted.
pub fn routes() -> Vec<(Method, String)> {
    all_routes()
        .list
        .into_iter()
        .map(|(method, path)| (method, format!("/admin{path}")))
        .collect()
}

fn all_routes() -> AdminRoutes {
    let routes = AdminRoutes {
        scope: web::scope("/admin"),
        list: Vec::new(),
    }
    .get("", dashboard)
    .get("/", dashboard)
    .get("/logout-deliveries", logout_deliveries);
    let routes = user_security::routes(users::routes(applications::routes(routes)));
    audit::routes(signing_keys::routes(routes))
}

/// The admin routes being mounted, and their list.
pub struct AdminRoutes {
    scope: actix_web::Scope,
    list: Vec<(Method, &'static str)>,
}

impl AdminRoutes {
    fn get<F: Handler<Args>, Args>(self, path: &'static str, handler: F) -> Self
    where
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::GET, path, web::get().to(handler))
    }

    fn post<F: Handler<Args>, Args: FromRequest + 'static>(self, path: &'static str, f: F) -> Self
    where
        F::Output: Responder + 'static,
    {
        self.add(Method::POST, path, web::post().to(f))
    }

    fn add(mut self, method: Method, path: &'static str, route: actix_web::Route) -> Self {
        self.list.push((method, path));
        self.scope = self.scope.route(path, route);
        self
    }
}

/// Failures of admin pages, mapped to pages in one place.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Nobody is signed in: go to the login page, then come back.
    #[error("not signed in")]
    NotSignedIn(String),
    /// Signed in, but not an administrator.
    #[error("administrators only")]
    Forbidden,
    /// The form's CSRF token is missing or wrong.
    #[error("bad CSRF token")]
    Csrf,
    /// No such application, user, grant or key.
    #[error("not found")]
    NotFound,
    /// A request the admin site refuses, with a message for the operator.
    #[error("{0}")]
    BadRequest(String),
    /// The form could not be read; answered by the form extractor's own page.
    #[error("unreadable form: {0}")]
    Form(actix_web::Error),
    /// Somewhere else first (the factor page, or setting up a factor), by 303.
    #[error("redirect to {0}")]
    Redirect(String),
    /// Anything else; logged, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StorageError> for AdminError {
    fn from(e: StorageError) -> Self {
        Self::Unexpected(e.into())
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotSignedIn(_) | Self::Redirect(_) => StatusCode::SEE_OTHER,
            Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Form(e) => e.as_response_error().status_code(),
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::NotSignedIn(next) => {
                let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
                see_other(&format!("/login?{query}"))
            }
            Self::Redirect(location) => see_other(location),
            Self::Forbidden => error_page(
                StatusCode::FORBIDDEN,
                "Administrators only",
                "Your account may not use the admin site.",
            ),
            Self::Csrf => error_page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form has expired or was not sent from this site. Go back, reload the page and try again.",
            ),
            Self::NotFound => {
                error_page(StatusCode::NOT_FOUND, "Not found", "There is no such item.")
            }
            Self::BadRequest(message) => {
                error_page(StatusCode::BAD_REQUEST, "Not possible", message)
            }
            Self::Form(e) => e.error_response(),
            Self::Unexpected(error) => {
                tracing::error!(error = ?error, "admin page failed");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The change could not be made. Please try again later.",
                )
            }
        }
    }
}

/// The signed-in administrator, or the error that sends everyone else away (to the login page,
/// or for a second factor when the policy asks for one: see [`second_factor`]).
async fn require_admin(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
) -> Result<User, AdminError> {
    let next = req
        .uri()
        .path_and_query()
        .map_or("/admin", |p| p.as_str())
        .to_owned();
    // A POST cannot be replayed after login: come back to the page instead.
    let next = if req.method() == actix_web::http::Method::GET {
        next
    } else {
        "/admin".to_owned()
    };
    let Some(login) = current_login(state, session).await? else {
        return Err(AdminError::NotSignedIn(next));
    };
    let user_id = login.user_id.clone();
    let user = state
        .db
        .run(move |conn| crate::storage::users::find(conn, &user_id))
        .await?
        .filter(|u| u.is_active);
    match user {
        None => Err(AdminError::NotSignedIn(next)),
        Some(user) if user.is_admin => {
            second_factor::check(state, session, &login, &user, &next).await?;
            Ok(user)
        }
        Some(_) => Err(AdminError::Forbidden),
    }
}

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, AdminError>>>>;

/// The signed-in administrator. A handler that takes one runs for administrators only: anyone
/// else is sent to the login page, or refused, before the handler starts.
pub struct Admin {
    user: User,
    session: Session,
}

impl std::ops::Deref for Admin {
    type Target = User;

    fn deref(&self) -> &User {
        &self.user
    }
}

impl Admin {
    /// What the page of `section` shows around its content (takes the pending flash message).
    pub fn frame(&self, section: &'static str) -> Frame {
        Frame::new(&self.session, &self.user, section)
    }

    /// Leaves a message for the next admin page.
    pub fn flash(&self, message: &str) {
        flash(&self.session, message);
    }

    /// The admin's session, for what a page keeps between two requests.
    pub fn session(&self) -> &Session {
        &self.session
    }
}

impl FromRequest for Admin {
    type Error = AdminError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| AdminError::Unexpected(anyhow::anyhow!("no application state")))?;
            let session = req.get_session();
            let user = require_admin(&req, &state, &session).await?;
            Ok(Self { user, session })
        })
    }
}

/// A form of the admin site: every one carries the session's CSRF token.
pub trait AdminFormFields: DeserializeOwned + 'static {
    /// The token the form was sent with.
    fn csrf_token(&self) -> &str;
}

/// An administrator's form post: [`Admin`] first, then the form, then its CSRF token.
pub struct AdminForm<T> {
    /// Who posted it.
    pub admin: Admin,
    /// What was posted.
    pub form: T,
}

impl<T: AdminFormFields> FromRequest for AdminForm<T> {
    type Error = AdminError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let admin = Admin::from_request(req, &mut Payload::None);
        let form = web::Form::<T>::from_request(req, payload);
        Box::pin(async move {
            let admin = admin.await?;
            let form = form.await.map_err(AdminError::Form)?.into_inner();
            if !csrf::verify(&admin.session, form.csrf_token()) {
                return Err(AdminError::Csrf);
            }
            Ok(Self { admin, form })
        })
    }
}

/// Declares structs as admin forms whose token is their `csrf_token` field.
macro_rules! admin_forms {
    ($($form:ty),+ $(,)?) => {$(
        impl $crate::admin::AdminFormFields for $form {
            fn csrf_token(&self) -> &str {
                &self.csrf_token
            }
        }
    )+};
}
use admin_forms;

/// Body of the small action forms (only the token).
#[derive(serde::Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf_token: String,
}

admin_forms!(ActionForm);

/// A page with a form, `400` when it shows the error of a refused post.
fn form_page(
    state: &AppState,
    name: &str,
    context: &impl Serialize,
    error: &Option<String>,
) -> HttpResponse {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render_with_status(&state.templates, status, name, context)
}

/// An administrator's successful action of `kind`, with the admin (username) as actor; the
/// caller adds what it was done to and records it in the write of the action.
pub fn admin_event(kind: crate::storage::audit::Kind, admin: &str) -> crate::storage::audit::Event {
    crate::storage::audit::Event::new(kind, crate::storage::audit::Outcome::Succeeded)
        .with_actor(admin)
}

/// Percent-encodes a path segment.
pub fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

const FLASH_KEY: &str = "admin_flash";

/// Leaves a message for the next admin page.
pub fn flash(session: &Session, message: &str) {
    if let Err(error) = session.insert(FLASH_KEY, message) {
        tracing::warn!(error = %error, "storing a flash message failed");
    }
}

/// What every admin page shows around its content.
#[derive(Serialize)]
pub struct Frame {
    csrf_token: String,
    admin: String,
    /// Read by the base layout, which links to `/account` for signed-in users.
    signed_in: bool,
    flash: Option<String>,
    section: &'static str,
}

impl Frame {
    /// The frame of a page in `section`, taking the pending flash message.
    pub fn new(session: &Session, admin: &User, section: &'static str) -> Self {
        let flash = session.remove_as::<String>(FLASH_KEY).and_then(Result::ok);
        Self {
            csrf_token: csrf::token(session),
            admin: admin.username.clone(),
            signed_in: true,
            flash,
            section,
        }
    }
}

/// Renders an admin page whose context has a `frame`.
pub fn page(state: &AppState, name: &str, context: &impl Serialize) -> HttpResponse {
    render_with_status(&state.templates, StatusCode::OK, name, context)
}

#[derive(Serialize)]
struct Dashboard {
    frame: Frame,
    applications: usize,
    users: i64,
    keys: usize,
    issuer: String,
}

async fn dashboard(admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let (applications, users) = state
        .db
        .run(|conn| -> Result<_, StorageError> {
            Ok((
                crate::storage::clients::list(conn)?.len(),
                crate::storage::users::count(conn)?,
            ))
        })
        .await?;
    let keys = state.keys.jwks().keys.len();
    let context = Dashboard {
        frame: admin.frame("home"),
        applications,
        users,
        keys,
        issuer: state.settings.issuer.clone(),
    };
    Ok(page(&state, "admin/index.html", &context))
}

/// Formats unix seconds as `YYYY-MM-DD HH:MM UTC` for tables.
pub fn format_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_times() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::format_time(1_795_000_000), "2026-11-18 11:06 UTC");
    }
}

#[derive(serde::Serialize)]
struct DeliveryLine {
    client_id: String,
    uri: String,
    attempts: i32,
    last_error: String,
    created: String,
    last_tried: String,
}

#[derive(serde::Serialize)]
struct DeliveriesPage {
    frame: Frame,
    deliveries: Vec<DeliveryLine>,
}

/// `GET /admin/logout-deliveries`: the most recent back-channel logout deliveries given up on.
async fn logout_deliveries(
    admin: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let rows = state
        .db
        .run(|conn| {
            crate::storage::logout_deliveries::recent_failed(conn, 100).map_err(StorageError::from)
        })
        .await?;
    let context = DeliveriesPage {
        frame: admin.frame("deliveries"),
        deliveries: rows
            .into_iter()
            .map(|d| DeliveryLine {
                client_id: d.client_id,
                uri: d.uri,
                attempts: d.attempts,
                last_error: d.last_error.unwrap_or_default(),
                created: format_time(d.created_at),
                last_tried: format_time(d.updated_at),
            })
            .collect(),
    };
    Ok(page(&state, "admin/logout_deliveries.html", &context))
}
