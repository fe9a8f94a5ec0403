//! The provider's own home page: who is signed in, and links to the admin site.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::identity::login::signed_in_user;
use crate::pages::{error_page, render};
use crate::state::AppState;

#[derive(Serialize)]
struct HomeUser {
    username: String,
    display_name: String,
    is_admin: bool,
}

#[derive(Serialize)]
struct HomePage<'a> {
    issuer: &'a str,
    /// Read by the base layout, which links to `/account` for signed-in users.
    signed_in: bool,
    user: Option<HomeUser>,
}

/// `GET /`.
pub async fn home(state: web::Data<AppState>, session: Session) -> HttpResponse {
    let user = match signed_in_user(&state, &session).await {
        Ok(user) => user,
        Err(error) => {
            tracing::error!(error = ?error, "loading the signed-in user failed");
            return error_page(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again later.",
            );
        }
    };
    let page = HomePage {
        issuer: &state.settings.issuer,
        signed_in: user.is_some(),
        user: user.map(|u| HomeUser {
            display_name: u.display_name(),
            username: u.username,
            is_admin: u.is_admin,
        }),
    };
    render(&state.templates, "index.html", &page)
}
