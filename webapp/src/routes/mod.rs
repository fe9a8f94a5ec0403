//! The HTTP routes: NextAuth's auth routes, the home page and the health check.

pub mod auth;
pub mod health;
pub mod home;

use actix_web::web;

use crate::pages::{self, ErrorKind};

/// Mounts every route; unknown paths get the friendly 404 page (behind the gate).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure)
        .configure(auth::configure)
        .configure(home::configure)
        .default_service(web::to(|| async { pages::error_page(ErrorKind::NotFound) }));
}
