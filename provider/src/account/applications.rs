//! Connected applications: per application, the remembered consent and the active grants, and
//! Revoke, which revokes the grants with their tokens and forgets the consent.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use oidc_core::unix_now;
use serde::Serialize;

use super::{Account, AccountError, AccountForm, ActionForm, Frame, WriteError, format_time, page};
use crate::identity::login::see_other;
use crate::oauth::scopes;
use crate::state::AppState;
use crate::storage::audit::{self, Event, Kind, Outcome};
use crate::storage::{StorageError, clients, grants};

#[derive(Serialize)]
struct ScopeLine {
    name: String,
    description: &'static str,
}

#[derive(Serialize, Default)]
struct Application {
    client_id: String,
    name: String,
    /// Where Revoke posts (the client id percent-encoded).
    revoke_path: String,
    /// The remembered consent's scopes; empty when none is remembered.
    consent: Vec<ScopeLine>,
    consent_updated: Option<String>,
    active_grants: usize,
    last_issued: Option<String>,
    #[serde(skip)]
    last_issued_at: i64,
}

#[derive(Serialize)]
struct ApplicationsPage {
    frame: Frame,
    applications: Vec<Application>,
}

/// The line of `client_id`, added when it is not there yet.
fn entry<'a>(
    by_client: &'a mut BTreeMap<String, Application>,
    names: &HashMap<String, String>,
    client_id: &str,
) -> &'a mut Application {
    by_client
        .entry(client_id.to_owned())
        .or_insert_with(|| Application {
            client_id: client_id.to_owned(),
            revoke_path: format!(
                "/account/applications/{}/revoke",
                crate::admin::urlencode(client_id)
            ),
            name: names
                .get(client_id)
                .cloned()
                .unwrap_or_else(|| client_id.to_owned()),
            ..Application::default()
        })
}

/// `GET /account/applications`.
pub(super) async fn list(
    account: Account,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AccountError> {
    let user_id = account.user.id.clone();
    let (consents, grant_list, names) = state
        .db
        .run(move |conn| -> Result<_, StorageError> {
            let consents = grants::list_consents_for_user(conn, &user_id)?;
            let grant_list = grants::list_grants_for_user(conn, &user_id)?;
            let names: HashMap<String, String> = clients::list(conn)?
                .into_iter()
                .map(|c| (c.id, c.name))
                .collect();
            Ok((consents, grant_list, names))
        })
        .await?;
    let mut by_client: BTreeMap<String, Application> = BTreeMap::new();
    for consent in consents {
        let app = entry(&mut by_client, &names, &consent.client_id);
        app.consent = consent
            .scope
            .iter()
            .map(|s| ScopeLine {
                name: s.as_str().to_owned(),
                description: scopes::describe(s.as_str()),
            })
            .collect();
        app.consent_updated = Some(format_time(consent.updated_at));
    }
    for grant in grant_list.iter().filter(|g| g.revoked_at.is_none()) {
        let app = entry(&mut by_client, &names, &grant.client_id);
        app.active_grants += 1;
        if grant.created_at >= app.last_issued_at {
            app.last_issued_at = grant.created_at;
            app.last_issued = Some(format_time(grant.created_at));
        }
    }
    let mut applications: Vec<Application> = by_client.into_values().collect();
    applications.sort_by(|a, b| {
        b.last_issued_at
            .cmp(&a.last_issued_at)
            .then_with(|| a.name.cmp(&b.name))
    });
    let context = ApplicationsPage {
        frame: account.frame("applications"),
        applications,
    };
    Ok(page(
        &state,
        StatusCode::OK,
        "account/applications.html",
        &context,
    ))
}

/// `POST /account/applications/{client_id}/revoke`: revokes this user's grants of the
/// application with their tokens and forgets the consent, so it must ask again. A client the
/// user never authorized (or another user's) changes nothing: 404.
pub(super) async fn revoke(
    AccountForm { account, .. }: AccountForm<ActionForm>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AccountError> {
    let client_id = path.into_inner();
    let (user_id, username) = (account.user.id.clone(), account.user.username.clone());
    let address = account.address.clone();
    let withdrawn = state
        .db
        .write(move |conn| -> Result<bool, WriteError> {
            let withdrawn = grants::withdraw_client(conn, &user_id, &client_id, unix_now())?;
            if !withdrawn.any() {
                return Ok(false);
            }
            audit::record(
                conn,
                &Event::new(Kind::ConsentRevoked, Outcome::Succeeded)
                    .with_user(&user_id, &username)
                    .with_client(&client_id)
                    .with_address(&address)
                    .with_detail(&format!("grants revoked: {}", withdrawn.grants)),
            )?;
            Ok(true)
        })
        .await?;
    if !withdrawn {
        return Err(AccountError::NotFound);
    }
    account
        .flash("Access revoked: the application's tokens no longer work, and it must ask again.");
    Ok(see_other("/account/applications"))
}
