//! The HTTP routes: NextAuth's auth routes, the home page and the health check.

pub mod auth;
pub mod health;
pub mod home;

use actix_session::Session;
use actix_web::{HttpResponse, web};

use crate::pages::{self, ErrorKind};

/// Mounts every route; unknown paths get the friendly 404 page (behind the gate).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure)
        .configure(auth::configure)
        .configure(home::configure)
        .default_service(web::to(not_found));
}

/// Only signed-in users get here (the gate is in front), so the layout shows them.
async fn not_found(session: Session) -> HttpResponse {
    pages::error_page_with(ErrorKind::NotFound, auth::layout(&session))
}
