//! The OAuth 2.0 and OpenID Connect endpoints: discovery, JWKS, authorization (with consent),
//! token, userinfo, revocation, introspection, RP-initiated logout, and the protected profile API.

mod authorization_request;
mod authorize;
mod clients;
mod consent;
mod discovery;
pub(crate) mod error;
mod id_token;
mod introspection;
mod jwks;
mod logout;
mod params;
mod profile;
mod revocation;
pub(crate) mod scopes;
mod token;
mod userinfo;

use actix_web::web;

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
    .route("/oauth/jwks", web::get().to(jwks::jwks))
    .route("/oauth/authorize", web::get().to(authorize::authorize_get))
    .route(
        "/oauth/authorize",
        web::post().to(authorize::authorize_post),
    )
    .route(
        "/oauth/authorize/decision",
        web::post().to(consent::decision),
    )
    .route("/oauth/token", web::post().to(token::token))
    .route("/oauth/userinfo", web::get().to(userinfo::userinfo_get))
    .route("/oauth/userinfo", web::post().to(userinfo::userinfo_post))
    .route("/oauth/revoke", web::post().to(revocation::revoke))
    .route(
        "/oauth/introspect",
        web::post().to(introspection::introspect),
    )
    .route("/oauth/logout", web::get().to(logout::end_session_get))
    .route("/oauth/logout", web::post().to(logout::end_session_post))
    .route("/oauth/logout/confirm", web::post().to(logout::confirm))
    .route("/api/profile", web::get().to(profile::api_profile));
}
