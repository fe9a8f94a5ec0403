//! The gate in front of every page except the auth routes and the health check: an anonymous
//! visitor goes to the sign-in page with `callbackUrl` set to where they were going.

use actix_session::SessionExt as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};

use crate::session::{self, UserSession};
use crate::state::AppState;

/// Paths anyone may reach.
pub fn is_public(path: &str) -> bool {
    path == "/healthz"
        || path == "/favicon.ico"
        || path == "/api/auth"
        || path.starts_with("/api/auth/")
}

/// The sign-in page URL that brings the user back to `target` (a local path and query).
pub fn signin_redirect(state: &AppState, target: &str, error: Option<&str>) -> String {
    let callback = state.settings.url.join(target);
    let mut query = form_urlencoded(&[("callbackUrl", callback.as_str())]);
    if let Some(error) = error {
        query = format!("error={}&{query}", form_urlencoded_value(error));
    }
    format!("/api/auth/signin?{query}")
}

fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

fn form_urlencoded_value(value: &str) -> String {
    form_urlencoded(&[("v", value)])
        .trim_start_matches("v=")
        .to_owned()
}

/// Lets signed-in users through (renewing their sliding expiry now and then) and redirects
/// everyone else to sign in.
pub async fn gate(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if is_public(request.path()) {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let session = request.get_session();
    let now = oidc_core::unix_now();
    let target = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    match session::current_user(&session, now) {
        Some(user) if user.error.is_none() => {
            slide_expiry(&state, &session, user, now).await;
            next.call(request)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Some(user) => {
            let location = signin_redirect(&state, &target, user.error.as_deref());
            Ok(request
                .into_response(redirect(&location))
                .map_into_right_body())
        }
        None => {
            let location = signin_redirect(&state, &target, None);
            Ok(request
                .into_response(redirect(&location))
                .map_into_right_body())
        }
    }
}

/// Moves the session's expiry forward at most once per "update age" (a day, or half the
/// lifetime if shorter), as NextAuth does, so the cookie is not rewritten on every request.
async fn slide_expiry(
    state: &AppState,
    session: &actix_session::Session,
    mut user: UserSession,
    now: i64,
) {
    let max_age = i64::try_from(state.settings.session_max_age.as_secs()).unwrap_or(i64::MAX / 4);
    if let Some(expires) = renewed_expiry(user.expires, now, max_age) {
        // The row first: a cookie that outlives its row would count as signed out.
        if let Err(error) = state.store.extend(&user.session_id, expires).await {
            tracing::warn!(%error, "cannot renew the session");
            return;
        }
        user.expires = expires;
        if let Err(error) = session::store_user(session, &user) {
            tracing::warn!(%error, "cannot renew the session");
        }
    }
}

/// The new expiry if the session is due for renewal.
fn renewed_expiry(expires: i64, now: i64, max_age: i64) -> Option<i64> {
    let update_age = (max_age / 2).min(24 * 60 * 60);
    (expires - now < max_age - update_age).then_some(now + max_age)
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_slide_at_most_daily() {
        let day = 24 * 60 * 60;
        let max_age = 30 * day;
        // Renewed an hour ago: left alone.
        assert_eq!(renewed_expiry(1000 + max_age - 3600, 1000, max_age), None);
        // Last renewed more than a day ago: 30 days from now.
        assert_eq!(
            renewed_expiry(1000 + max_age - day - 1, 1000, max_age),
            Some(1000 + max_age)
        );
        // Short sessions renew after half their lifetime.
        assert_eq!(renewed_expiry(1000 + 40, 1000, 100), Some(1100));
        assert_eq!(renewed_expiry(1000 + 60, 1000, 100), None);
    }

    #[test]
    fn only_auth_routes_and_health_are_public() {
        for path in [
            "/healthz",
            "/api/auth/signin",
            "/api/auth/callback/provider",
            "/api/auth",
        ] {
            assert!(is_public(path), "{path}");
        }
        for path in ["/", "/reports", "/api/authx", "/api/profile", "/healthz/x"] {
            assert!(!is_public(path), "{path}");
        }
    }
}
