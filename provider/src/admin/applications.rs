//! Applications (OAuth clients) in the admin site: list, register, edit, delete, and a new
//! secret on demand. A secret is shown once, on the page right after it was made, never again.

use actix_web::{HttpResponse, web};
use oidc_core::jose::Algorithm;
use oidc_core::types::ClientSecret;
use serde::{Deserialize, Serialize};

use super::{
    ActionForm, Admin, AdminError, AdminForm, AdminRoutes, Frame, admin_event, admin_forms,
    form_page, format_time, page, urlencode,
};
use crate::identity::login::see_other;
use crate::state::AppState;
use crate::storage::StorageError;
use crate::storage::audit::{self, Kind};
use crate::storage::clients::{self, Client, ClientError, ClientInput, ClientType, GrantType};

pub(super) fn routes(routes: AdminRoutes) -> AdminRoutes {
    routes
        .get("/applications", list)
        .post("/applications", create)
        .get("/applications/new", new_form)
        .get("/applications/{id}", edit_form)
        .post("/applications/{id}", update)
        .get("/applications/{id}/credentials", credentials)
        .post("/applications/{id}/secret", regenerate_secret)
        .post("/applications/{id}/delete", delete)
}

#[derive(Serialize)]
struct Row {
    id: String,
    name: String,
    client_type: &'static str,
    redirect_uris: Vec<String>,
    created: String,
}

#[derive(Serialize)]
struct ListPage {
    frame: Frame,
    applications: Vec<Row>,
}

async fn list(admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let applications = state
        .db
        .run(clients::list)
        .await?
        .into_iter()
        .map(|c| Row {
            client_type: c.client_type.as_str(),
            created: format_time(c.created_at),
            id: c.id,
            name: c.name,
            redirect_uris: c.redirect_uris,
        })
        .collect();
    let context = ListPage {
        frame: admin.frame("applications"),
        applications,
    };
    Ok(page(&state, "admin/applications.html", &context))
}

/// The fields of the application form, as typed.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ApplicationForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    client_type: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    post_logout_redirect_uris: String,
    #[serde(default)]
    refresh_tokens: Option<String>,
    #[serde(default)]
    skip_authorization: Option<String>,
    #[serde(default)]
    algorithm: String,
    #[serde(default)]
    can_introspect: Option<String>,
    #[serde(default)]
    backchannel_logout_uri: String,
    #[serde(default)]
    backchannel_logout_session_required: Option<String>,
    #[serde(default)]
    requires_mfa: Option<String>,
}

admin_forms!(ApplicationForm);

impl ApplicationForm {
    fn from_client(client: &Client) -> Self {
        Self {
            csrf_token: String::new(),
            client_id: client.id.clone(),
            name: client.name.clone(),
            client_type: client.client_type.as_str().to_owned(),
            redirect_uris: client.redirect_uris.join("\n"),
            post_logout_redirect_uris: client.post_logout_redirect_uris.join("\n"),
            refresh_tokens: client
                .allows_grant(GrantType::RefreshToken)
                .then(|| "on".to_owned()),
            skip_authorization: client.skip_authorization.then(|| "on".to_owned()),
            algorithm: client.id_token_signed_response_alg.as_str().to_owned(),
            can_introspect: client.can_introspect.then(|| "on".to_owned()),
            backchannel_logout_uri: client.backchannel_logout_uri.clone().unwrap_or_default(),
            backchannel_logout_session_required: client
                .backchannel_logout_session_required
                .then(|| "on".to_owned()),
            requires_mfa: client.requires_mfa.then(|| "on".to_owned()),
        }
    }

    fn to_input(&self, with_id: bool) -> Result<ClientInput, clients::ClientInputError> {
        let mut grant_types = vec![GrantType::AuthorizationCode];
        if self.refresh_tokens.is_some() {
            grant_types.push(GrantType::RefreshToken);
        }
        let id = self.client_id.trim();
        Ok(ClientInput {
            id: (with_id && !id.is_empty()).then(|| id.to_owned()),
            name: self.name.clone(),
            client_type: ClientType::parse(self.client_type.trim())?,
            redirect_uris: self
                .redirect_uris
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            post_logout_redirect_uris: self
                .post_logout_redirect_uris
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            grant_types,
            skip_authorization: self.skip_authorization.is_some(),
            id_token_signed_response_alg: Algorithm::parse(self.algorithm.trim())
                .map_err(|_| clients::ClientInputError::Algorithm(self.algorithm.clone()))?,
            can_introspect: self.can_introspect.is_some(),
            backchannel_logout_uri: Some(self.backchannel_logout_uri.trim())
                .filter(|u| !u.is_empty())
                .map(str::to_owned),
            backchannel_logout_session_required: self.backchannel_logout_session_required.is_some(),
            requires_mfa: self.requires_mfa.is_some(),
        })
    }
}

#[derive(Serialize)]
struct FormPage<'a> {
    frame: Frame,
    /// `None` when registering a new application.
    id: Option<&'a str>,
    form: &'a ApplicationForm,
    error: Option<String>,
}

fn application_page(
    state: &AppState,
    admin: &Admin,
    id: Option<&str>,
    form: &ApplicationForm,
    error: Option<String>,
) -> HttpResponse {
    let context = FormPage {
        frame: admin.frame("applications"),
        id,
        form,
        error: error.clone(),
    };
    form_page(state, "admin/application_form.html", &context, &error)
}

async fn new_form(admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let form = ApplicationForm {
        client_type: "confidential".to_owned(),
        refresh_tokens: Some("on".to_owned()),
        algorithm: "RS256".to_owned(),
        ..ApplicationForm::default()
    };
    Ok(application_page(&state, &admin, None, &form, None))
}

#[derive(Serialize)]
struct SecretPage {
    frame: Frame,
    client_id: String,
    name: String,
    confidential: bool,
    client_secret: Option<String>,
    created: bool,
}

/// A secret waiting to be shown once, kept in the (encrypted) session between the form post
/// and the page that shows it, so reloading that page neither repeats the post nor shows the
/// secret again.
#[derive(Serialize, Deserialize)]
struct PendingSecret {
    client_id: String,
    secret: String,
    created: bool,
}

const PENDING_SECRET_KEY: &str = "admin_pending_secret";

fn show_secret_once(
    admin: &Admin,
    client: &Client,
    secret: Option<ClientSecret>,
    created: bool,
) -> Result<HttpResponse, AdminError> {
    if let Some(secret) = secret {
        let pending = PendingSecret {
            client_id: client.id.clone(),
            secret: secret.secret().to_owned(),
            created,
        };
        admin
            .session()
            .insert(PENDING_SECRET_KEY, pending)
            .map_err(|e| AdminError::Unexpected(e.into()))?;
    } else if created {
        admin.flash(&format!("Registered “{}”.", client.name));
    }
    Ok(see_other(&format!(
        "/admin/applications/{}/credentials",
        urlencode(&client.id)
    )))
}

async fn credentials(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let client = find_client(&state, path.into_inner()).await?;
    let pending = admin
        .session()
        .remove_as::<PendingSecret>(PENDING_SECRET_KEY)
        .and_then(Result::ok)
        .filter(|p| p.client_id == client.id);
    let context = SecretPage {
        frame: admin.frame("applications"),
        client_id: client.id.clone(),
        name: client.name.clone(),
        confidential: client.is_confidential(),
        created: pending.as_ref().is_some_and(|p| p.created),
        client_secret: pending.map(|p| p.secret),
    };
    Ok(page(&state, "admin/application_secret.html", &context))
}

fn input_error(error: ClientError) -> Result<String, AdminError> {
    match error {
        ClientError::Input(e) => Ok(e.to_string()),
        ClientError::Storage(e) => Err(e.into()),
    }
}

async fn create(
    AdminForm { admin, form }: AdminForm<ApplicationForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let input = match form.to_input(true) {
        Ok(input) => input,
        Err(e) => {
            return Ok(application_page(
                &state,
                &admin,
                None,
                &form,
                Some(e.to_string()),
            ));
        }
    };
    let allow = state.settings.allow_http_redirect_hosts.clone();
    let actor = admin.username.clone();
    let created = state
        .db
        .write(move |conn| {
            let created = clients::create(conn, &input, &allow)?;
            let event = admin_event(Kind::ClientCreated, &actor).with_client(&created.0.id);
            audit::record(conn, &event)?;
            Ok(created)
        })
        .await;
    match created {
        Ok((client, secret)) => {
            tracing::info!(client_id = %client.id, admin = %admin.username, "application registered");
            show_secret_once(&admin, &client, secret, true)
        }
        Err(e) => {
            let message = input_error(e)?;
            Ok(application_page(&state, &admin, None, &form, Some(message)))
        }
    }
}

async fn find_client(state: &AppState, id: String) -> Result<Client, AdminError> {
    state
        .db
        .run(move |conn| clients::find(conn, &id))
        .await?
        .ok_or(AdminError::NotFound)
}

async fn edit_form(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let client = find_client(&state, path.into_inner()).await?;
    let form = ApplicationForm::from_client(&client);
    Ok(application_page(
        &state,
        &admin,
        Some(&client.id),
        &form,
        None,
    ))
}

async fn update(
    AdminForm { admin, form }: AdminForm<ApplicationForm>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let id = path.into_inner();
    let mut form = form;
    form.client_id.clone_from(&id);
    let input = match form.to_input(false) {
        Ok(input) => input,
        Err(e) => {
            return Ok(application_page(
                &state,
                &admin,
                Some(&id),
                &form,
                Some(e.to_string()),
            ));
        }
    };
    let allow = state.settings.allow_http_redirect_hosts.clone();
    let key = id.clone();
    let event = admin_event(Kind::ClientUpdated, &admin.username).with_client(&id);
    let updated = state
        .db
        .write(move |conn| {
            let updated = clients::update(conn, &key, &input, &allow)?;
            if let Some((_, secret)) = &updated {
                let detail = if secret.is_some() { "new secret" } else { "" };
                audit::record(conn, &event.with_detail(detail))?;
            }
            Ok(updated)
        })
        .await;
    match updated {
        Ok(None) => Err(AdminError::NotFound),
        Ok(Some((client, Some(secret)))) => show_secret_once(&admin, &client, Some(secret), false),
        Ok(Some((client, None))) => {
            admin.flash(&format!("Saved “{}”.", client.name));
            Ok(see_other(&format!(
                "/admin/applications/{}",
                urlencode(&client.id)
            )))
        }
        Err(e) => {
            let message = input_error(e)?;
            Ok(application_page(
                &state,
                &admin,
                Some(&id),
                &form,
                Some(message),
            ))
        }
    }
}

async fn regenerate_secret(
    AdminForm { admin, .. }: AdminForm<ActionForm>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let client = find_client(&state, path.into_inner()).await?;
    if !client.is_confidential() {
        return Err(AdminError::BadRequest(
            "A public application has no secret.".to_owned(),
        ));
    }
    let event = admin_event(Kind::ClientSecretRotated, &admin.username).with_client(&client.id);
    let id = client.id.clone();
    let secret = state
        .db
        .write(move |conn| -> Result<_, StorageError> {
            let secret = clients::regenerate_secret(conn, &id)?;
            if secret.is_some() {
                audit::record(conn, &event)?;
            }
            Ok(secret)
        })
        .await?
        .ok_or(AdminError::NotFound)?;
    tracing::info!(client_id = %client.id, admin = %admin.username, "client secret regenerated");
    show_secret_once(&admin, &client, Some(secret), false)
}

async fn delete(
    AdminForm { admin, .. }: AdminForm<ActionForm>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let client = find_client(&state, path.into_inner()).await?;
    let event = admin_event(Kind::ClientDeleted, &admin.username).with_client(&client.id);
    let id = client.id.clone();
    let deleted = state
        .db
        .write(move |conn| -> Result<bool, StorageError> {
            let deleted = clients::delete(conn, &id)?;
            if deleted {
                audit::record(conn, &event)?;
            }
            Ok(deleted)
        })
        .await?;
    if !deleted {
        return Err(AdminError::NotFound);
    }
    tracing::info!(client_id = %client.id, admin = %admin.username, "application deleted");
    admin.flash(&format!("Deleted “{}”.", client.name));
    Ok(see_other("/admin/applications"))
}
