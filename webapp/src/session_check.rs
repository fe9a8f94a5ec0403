//! Every request that carries a signed-in session has it checked against its row in the
//! database: a session ended by sign-out or back-channel logout (or with no row at all) is
//! dropped from the cookie before any handler reads it, so it counts as signed out everywhere.

use actix_session::SessionExt as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, web};

use crate::pages::{self, ErrorKind};
use crate::session::{USER_KEY, UserSession};
use crate::state::AppState;

/// The middleware (between the session middleware and the gate).
pub async fn check_session(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let session = request.get_session();
    if let (Some(state), Ok(Some(user))) = (state, session.get::<UserSession>(USER_KEY)) {
        let now = oidc_core::unix_now();
        match state.store.is_active(&user.session_id, now).await {
            Ok(true) => {}
            // Not `purge`: the rest of the request may still write (a CSRF token for the
            // sign-in page), which a purged session ignores.
            Ok(false) => {
                session.remove(USER_KEY);
            }
            Err(error) => {
                // Neither signed in nor signed out can be told: nothing is changed.
                tracing::warn!(%error, "cannot check the session");
                let response = pages::error_page(ErrorKind::Configuration);
                return Ok(request.into_response(response).map_into_right_body());
            }
        }
    }
    next.call(request)
        .await
        .map(ServiceResponse::map_into_left_body)
}
