//! First-start provisioning from the settings: an administrator, a demo user and a client.
//! Running it again changes nothing for accounts that exist; the client is brought in line
//! with the settings (name, URIs and secret), so a changed secret takes effect on restart.

use anyhow::Context as _;
use oidc_core::jose::Algorithm;
use oidc_core::types::ClientSecret;

use crate::config::{BootstrapAccount, BootstrapClient};
use crate::state::AppState;
use crate::storage::clients::{self, ClientInput, ClientType, GrantType};
use crate::storage::users::{self, CreateUserError, Profile, UserInputError, Username};

/// Applies `state.settings.bootstrap`.
pub async fn run(state: &AppState) -> anyhow::Result<()> {
    let bootstrap = state.settings.bootstrap.clone();
    if let Some(admin) = &bootstrap.admin {
        ensure_account(state, admin, true)
            .await
            .context("creating the bootstrap administrator")?;
    }
    if let Some(user) = &bootstrap.user {
        ensure_account(state, user, false)
            .await
            .context("creating the bootstrap user")?;
    }
    if let Some(client) = bootstrap.client {
        ensure_client(state, client)
            .await
            .context("registering the bootstrap client")?;
    }
    Ok(())
}

async fn ensure_account(
    state: &AppState,
    account: &BootstrapAccount,
    is_admin: bool,
) -> anyhow::Result<()> {
    let username = Username::parse(&account.username)?;
    let lookup = username.as_str().to_owned();
    let existing = state
        .db
        .run(move |conn| users::find_by_username(conn, &lookup))
        .await?;
    if existing.is_some() {
        return Ok(());
    }
    let hash = state.hasher.hash(account.password.clone()).await?;
    let profile = Profile {
        email: account.email.clone(),
        email_verified: !account.email.is_empty(),
        given_name: account.given_name.clone(),
        family_name: account.family_name.clone(),
        is_admin,
    };
    let created = state
        .db
        .run(move |conn| users::create(conn, &username, &hash, &profile))
        .await;
    match created {
        // Another process starting on the same database got there first.
        Ok(_) | Err(CreateUserError::Input(UserInputError::UsernameTaken)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn ensure_client(state: &AppState, client: BootstrapClient) -> anyhow::Result<()> {
    let allow = state.settings.allow_http_redirect_hosts.clone();
    let input = ClientInput {
        id: Some(client.client_id.clone()),
        name: client.name.clone(),
        client_type: ClientType::Confidential,
        redirect_uris: client.redirect_uris.clone(),
        post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        skip_authorization: false,
        id_token_signed_response_alg: Algorithm::RS256,
        can_introspect: client.can_introspect.unwrap_or(false),
        backchannel_logout_uri: client.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: client.backchannel_logout_session_required,
        requires_mfa: false,
    };
    state
        .db
        .write(move |conn| -> Result<(), clients::ClientError> {
            // Replicas starting together: one creates the client, the others update it.
            crate::storage::serialize(conn, crate::storage::Serialized::BootstrapClient)
                .map_err(crate::storage::StorageError::from)?;
            let secret = ClientSecret::new(client.client_secret);
            match clients::find(conn, &client.client_id)? {
                None => {
                    clients::create_with_secret(conn, &input, &allow, Some(secret))?;
                }
                Some(existing) => {
                    // Keep what an operator may have changed in the admin site (type, grant
                    // types, consent, algorithm); take name, URIs and secret from the settings.
                    let input = ClientInput {
                        client_type: ClientType::Confidential,
                        grant_types: existing.grant_types.clone(),
                        skip_authorization: existing.skip_authorization,
                        id_token_signed_response_alg: existing.id_token_signed_response_alg,
                        can_introspect: client.can_introspect.unwrap_or(existing.can_introspect),
                        ..input
                    };
                    clients::update(conn, &existing.id, &input, &allow)?;
                    clients::set_secret(conn, &existing.id, &secret)?;
                }
            }
            Ok(())
        })
        .await?;
    Ok(())
}
