//! The liveness endpoint used by container health checks and test harnesses.

use actix_web::{HttpResponse, get};

/// `GET /healthz`: 200 "ok" once the server accepts requests (migrations have run by then).
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}
