//! The account center at `/account`: the signed-in user's profile, password, connected
//! applications, sessions and recent security events. Signed-in users only; every form carries
//! a CSRF token. Routes are mounted by full path (no scope), so that pages of other sections
//! under `/account/…` can be mounted beside them.

mod applications;
mod events;
mod password;
mod profile;
mod sessions;

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt as _};
use actix_web::dev::Payload;
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Responder, ResponseError, web};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::identity::login::{client_address, see_other};
use crate::identity::session::{Login, current_login};
use crate::pages::{csrf, error_page, render_with_status};
use crate::state::AppState;
use crate::storage::StorageError;
use crate::storage::users::{self, User, UserInputError};

/// Mounts every account route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for (_, path, route) in all_routes() {
        cfg.route(path, route);
    }
}

/// Every account route, method and path (with `{name}` placeholders), as mounted.
pub fn routes() -> Vec<(Method, String)> {
    all_routes()
        .into_iter()
        .map(|(method, path, _)| (method, path.to_owned()))
        .collect()
}

type RouteList = Vec<(Method, &'static str, actix_web::Route)>;

fn all_routes() -> RouteList {
    let mut list = AccountRoutes(Vec::new());
    list.get("/account", profile::show)
        .post("/account/profile", profile::update)
        .get("/account/password", password::show)
        .post("/account/password", password::change)
        .get("/account/applications", applications::list)
        .post(
            "/account/applications/{client_id}/revoke",
            applications::revoke,
        )
        .get("/account/sessions", sessions::list)
        .post("/account/sessions/others/end", sessions::end_others)
        .post("/account/sessions/{session_id}/end", sessions::end_one)
        .get("/account/events", events::list);
    list.0
}

/// The account routes being listed.
struct AccountRoutes(RouteList);

impl AccountRoutes {
    fn get<F: Handler<Args>, Args>(&mut self, path: &'static str, handler: F) -> &mut Self
    where
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.0.push((Method::GET, path, web::get().to(handler)));
        self
    }

    fn post<F: Handler<Args>, Args>(&mut self, path: &'static str, handler: F) -> &mut Self
    where
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.0.push((Method::POST, path, web::post().to(handler)));
        self
    }
}

/// Failures of account pages, mapped to pages in one place.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Nobody is signed in: go to the login page, then come back.
    #[error("not signed in")]
    NotSignedIn(String),
    /// The form's CSRF token is missing or wrong.
    #[error("bad CSRF token")]
    Csrf,
    /// No such application or session of this user.
    #[error("not found")]
    NotFound,
    /// A value of a form was refused.
    #[error(transparent)]
    Input(#[from] UserInputError),
    /// The form could not be read; answered by the form extractor's own page.
    #[error("unreadable form: {0}")]
    Form(actix_web::Error),
    /// Anything else; logged, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StorageError> for AccountError {
    fn from(e: StorageError) -> Self {
        Self::Unexpected(e.into())
    }
}

/// Failure inside a write of the account center (sent back from the database thread, which
/// [`AccountError`] cannot be, as it may hold the form extractor's error).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A value of a form was refused; nothing was written.
    #[error(transparent)]
    Input(#[from] UserInputError),
    /// No such row of this user.
    #[error("not found")]
    NotFound,
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<diesel::result::Error> for WriteError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Storage(e.into())
    }
}

impl From<users::CreateUserError> for WriteError {
    fn from(e: users::CreateUserError) -> Self {
        match e {
            users::CreateUserError::Input(e) => Self::Input(e),
            users::CreateUserError::Storage(e) => Self::Storage(e),
        }
    }
}

impl From<WriteError> for AccountError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Input(e) => Self::Input(e),
            WriteError::NotFound => Self::NotFound,
            WriteError::Storage(e) => e.into(),
        }
    }
}

impl ResponseError for AccountError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotSignedIn(_) => StatusCode::SEE_OTHER,
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Input(_) => StatusCode::BAD_REQUEST,
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
            Self::Csrf => error_page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form has expired or was not sent from this site. Go back, reload the page and try again.",
            ),
            Self::NotFound => error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such item in your account.",
            ),
            Self::Input(e) => error_page(StatusCode::BAD_REQUEST, "Not possible", &e.to_string()),
            Self::Form(e) => e.error_response(),
            Self::Unexpected(error) => {
                tracing::error!(error = ?error, "account page failed");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The change could not be made. Please try again later.",
                )
            }
        }
    }
}

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, AccountError>>>>;

/// The signed-in user. A handler that takes one runs for signed-in users only: anyone else is
/// sent to the login page before the handler starts.
pub struct Account {
    /// The user, as stored now.
    pub user: User,
    /// The session's login (its public id marks "this session").
    pub login: Login,
    /// The client address, as the login throttle counts it.
    pub address: String,
    session: Session,
}

impl Account {
    /// What the page of `section` shows around its content (takes the pending flash message).
    pub fn frame(&self, section: &'static str) -> Frame {
        let flash = self
            .session
            .remove_as::<String>(FLASH_KEY)
            .and_then(Result::ok);
        Frame {
            csrf_token: csrf::token(&self.session),
            username: self.user.username.clone(),
            is_admin: self.user.is_admin,
            signed_in: true,
            flash,
            section,
        }
    }

    /// Leaves a message for the next account page.
    pub fn flash(&self, message: &str) {
        if let Err(error) = self.session.insert(FLASH_KEY, message) {
            tracing::warn!(error = %error, "storing a flash message failed");
        }
    }

    /// The browser session (the cookie).
    pub fn session(&self) -> &Session {
        &self.session
    }
}

/// Where a signed-out visitor comes back to after signing in: the page asked for, or the
/// account page for a post (which cannot be replayed after the login).
fn next_after_login(req: &HttpRequest) -> String {
    if req.method() == Method::GET {
        req.uri()
            .path_and_query()
            .map_or("/account", |p| p.as_str())
            .to_owned()
    } else {
        "/account".to_owned()
    }
}

impl FromRequest for Account {
    type Error = AccountError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| AccountError::Unexpected(anyhow::anyhow!("no application state")))?;
            let session = req.get_session();
            let Some(login) = current_login(&state, &session).await? else {
                return Err(AccountError::NotSignedIn(next_after_login(&req)));
            };
            let user_id = login.user_id.clone();
            let user = state
                .db
                .run(move |conn| users::find(conn, &user_id))
                .await?
                .filter(|u| u.is_active)
                .ok_or_else(|| AccountError::NotSignedIn(next_after_login(&req)))?;
            let address = client_address(&req, state.settings.trust_forwarded_for);
            Ok(Self {
                user,
                login,
                address,
                session,
            })
        })
    }
}

/// A form of the account center: every one carries the session's CSRF token.
pub trait AccountFormFields: DeserializeOwned + 'static {
    /// The token the form was sent with.
    fn csrf_token(&self) -> &str;
}

/// A signed-in user's form post: [`Account`] first, then the form, then its CSRF token.
pub struct AccountForm<T> {
    /// Who posted it.
    pub account: Account,
    /// What was posted.
    pub form: T,
}

impl<T: AccountFormFields> FromRequest for AccountForm<T> {
    type Error = AccountError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let account = Account::from_request(req, &mut Payload::None);
        let form = web::Form::<T>::from_request(req, payload);
        Box::pin(async move {
            let account = account.await?;
            let form = form.await.map_err(AccountError::Form)?.into_inner();
            if !csrf::verify(&account.session, form.csrf_token()) {
                return Err(AccountError::Csrf);
            }
            Ok(Self { account, form })
        })
    }
}

/// Declares structs as account forms whose token is their `csrf_token` field.
macro_rules! account_forms {
    ($($form:ty),+ $(,)?) => {$(
        impl $crate::account::AccountFormFields for $form {
            fn csrf_token(&self) -> &str {
                &self.csrf_token
            }
        }
    )+};
}
use account_forms;

/// Body of the small action forms (only the token).
#[derive(serde::Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf_token: String,
}

account_forms!(ActionForm);

const FLASH_KEY: &str = "account_flash";

/// What every account page shows around its content.
#[derive(Serialize)]
pub struct Frame {
    csrf_token: String,
    username: String,
    is_admin: bool,
    /// Read by the base layout, which links to `/account` for signed-in users.
    signed_in: bool,
    flash: Option<String>,
    section: &'static str,
}

/// Renders an account page whose context has a `frame`, with `status`.
fn page(
    state: &AppState,
    status: StatusCode,
    name: &str,
    context: &impl Serialize,
) -> HttpResponse {
    render_with_status(&state.templates, status, name, context)
}

/// Formats unix seconds as `YYYY-MM-DD HH:MM UTC`.
fn format_time(secs: i64) -> String {
    crate::admin::format_time(secs)
}
