//! The OAuth 2.0 and OpenID Connect endpoints: discovery, JWKS, authorization (with consent),
//! token, userinfo, revocation, introspection, RP-initiated logout, and the protected profile API.

mod authorize;
mod clients;
mod discovery;
mod error;
mod keys;
mod logout;
mod params;
mod revocation;
mod scopes;
mod token;
mod userinfo;

use actix_web::web;

use crate::state::AppState;
use crate::storage::StorageError;

/// Mounts every OAuth/OpenID Connect route (paths as advertised in discovery).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(discovery::openid_configuration),
    )
    .route(
        "/.well-known/openid-configuration/",
        web::get().to(discovery::openid_configuration),
    )
    .route("/oauth/jwks", web::get().to(discovery::jwks))
    .route("/oauth/authorize", web::get().to(authorize::authorize_get))
    .route(
        "/oauth/authorize",
        web::post().to(authorize::authorize_post),
    )
    .route(
        "/oauth/authorize/decision",
        web::post().to(authorize::decision),
    )
    .route("/oauth/token", web::post().to(token::token))
    .route("/oauth/userinfo", web::get().to(userinfo::userinfo_get))
    .route("/oauth/userinfo", web::post().to(userinfo::userinfo_post))
    .route("/oauth/revoke", web::post().to(revocation::revoke))
    .route("/oauth/introspect", web::post().to(revocation::introspect))
    .route("/oauth/logout", web::get().to(logout::end_session_get))
    .route("/oauth/logout", web::post().to(logout::end_session_post))
    .route("/oauth/logout/confirm", web::post().to(logout::confirm))
    .route("/api/profile", web::get().to(userinfo::api_profile));
}

/// Writers of this process take turns here before asking SQLite for its write lock. SQLite
/// makes a blocked writer sleep in steps of milliseconds (its busy handler); a mutex hands the
/// lock over the moment it is free, which is what keeps concurrent flows fast. It is taken on
/// the blocking thread around the transaction only, so no task switch happens while it is held.
/// Other processes on the same database still wait on the busy timeout.
static WRITE_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` in an immediate write transaction, one writer of this process at a time.
async fn write<F, T, E>(state: &AppState, f: F) -> Result<T, E>
where
    F: FnOnce(&mut crate::storage::Conn) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
{
    state
        .db
        .run(move |conn| {
            let _turn = WRITE_TURN
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            conn.immediate_transaction(f)
        })
        .await
}
