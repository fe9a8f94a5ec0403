//! The registered clients as the protocol endpoints see them, and client authentication at the
//! token, revocation and introspection endpoints (RFC 6749 §2.3.1).
//!
//! Client secrets are high-entropy random strings, so the stored SHA-256 of the secret is
//! compared in constant time: a slow KDF would add nothing against guessing and would make every
//! token request cost tens of milliseconds.

use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine as _;
use oidc_core::types::ClientSecret;

pub use crate::storage::clients::{Client as RegisteredClient, GrantType};
use crate::storage::{Conn, StorageError};

use super::params::Params;

/// A client by id.
pub fn find_client(
    conn: &mut Conn,
    client_id: &str,
) -> Result<Option<RegisteredClient>, StorageError> {
    crate::storage::clients::find(conn, client_id)
}

/// How a client presented itself.
#[derive(Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    secret: Option<ClientSecret>,
}

/// Why a client could not be identified or authenticated: always `invalid_client`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientAuthError {
    #[error("client authentication is missing")]
    Missing,
    #[error("the Authorization header is not valid HTTP Basic")]
    MalformedBasic,
    #[error("more than one client authentication method was used")]
    SeveralMethods,
    #[error("unknown client or wrong client secret")]
    Failed,
}

/// Reads `client_secret_basic` or `client_secret_post` credentials (or a bare `client_id` for a
/// public client), refusing requests that use more than one method (RFC 6749 §2.3).
pub fn read_credentials(
    req: &HttpRequest,
    params: &mut Params,
) -> Result<ClientCredentials, ClientAuthError> {
    let body_id = params.take("client_id");
    let body_secret = params.take("client_secret");
    let basic = match req.headers().get(header::AUTHORIZATION) {
        Some(value) => Some(parse_basic(
            value
                .to_str()
                .map_err(|_| ClientAuthError::MalformedBasic)?,
        )?),
        None => None,
    };
    match (basic, body_id, body_secret) {
        (Some((id, secret)), body_id, None) => {
            // A client_id repeated in the body is tolerated only when it names the same client.
            if body_id.is_some_and(|b| b != id) {
                return Err(ClientAuthError::SeveralMethods);
            }
            Ok(ClientCredentials {
                client_id: id,
                secret: Some(ClientSecret::new(secret)),
            })
        }
        (Some(_), _, Some(_)) => Err(ClientAuthError::SeveralMethods),
        (None, Some(id), secret) => Ok(ClientCredentials {
            client_id: id,
            secret: secret.map(ClientSecret::new),
        }),
        (None, None, _) => Err(ClientAuthError::Missing),
    }
}

/// Decodes `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(value: &str) -> Result<(String, String), ClientAuthError> {
    let (scheme, encoded) = value
        .trim()
        .split_once(' ')
        .ok_or(ClientAuthError::MalformedBasic)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ClientAuthError::MalformedBasic);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| ClientAuthError::MalformedBasic)?;
    let decoded = String::from_utf8(decoded).map_err(|_| ClientAuthError::MalformedBasic)?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or(ClientAuthError::MalformedBasic)?;
    let id = form_decode(id)?;
    let secret = form_decode(secret)?;
    if id.is_empty() {
        return Err(ClientAuthError::MalformedBasic);
    }
    Ok((id, secret))
}

fn form_decode(value: &str) -> Result<String, ClientAuthError> {
    let params = Params::parse(format!("v={value}").as_bytes())
        .map_err(|_| ClientAuthError::MalformedBasic)?;
    Ok(params.get("v").unwrap_or_default().to_owned())
}

/// Looks the client up and checks its credentials: confidential clients must present their
/// secret, public clients must present none.
pub fn authenticate(
    conn: &mut Conn,
    credentials: &ClientCredentials,
) -> Result<RegisteredClient, AuthenticateError> {
    let client = find_client(conn, &credentials.client_id)?.ok_or(ClientAuthError::Failed)?;
    let ok = match (&credentials.secret, client.is_confidential()) {
        (Some(secret), true) => client.verify_secret(secret.secret()),
        (None, false) => true,
        _ => false,
    };
    if ok {
        Ok(client)
    } else {
        Err(ClientAuthError::Failed.into())
    }
}

/// A failed [`authenticate`]: a wrong client, or the database.
#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError {
    #[error(transparent)]
    Client(#[from] ClientAuthError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}
