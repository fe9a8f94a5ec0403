//! Registered applications (OAuth clients): secret generation and checking, and the queries on
//! the `clients` table; what an operator may register is checked in [`registration`].

mod registration;

use std::fmt;

use oidc_core::unix_now;

use diesel::prelude::*;
use oidc_core::jose::Algorithm;
use oidc_core::types::{ClientSecret, TokenHash};

use super::columns::AlgorithmColumn;
use super::schema::clients;
use super::{Conn, StorageError, is_unique_violation, new_id};

pub use registration::{
    ClientInput, ClientInputError, ClientType, GrantType, RedirectUriError, validate_redirect_uri,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clients)]
struct ClientRow {
    id: String,
    name: String,
    secret_hash: Option<String>,
    client_type: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: String,
    skip_authorization: bool,
    #[diesel(deserialize_as = AlgorithmColumn, serialize_as = AlgorithmColumn)]
    id_token_signed_response_alg: Algorithm,
    created_at: i64,
    updated_at: i64,
    can_introspect: bool,
    backchannel_logout_uri: Option<String>,
    backchannel_logout_session_required: bool,
    requires_mfa: bool,
}

/// A registered application.
#[derive(Clone, serde::Serialize)]
pub struct Client {
    /// The client id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// SHA-256 of the secret (base64url); `None` for public clients.
    #[serde(skip)]
    pub secret_hash: Option<String>,
    /// Confidential or public.
    pub client_type: ClientType,
    /// Registered redirect URIs, matched byte for byte.
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs, matched byte for byte.
    pub post_logout_redirect_uris: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<GrantType>,
    /// Skip the consent page.
    pub skip_authorization: bool,
    /// The algorithm its ID tokens are signed with.
    pub id_token_signed_response_alg: Algorithm,
    /// A resource server: may introspect the access tokens issued to other clients.
    pub can_introspect: bool,
    /// Where logout tokens are posted, if anywhere.
    pub backchannel_logout_uri: Option<String>,
    /// Whether the application needs `sid` in logout tokens.
    pub backchannel_logout_session_required: bool,
    /// Sign-ins for this application must have used a second factor.
    pub requires_mfa: bool,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Last change (unix seconds).
    pub updated_at: i64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("client_type", &self.client_type)
            .field("redirect_uris", &self.redirect_uris)
            .field("can_introspect", &self.can_introspect)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Whether `secret` is this client's secret. The stored value is a SHA-256 hash of a
    /// high-entropy secret, so one fast hash and a constant-time comparison suffice.
    pub fn verify_secret(&self, secret: &str) -> bool {
        match &self.secret_hash {
            Some(stored) => ClientSecret::new(secret).matches_hash(&TokenHash::from_stored(stored)),
            None => false,
        }
    }

    /// Whether the client authenticates with a secret.
    pub fn is_confidential(&self) -> bool {
        self.client_type == ClientType::Confidential
    }

    /// Whether `uri` is byte-identical to a registered redirect URI.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|u| u == uri)
    }

    /// Whether `uri` is byte-identical to a registered post-logout redirect URI.
    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|u| u == uri)
    }

    /// Whether this client may be told about `token_client_id`'s token of the given kind at the
    /// introspection endpoint (RFC 7662 §4): a refresh token only to the client it was issued
    /// to, since only that client ever presents it; an access token also to a registered
    /// resource server, which checks the tokens presented to it.
    pub fn may_introspect(&self, token_client_id: &str, refresh_token: bool) -> bool {
        self.is_confidential()
            && (self.id == token_client_id || (!refresh_token && self.can_introspect))
    }

    /// Whether the client may use `grant`.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    fn from_row(row: ClientRow) -> Result<Self, StorageError> {
        let list = |json: &str| -> Result<Vec<String>, StorageError> {
            serde_json::from_str(json)
                .map_err(|e| StorageError::Corrupt(format!("client {}: {e}", row.id)))
        };
        let grant_types = row
            .grant_types
            .split_whitespace()
            .map(GrantType::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| StorageError::Corrupt(format!("client {}: {e}", row.id)))?;
        let client_type = ClientType::parse(&row.client_type)
            .map_err(|e| StorageError::Corrupt(format!("client {}: {e}", row.id)))?;
        Ok(Self {
            redirect_uris: list(&row.redirect_uris)?,
            post_logout_redirect_uris: list(&row.post_logout_redirect_uris)?,
            grant_types,
            client_type,
            id: row.id,
            name: row.name,
            secret_hash: row.secret_hash,
            skip_authorization: row.skip_authorization,
            id_token_signed_response_alg: row.id_token_signed_response_alg,
            can_introspect: row.can_introspect,
            backchannel_logout_uri: row.backchannel_logout_uri,
            backchannel_logout_session_required: row.backchannel_logout_session_required,
            requires_mfa: row.requires_mfa,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Error of the write functions: refused input, or a storage failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The input was refused.
    #[error(transparent)]
    Input(#[from] ClientInputError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<diesel::result::Error> for ClientError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Storage(e.into())
    }
}

fn json_list(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

fn grant_list(list: &[GrantType]) -> String {
    list.iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the database stores of a client secret.
fn stored_hash(secret: &ClientSecret) -> String {
    secret.hash().into_string()
}

/// Registers a client. Returns it with its secret in plain text (confidential clients only):
/// the only moment the secret exists outside the client.
pub fn create(
    conn: &mut Conn,
    input: &ClientInput,
    allow_http_hosts: &[String],
) -> Result<(Client, Option<ClientSecret>), ClientError> {
    create_with_secret(conn, input, allow_http_hosts, None)
}

/// Like [`create`], with a secret chosen by the caller (bootstrap) instead of a generated one.
pub fn create_with_secret(
    conn: &mut Conn,
    input: &ClientInput,
    allow_http_hosts: &[String],
    secret: Option<ClientSecret>,
) -> Result<(Client, Option<ClientSecret>), ClientError> {
    input.validate(allow_http_hosts)?;
    let secret = match input.client_type {
        ClientType::Confidential => Some(secret.unwrap_or_else(ClientSecret::generate)),
        ClientType::Public => None,
    };
    let at = unix_now();
    let row = ClientRow {
        id: input.id.clone().unwrap_or_else(new_id),
        name: input.name.trim().to_owned(),
        secret_hash: secret.as_ref().map(stored_hash),
        client_type: input.client_type.as_str().to_owned(),
        redirect_uris: json_list(&input.redirect_uris),
        post_logout_redirect_uris: json_list(&input.post_logout_redirect_uris),
        grant_types: grant_list(&input.grant_types),
        skip_authorization: input.skip_authorization,
        id_token_signed_response_alg: input.id_token_signed_response_alg,
        created_at: at,
        updated_at: at,
        can_introspect: input.can_introspect,
        backchannel_logout_uri: input.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: input.backchannel_logout_session_required,
        requires_mfa: input.requires_mfa,
    };
    match diesel::insert_into(clients::table)
        .values(row.clone())
        .execute(conn)
    {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(ClientInputError::ClientIdTaken.into()),
        Err(e) => return Err(e.into()),
    }
    Ok((Client::from_row(row)?, secret))
}

/// Replaces the registration of an existing client (its id and secret stay). A client turned
/// public loses its secret; one turned confidential gets a new one, returned here.
pub fn update(
    conn: &mut Conn,
    id: &str,
    input: &ClientInput,
    allow_http_hosts: &[String],
) -> Result<Option<(Client, Option<ClientSecret>)>, ClientError> {
    input.validate(allow_http_hosts)?;
    let Some(existing) = find(conn, id)? else {
        return Ok(None);
    };
    let (secret_hash, new_secret) = match (input.client_type, existing.secret_hash) {
        (ClientType::Public, _) => (None, None),
        (ClientType::Confidential, Some(hash)) => (Some(hash), None),
        (ClientType::Confidential, None) => {
            let secret = ClientSecret::generate();
            (Some(stored_hash(&secret)), Some(secret))
        }
    };
    diesel::update(clients::table.find(id))
        .set((
            clients::name.eq(input.name.trim()),
            clients::secret_hash.eq(secret_hash),
            clients::client_type.eq(input.client_type.as_str()),
            clients::redirect_uris.eq(json_list(&input.redirect_uris)),
            clients::post_logout_redirect_uris.eq(json_list(&input.post_logout_redirect_uris)),
            clients::grant_types.eq(grant_list(&input.grant_types)),
            clients::skip_authorization.eq(input.skip_authorization),
            clients::id_token_signed_response_alg
                .eq(AlgorithmColumn::from(input.id_token_signed_response_alg)),
            clients::can_introspect.eq(input.can_introspect),
            clients::backchannel_logout_uri.eq(&input.backchannel_logout_uri),
            clients::backchannel_logout_session_required
                .eq(input.backchannel_logout_session_required),
            clients::requires_mfa.eq(input.requires_mfa),
            clients::updated_at.eq(unix_now()),
        ))
        .execute(conn)?;
    let client = find(conn, id)?.ok_or(StorageError::Query(diesel::result::Error::NotFound))?;
    Ok(Some((client, new_secret)))
}

/// Replaces the secret of a confidential client with a new one (the old one stops working at
/// once). `None` when the client does not exist or is public.
pub fn regenerate_secret(conn: &mut Conn, id: &str) -> Result<Option<ClientSecret>, StorageError> {
    let secret = ClientSecret::generate();
    let n = set_secret(conn, id, &secret)?;
    Ok((n == 1).then_some(secret))
}

/// Sets the secret of a confidential client; returns the number of rows changed.
pub fn set_secret(conn: &mut Conn, id: &str, secret: &ClientSecret) -> Result<usize, StorageError> {
    Ok(diesel::update(
        clients::table
            .find(id)
            .filter(clients::client_type.eq(ClientType::Confidential.as_str())),
    )
    .set((
        clients::secret_hash.eq(stored_hash(secret)),
        clients::updated_at.eq(unix_now()),
    ))
    .execute(conn)?)
}

/// A client by id.
pub fn find(conn: &mut Conn, id: &str) -> Result<Option<Client>, StorageError> {
    clients::table
        .find(id)
        .select(ClientRow::as_select())
        .get_result(conn)
        .optional()?
        .map(Client::from_row)
        .transpose()
}

/// Every client, by name.
pub fn list(conn: &mut Conn) -> Result<Vec<Client>, StorageError> {
    clients::table
        .order((clients::name.asc(), clients::id.asc()))
        .select(ClientRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Client::from_row)
        .collect()
}

/// Deletes a client and, through the foreign keys, its grants, codes, tokens and consents.
pub fn delete(conn: &mut Conn, id: &str) -> Result<bool, StorageError> {
    Ok(diesel::delete(clients::table.find(id)).execute(conn)? == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_256_bits_and_verify_by_hash() {
        let secret = ClientSecret::generate();
        assert_eq!(secret.secret().len(), 43);
        assert_ne!(secret.secret(), ClientSecret::generate().secret());
        let client = Client {
            id: "c".into(),
            name: "n".into(),
            secret_hash: Some(stored_hash(&secret)),
            client_type: ClientType::Confidential,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode],
            skip_authorization: false,
            id_token_signed_response_alg: Algorithm::RS256,
            can_introspect: false,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
            requires_mfa: false,
            created_at: 0,
            updated_at: 0,
        };
        assert!(client.verify_secret(secret.secret()));
        assert!(!client.verify_secret("wrong"));
        assert!(!format!("{secret:?}").contains(secret.secret()));
    }
}
