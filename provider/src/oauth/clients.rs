//! The registered clients as the protocol endpoints see them, and client authentication at the
//! token, revocation and introspection endpoints (RFC 6749 §2.3.1).
//!
//! Client secrets are high-entropy random strings, so the stored SHA-256 of the secret is
//! compared in constant time: a slow KDF would add nothing against guessing and would make every
//! token request cost tens of milliseconds.

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use base64::Engine as _;
use oidc_core::types::{AccessToken, ClientSecret};

pub use crate::storage::clients::{Client as RegisteredClient, GrantType};
use crate::storage::{Conn, StorageError};

use super::error::OAuthError;
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
    let body_secret = params.take("client_secret").map(ClientSecret::new);
    credentials(req, body_id, body_secret)
}

/// Combines the `Authorization` header with the `client_id` and `client_secret` of the body,
/// refusing requests that use more than one method (RFC 6749 §2.3).
pub fn credentials(
    req: &HttpRequest,
    body_id: Option<String>,
    body_secret: Option<ClientSecret>,
) -> Result<ClientCredentials, ClientAuthError> {
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
            secret,
        }),
        (None, None, _) => Err(ClientAuthError::Missing),
    }
}

/// What the revocation and introspection endpoints are sent (RFC 7009 §2.1, RFC 7662 §2.1): the
/// client's credentials, and the hash of the token it asks about.
pub async fn read_token_request(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(ClientCredentials, String), OAuthError> {
    let mut params = Params::from_body(req, payload).await?;
    let credentials = read_credentials(req, &mut params)?;
    let token = params
        .take("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    Ok((credentials, AccessToken::new(token).hash().into_string()))
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

#[cfg(test)]
mod tests {
    use actix_web::ResponseError as _;
    use actix_web::test::TestRequest;
    use proptest::prelude::*;

    use super::*;

    fn basic(id: &str, secret: &str) -> String {
        let encode =
            |v: &str| -> String { url::form_urlencoded::byte_serialize(v.as_bytes()).collect() };
        let pair = format!("{}:{}", encode(id), encode(secret));
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    /// Every refusal of client authentication is RFC 6749 §5.2 `invalid_client`: 401 with a
    /// `WWW-Authenticate` challenge.
    fn assert_invalid_client(error: ClientAuthError) {
        let response = OAuthError::from(error).error_response();
        assert_eq!(response.status(), 401);
        assert!(
            response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .is_some_and(|v| v.to_str().unwrap_or("").starts_with("Basic"))
        );
    }

    /// A valid header with one byte replaced, inserted or removed.
    fn mutated_basic() -> impl Strategy<Value = String> {
        (
            "[a-zA-Z0-9._~-]{1,20}",
            ".{0,40}",
            any::<usize>(),
            any::<u8>(),
            0..3u8,
        )
            .prop_map(|(id, secret, at, byte, how)| {
                let mut bytes = basic(&id, &secret).into_bytes();
                let at = at % (bytes.len() + 1);
                match how {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.push(byte),
                }
                String::from_utf8_lossy(&bytes).into_owned()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn basic_credentials_round_trip(id in "\\PC{1,30}", secret in "\\PC{0,60}") {
            let header = basic(&id, &secret);
            prop_assert_eq!(parse_basic(&header), Ok((id, secret)));
        }

        #[test]
        fn any_authorization_value_is_parsed_or_refused_as_malformed(value in "\\PC{0,200}") {
            match parse_basic(&value) {
                Ok((id, _)) => prop_assert!(!id.is_empty()),
                Err(e) => {
                    prop_assert_eq!(&e, &ClientAuthError::MalformedBasic);
                    assert_invalid_client(e);
                }
            }
        }

        #[test]
        fn mutated_basic_headers_never_panic(value in mutated_basic()) {
            match parse_basic(&value) {
                Ok((id, _)) => prop_assert!(!id.is_empty()),
                Err(e) => assert_invalid_client(e),
            }
        }

        #[test]
        fn header_and_body_credentials_combine_or_are_refused_as_invalid_client(
            header in proptest::option::of(prop_oneof![
                mutated_basic(),
                "[a-zA-Z0-9._~-]{1,10}".prop_map(|id| basic(&id, "secret")),
                "\\PC{0,40}",
            ]),
            body_id in proptest::option::of("[a-zA-Z0-9%+._~-]{0,12}"),
            body_secret in proptest::option::of("[a-zA-Z0-9%+._~-]{0,12}"),
        ) {
            let mut request = TestRequest::post();
            if let Some(header) = header.as_deref().filter(|h| {
                actix_web::http::header::HeaderValue::from_str(h).is_ok()
            }) {
                request = request.insert_header((header::AUTHORIZATION, header));
            }
            let req = request.to_http_request();
            let mut form = String::new();
            if let Some(id) = &body_id {
                form.push_str(&format!("client_id={id}&"));
            }
            if let Some(secret) = &body_secret {
                form.push_str(&format!("client_secret={secret}"));
            }
            let Ok(mut params) = Params::parse(form.as_bytes()) else {
                return Ok(());
            };
            match read_credentials(&req, &mut params) {
                Ok(credentials) => prop_assert!(!credentials.client_id.is_empty()),
                Err(e) => assert_invalid_client(e),
            }
            // The credentials never stay behind as ordinary parameters.
            prop_assert!(!params.contains("client_id") && !params.contains("client_secret"));
        }
    }
}
