//! The admin site at `/admin`: applications, users (with their grants and consents) and signing
//! keys. Administrators only; every form carries a CSRF token; plain server-rendered HTML.

mod applications;
mod signing_keys;
mod users;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;

use crate::identity::login::{see_other, signed_in_user};
use crate::pages::{csrf, error_page, render_with_status};
use crate::state::AppState;
use crate::storage::StorageError;
use crate::storage::users::User;

/// Mounts every admin route under `/admin`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .route("", web::get().to(dashboard))
            .route("/", web::get().to(dashboard))
            .configure(applications::configure)
            .configure(users::configure)
            .configure(signing_keys::configure)
            .route("/logout-deliveries", web::get().to(logout_deliveries)),
    );
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
            Self::NotSignedIn(_) => StatusCode::SEE_OTHER,
            Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::NotSignedIn(next) => {
                let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
                see_other(&format!("/login?{query}"))
            }
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

/// The signed-in administrator, or the error that sends everyone else away.
pub async fn require_admin(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
) -> Result<User, AdminError> {
    match signed_in_user(state, session).await? {
        None => {
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
            Err(AdminError::NotSignedIn(next))
        }
        Some(user) if user.is_admin => Ok(user),
        Some(_) => Err(AdminError::Forbidden),
    }
}

/// An administrator's form post: admin check first, then the CSRF token.
pub async fn require_admin_form(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
    token: &str,
) -> Result<User, AdminError> {
    let admin = require_admin(req, state, session).await?;
    if csrf::verify(session, token) {
        Ok(admin)
    } else {
        Err(AdminError::Csrf)
    }
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

async fn dashboard(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state, &session).await?;
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
        frame: Frame::new(&session, &admin, "home"),
        applications,
        users,
        keys,
        issuer: state.settings.issuer.clone(),
    };
    Ok(page(&state, "admin/index.html", &context))
}

/// Formats unix seconds as `YYYY-MM-DD HH:MM UTC` for tables.
pub fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm): no date crate needed for display.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
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
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state, &session).await?;
    let rows = state
        .db
        .run(|conn| {
            crate::storage::logout_deliveries::recent_failed(conn, 100).map_err(StorageError::from)
        })
        .await?;
    let context = DeliveriesPage {
        frame: Frame::new(&session, &admin, "deliveries"),
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
