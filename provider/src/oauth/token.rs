//! The token endpoint (RFC 6749 §3.2, §4.1.3, §6; RFC 7636 §4.6; OpenID Connect Core 1.0 §3.1.3).
//!
//! One write transaction per request authenticates the client, checks and consumes the code or
//! refresh token, and stores the new tokens, so a request costs one trip to the database. A
//! replayed code or a reused refresh token revokes the whole grant; that revocation commits even
//! though the request itself is refused.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use oidc_core::claims::{Audience, IdTokenClaims};
use oidc_core::error::ErrorCode;
use oidc_core::pkce::{CodeChallenge, CodeVerifier};
use oidc_core::token::{TokenForm, TokenRequest, TokenResponse};
use oidc_core::types::{
    AccessToken, AuthorizationCode, ClientId, ClientSecret, Nonce, RedirectUri, RefreshToken,
    Scopes, Subject,
};
use oidc_core::unix_now;

use crate::state::AppState;
use crate::storage::Conn;
use crate::storage::grants::{self, AccessTokenRow, ClaimsUser, RefreshTokenRow};

use super::clients::{self, GrantType, RegisteredClient};
use super::error::OAuthError;
use super::id_token;
use super::params;
use super::scopes;

/// What a token request asks for, once its parameters are read and checked.
enum GrantRequest {
    AuthorizationCode {
        code: AuthorizationCode,
        redirect_uri: Option<RedirectUri>,
        verifier: CodeVerifier,
    },
    RefreshToken {
        token: RefreshToken,
        scope: Option<Scopes>,
    },
}

impl GrantRequest {
    /// The `grant_type` label of the tokens issued for it.
    fn grant_type(&self) -> &'static str {
        match self {
            Self::AuthorizationCode { .. } => "authorization_code",
            Self::RefreshToken { .. } => "refresh_token",
        }
    }

    /// The grant of a parsed request; PKCE is required, so a code comes with its verifier.
    fn from_token_request(request: TokenRequest) -> Result<Self, OAuthError> {
        match request {
            TokenRequest::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
                ..
            } => Ok(Self::AuthorizationCode {
                code,
                redirect_uri,
                verifier: code_verifier.ok_or_else(|| {
                    OAuthError::invalid_request("code_verifier is missing (PKCE is required)")
                })?,
            }),
            TokenRequest::RefreshToken {
                refresh_token,
                scope,
                ..
            } => Ok(Self::RefreshToken {
                token: refresh_token,
                scope,
            }),
        }
    }
}

/// What the transaction issued, for the response and the ID token.
struct Issued {
    client: RegisteredClient,
    user: ClaimsUser,
    access_token: AccessToken,
    refresh_token: Option<RefreshToken>,
    scope: Scopes,
    nonce: Option<String>,
    auth_time: i64,
    /// The session the grant was issued in: the `sid` claim.
    sid: Option<String>,
    /// How the user signed in (space separated) and the `acr` reached, as the grant recorded.
    amr: String,
    acr: String,
}

/// Lifetimes, copied out of the settings for the blocking closure.
#[derive(Clone, Copy)]
struct Lifetimes {
    access: i64,
    /// `None`: no refresh tokens (`PROVIDER_OFFLINE_ACCESS=false`).
    refresh: Option<i64>,
}

/// `POST /oauth/token`.
pub async fn token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let body = params::form_body(&req, payload).await?;
    let form = TokenForm::parse(&body)?;
    // The client first (401), then the grant (400), as RFC 6749 §3.2.1 has it.
    let credentials = clients::credentials(
        &req,
        form.client_id().map(str::to_owned),
        form.client_secret().map(ClientSecret::new),
    )?;
    let request = GrantRequest::from_token_request(form.into_request()?)?;
    let grant_type = request.grant_type();
    let lifetimes = Lifetimes {
        access: state.settings.access_token_ttl_secs,
        refresh: (state.settings.offline_access).then_some(state.settings.refresh_token_ttl_secs),
    };
    let issued = state
        .db
        .write(
            move |conn| -> Result<Result<Issued, OAuthError>, OAuthError> {
                let client = clients::authenticate(conn, &credentials)?;
                match request {
                    GrantRequest::AuthorizationCode {
                        code,
                        redirect_uri,
                        verifier,
                    } => redeem_code(
                        conn,
                        client,
                        &code,
                        redirect_uri.as_ref(),
                        &verifier,
                        lifetimes,
                    ),
                    GrantRequest::RefreshToken { token, scope } => {
                        refresh(conn, client, &token, scope, lifetimes)
                    }
                }
            },
        )
        .await??;

    let id_token = if issued.scope.contains("openid") {
        Some(id_token(&state, &issued)?)
    } else {
        None
    };
    let mut response = TokenResponse::bearer(issued.access_token);
    response.expires_in = u64::try_from(lifetimes.access).ok();
    response.refresh_token = issued.refresh_token;
    response.id_token = id_token;
    response.scope = Some(issued.scope);
    state.metrics.token_issued(grant_type);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(response))
}

/// Exchanges a code (RFC 6749 §4.1.3). Errors that revoke (a replayed code) are returned as the
/// inner value so that the transaction still commits the revocation.
fn redeem_code(
    conn: &mut Conn,
    client: RegisteredClient,
    code: &AuthorizationCode,
    redirect_uri: Option<&RedirectUri>,
    verifier: &CodeVerifier,
    lifetimes: Lifetimes,
) -> Result<Result<Issued, OAuthError>, OAuthError> {
    let at = unix_now();
    let code_hash = code.hash().into_string();
    let Some(row) = grants::find_code(conn, &code_hash)? else {
        return Ok(Err(OAuthError::invalid_grant("the code is unknown")));
    };
    if row.client_id != client.id {
        return Ok(Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        )));
    }
    if row.used_at.is_some() || !grants::mark_code_used(conn, &code_hash, at)? {
        // RFC 6749 §4.1.2: a code used twice revokes the tokens issued from it.
        grants::revoke_grant_family(conn, &row.grant_id, at)?;
        tracing::warn!(client_id = %client.id, "authorization code replayed: grant revoked");
        return Ok(Err(OAuthError::invalid_grant("the code was already used")));
    }
    if row.expires_at <= at {
        return Ok(Err(OAuthError::invalid_grant("the code has expired")));
    }
    let redirect_ok = match redirect_uri {
        Some(uri) => uri.as_str() == row.redirect_uri,
        // Only a client with a single registered URI may leave it out (RFC 6749 §4.1.3).
        None => client.redirect_uris.len() == 1 && client.redirect_uris[0] == row.redirect_uri,
    };
    if !redirect_ok {
        return Ok(Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        )));
    }
    let challenge_ok = CodeChallenge::parse(&row.code_challenge).is_ok_and(|c| c.verify(verifier));
    if !challenge_ok {
        return Ok(Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        )));
    }
    // The user's row, then the grant's: the order every write that ends them locks them in.
    let Some(user) =
        grants::find_claims_user_for_share(conn, &row.user_id)?.filter(|u| u.is_active)
    else {
        return Ok(Err(OAuthError::invalid_grant(
            "the user is no longer active",
        )));
    };
    let Some(grant) =
        grants::find_grant_for_update(conn, &row.grant_id)?.filter(|g| g.revoked_at.is_none())
    else {
        return Ok(Err(OAuthError::invalid_grant(
            "the authorization was revoked",
        )));
    };
    let scope = row.scope;
    let (access_token, refresh_token) = issue_tokens(
        conn,
        &client,
        &row.grant_id,
        &user.id,
        &scope,
        &scope,
        lifetimes,
        at,
    )?;
    Ok(Ok(Issued {
        client,
        user,
        access_token,
        refresh_token,
        scope,
        nonce: row.nonce,
        auth_time: row.auth_time,
        sid: grant.session_id,
        amr: row.amr,
        acr: row.acr,
    }))
}

/// Rotates a refresh token (RFC 6749 §6, RFC 9700 §4.14.2).
fn refresh(
    conn: &mut Conn,
    client: RegisteredClient,
    token: &RefreshToken,
    requested: Option<Scopes>,
    lifetimes: Lifetimes,
) -> Result<Result<Issued, OAuthError>, OAuthError> {
    let at = unix_now();
    let token_hash = token.hash().into_string();
    if !client.allows_grant(GrantType::RefreshToken) {
        return Ok(Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use refresh tokens",
        )));
    }
    let Some(row) = grants::find_refresh_token(conn, &token_hash)? else {
        return Ok(Err(OAuthError::invalid_grant(
            "the refresh token is unknown",
        )));
    };
    if row.client_id != client.id {
        return Ok(Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        )));
    }
    if row.revoked_at.is_some() {
        return Ok(Err(OAuthError::invalid_grant(
            "the refresh token was revoked",
        )));
    }
    if row.used_at.is_some() {
        return Ok(Err(reuse_detected(conn, &client, &row.grant_id, at)?));
    }
    if row.expires_at <= at {
        return Ok(Err(OAuthError::invalid_grant(
            "the refresh token has expired",
        )));
    }
    let granted = row.scope.clone();
    let scope = match requested {
        Some(requested) if !requested.is_subset(&granted) => {
            return Ok(Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "the requested scope exceeds the granted scope",
            )));
        }
        Some(requested) => requested,
        None => granted.clone(),
    };
    // The user's row, then the grant's: the order every write that ends them locks them in.
    let Some(user) =
        grants::find_claims_user_for_share(conn, &row.user_id)?.filter(|u| u.is_active)
    else {
        return Ok(Err(OAuthError::invalid_grant(
            "the user is no longer active",
        )));
    };
    let Some(grant) =
        grants::find_grant_for_update(conn, &row.grant_id)?.filter(|g| g.revoked_at.is_none())
    else {
        return Ok(Err(OAuthError::invalid_grant(
            "the authorization was revoked",
        )));
    };
    // Rotate only once every check passed, so a client mistake (say, too wide a scope) does not
    // burn the token. The conditional update makes two concurrent uses count as a reuse.
    if !grants::mark_refresh_token_used(conn, &token_hash, at)? {
        return Ok(Err(reuse_detected(conn, &client, &row.grant_id, at)?));
    }
    // The new refresh token keeps the grant's full scope; only the access token narrows.
    let (access_token, refresh_token) = issue_tokens(
        conn,
        &client,
        &row.grant_id,
        &user.id,
        &scope,
        &granted,
        lifetimes,
        at,
    )?;
    Ok(Ok(Issued {
        client,
        user,
        access_token,
        refresh_token,
        scope,
        nonce: None,
        auth_time: grant.auth_time,
        sid: grant.session_id,
        amr: grant.amr,
        acr: grant.acr,
    }))
}

/// A rotated refresh token presented again means it leaked: the whole grant ends.
fn reuse_detected(
    conn: &mut Conn,
    client: &RegisteredClient,
    grant_id: &str,
    at: i64,
) -> Result<OAuthError, OAuthError> {
    grants::revoke_grant_family(conn, grant_id, at)?;
    tracing::warn!(client_id = %client.id, "refresh token reused: grant revoked");
    Ok(OAuthError::invalid_grant(
        "the refresh token was already used",
    ))
}

#[allow(clippy::too_many_arguments)]
fn issue_tokens(
    conn: &mut Conn,
    client: &RegisteredClient,
    grant_id: &str,
    user_id: &str,
    access_scope: &Scopes,
    refresh_scope: &Scopes,
    lifetimes: Lifetimes,
    at: i64,
) -> Result<(AccessToken, Option<RefreshToken>), OAuthError> {
    let access_token = AccessToken::generate();
    grants::insert_access_token(
        conn,
        AccessTokenRow {
            token_hash: access_token.hash().into_string(),
            grant_id: grant_id.to_owned(),
            client_id: client.id.clone(),
            user_id: user_id.to_owned(),
            scope: access_scope.clone(),
            expires_at: at + lifetimes.access,
            revoked_at: None,
            created_at: at,
        },
    )?;
    let refresh_ttl = lifetimes
        .refresh
        .filter(|_| client.allows_grant(GrantType::RefreshToken));
    let refresh_token = if let Some(refresh_ttl) = refresh_ttl {
        let token = RefreshToken::generate();
        grants::insert_refresh_token(
            conn,
            RefreshTokenRow {
                token_hash: token.hash().into_string(),
                grant_id: grant_id.to_owned(),
                client_id: client.id.clone(),
                user_id: user_id.to_owned(),
                scope: refresh_scope.clone(),
                expires_at: at + refresh_ttl,
                used_at: None,
                revoked_at: None,
                created_at: at,
            },
        )?;
        Some(token)
    } else {
        None
    };
    Ok((access_token, refresh_token))
}

/// Signs the ID token with the client's algorithm and the active key (OpenID Connect Core 1.0
/// §2, §3.1.3.6).
fn id_token(state: &AppState, issued: &Issued) -> Result<String, OAuthError> {
    let issuer = state.issuer()?;
    let client_id = ClientId::new(issued.client.id.clone());
    let now = unix_now();
    let mut claims = IdTokenClaims::new(
        issuer,
        Subject::new(issued.user.subject.clone()),
        Audience::Single(client_id.clone()),
        now,
        now + state.settings.id_token_ttl_secs,
    );
    claims.auth_time = Some(issued.auth_time);
    claims.nonce = issued.nonce.clone().map(Nonce::new);
    claims.azp = Some(client_id);
    claims.sid = issued.sid.clone();
    claims.acr = Some(issued.acr.clone());
    claims.amr = Some(issued.amr.split_whitespace().map(str::to_owned).collect());
    claims.profile = scopes::standard_claims(&issued.user, &issued.scope);
    id_token::sign(
        state,
        issued.client.id_token_signed_response_alg,
        &mut claims,
        &issued.access_token,
    )
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError as _;
    use proptest::prelude::*;

    use super::*;

    /// Form bodies built from the token request's own parameter names and values, then some
    /// of their bytes mutated.
    fn token_forms() -> impl Strategy<Value = Vec<u8>> {
        let name = prop_oneof![
            Just("grant_type".to_owned()),
            Just("code".to_owned()),
            Just("code_verifier".to_owned()),
            Just("redirect_uri".to_owned()),
            Just("refresh_token".to_owned()),
            Just("scope".to_owned()),
            Just("client_id".to_owned()),
            "[a-z_]{1,12}",
        ];
        let value = prop_oneof![
            Just("authorization_code".to_owned()),
            Just("refresh_token".to_owned()),
            Just("openid profile".to_owned()),
            "[A-Za-z0-9._~-]{43}",
            "\\PC{0,30}",
            "(%[0-9A-Fa-f]{2}){1,6}",
            "%[^0-9A-Fa-f]?.?",
        ];
        (
            proptest::collection::vec((name, value), 0..8),
            proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        )
            .prop_map(|(pairs, mutations)| {
                let mut body = pairs
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
                    .into_bytes();
                for (at, byte) in mutations {
                    if !body.is_empty() {
                        let at = at % body.len();
                        body[at] = byte;
                    }
                }
                body
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the form, the answer is a grant request or an RFC 6749 §5.2 error with a
        /// 400: never a panic, never a 5xx.
        #[test]
        fn any_token_form_is_a_grant_request_or_a_400(body in token_forms()) {
            let outcome = TokenRequest::from_form(&body)
                .map_err(OAuthError::from)
                .and_then(GrantRequest::from_token_request);
            if let Err(error) = outcome {
                let response = error.error_response();
                prop_assert_eq!(response.status(), 400, "{}", error);
                let code = match &error {
                    OAuthError::Protocol { code, .. } => code.as_str(),
                    other => panic!("not a protocol error: {other}"),
                };
                prop_assert!(
                    ["invalid_request", "unsupported_grant_type", "invalid_scope"].contains(&code),
                    "{}", code
                );
            }
        }
    }
}
