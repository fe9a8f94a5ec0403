//! The scopes this provider knows, what they mean in plain words, and which claims each releases.

use oidc_core::claims::StandardClaims;
use oidc_core::types::Scopes;

use crate::storage::grants::ClaimsUser;

/// Every scope a client may request (unknown scopes are refused with `invalid_scope`).
pub const SUPPORTED_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The claims this provider can release, as advertised in discovery.
pub const SUPPORTED_CLAIMS: [&str; 18] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "azp",
    "acr",
    "amr",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "updated_at",
    "email",
    "email_verified",
];

/// The scopes offered: all of [`SUPPORTED_SCOPES`], less `offline_access` when it is off
/// (`PROVIDER_OFFLINE_ACCESS=false`).
pub fn offered(offline_access: bool) -> Vec<&'static str> {
    SUPPORTED_SCOPES
        .into_iter()
        .filter(|s| offline_access || *s != "offline_access")
        .collect()
}

/// The first scope of `scopes` this provider does not offer, if any.
pub fn first_unsupported(scopes: &Scopes, offline_access: bool) -> Option<String> {
    let offered = offered(offline_access);
    scopes
        .iter()
        .find(|s| !offered.contains(&s.as_str()))
        .map(|s| s.as_str().to_owned())
}

/// What granting a scope lets the application do, in the words of the consent page.
pub fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "Know who you are: confirm that you are signed in, with an account identifier",
        "profile" => "See your name and username",
        "email" => "See your email address and whether it is verified",
        "offline_access" => "Stay connected: keep access while you are not using it",
        _ => "An unknown permission",
    }
}

/// The profile and email claims `scopes` release for `user` (OpenID Connect Core 1.0 §5.4).
pub fn standard_claims(user: &ClaimsUser, scopes: &Scopes) -> StandardClaims {
    let mut claims = StandardClaims::default();
    if scopes.contains("profile") {
        let full_name = format!("{} {}", user.given_name.trim(), user.family_name.trim());
        let full_name = full_name.trim();
        claims.name = Some(if full_name.is_empty() {
            user.username.clone()
        } else {
            full_name.to_owned()
        });
        claims.given_name = non_empty(&user.given_name);
        claims.family_name = non_empty(&user.family_name);
        claims.preferred_username = Some(user.username.clone());
        claims.updated_at = Some(user.updated_at);
    }
    if scopes.contains("email") {
        claims.email = non_empty(&user.email);
        claims.email_verified = Some(user.email_verified);
    }
    claims
}

fn non_empty(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}
