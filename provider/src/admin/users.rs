//! Users in the admin site: list, create, edit, set a password, (de)activate, and see and
//! revoke what the user granted to applications.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{
    ActionForm, Admin, AdminError, AdminForm, AdminRoutes, Frame, admin_event, admin_forms,
    form_page, format_time, page, urlencode,
};
use crate::identity::login::see_other;
use crate::state::AppState;
use crate::storage::audit::{self, Kind};
use crate::storage::users::{self, CreateUserError, Profile, User, Username, validate_password};
use crate::storage::{StorageError, clients, grants, sessions};

pub(super) fn routes(routes: AdminRoutes) -> AdminRoutes {
    routes
        .get("/users", list)
        .post("/users", create)
        .get("/users/new", new_form)
        .get("/users/{id}", detail)
        .post("/users/{id}", update)
        .post("/users/{id}/password", set_password)
        .post("/users/{id}/active", set_active)
        .get("/users/{id}/delete", delete_form)
        .post("/users/{id}/delete", delete)
        .post("/users/{id}/grants/{grant_id}/revoke", revoke_grant)
        .post("/users/{id}/consents/{client_id}/delete", delete_consent)
}

#[derive(Serialize)]
struct Row {
    id: String,
    username: String,
    name: String,
    email: String,
    is_admin: bool,
    is_active: bool,
    last_login: Option<String>,
}

#[derive(Serialize)]
struct ListPage {
    frame: Frame,
    users: Vec<Row>,
}

async fn list(admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let users = state
        .db
        .run(users::list)
        .await?
        .into_iter()
        .map(|u| Row {
            name: format!("{} {}", u.given_name, u.family_name)
                .trim()
                .to_owned(),
            last_login: u.last_login_at.map(format_time),
            id: u.id,
            username: u.username,
            email: u.email,
            is_admin: u.is_admin,
            is_active: u.is_active,
        })
        .collect();
    let context = ListPage {
        frame: admin.frame("users"),
        users,
    };
    Ok(page(&state, "admin/users.html", &context))
}

/// Fields of the new-user and edit-user forms.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct UserForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    username: String,
    #[serde(default, skip_serializing)]
    password: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    email_verified: Option<String>,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    is_admin: Option<String>,
}

admin_forms!(UserForm, PasswordForm, ActiveForm);

impl UserForm {
    fn profile(&self) -> Profile {
        Profile {
            email: self.email.clone(),
            email_verified: self.email_verified.is_some(),
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            is_admin: self.is_admin.is_some(),
        }
    }
}

#[derive(Serialize)]
struct NewPage<'a> {
    frame: Frame,
    form: &'a UserForm,
    error: Option<String>,
}

fn new_page(
    state: &AppState,
    admin: &Admin,
    form: &UserForm,
    error: Option<String>,
) -> HttpResponse {
    let context = NewPage {
        frame: admin.frame("users"),
        form,
        error: error.clone(),
    };
    form_page(state, "admin/user_new.html", &context, &error)
}

async fn new_form(admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    Ok(new_page(&state, &admin, &UserForm::default(), None))
}

async fn create(
    AdminForm { admin, form }: AdminForm<UserForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let checked = Username::parse(&form.username).and_then(|username| {
        validate_password(&form.password)?;
        form.profile().validate()?;
        Ok(username)
    });
    let username = match checked {
        Ok(username) => username,
        Err(e) => {
            return Ok(new_page(&state, &admin, &form, Some(e.to_string())));
        }
    };
    let hash = state
        .hasher
        .hash(form.password.clone())
        .await
        .map_err(|e| AdminError::Unexpected(e.into()))?;
    let profile = form.profile();
    let actor = admin.username.clone();
    let created = state
        .db
        .write(move |conn| {
            let user = users::create(conn, &username, &hash, &profile)?;
            let event = admin_event(Kind::UserCreated, &actor).with_user(&user.id, &user.username);
            audit::record(conn, &event)?;
            Ok(user)
        })
        .await;
    match created {
        Ok(user) => {
            tracing::info!(user = %user.username, admin = %admin.username, "user created");
            admin.flash(&format!("Created user “{}”.", user.username));
            Ok(see_other(&format!("/admin/users/{}", urlencode(&user.id))))
        }
        Err(CreateUserError::Input(e)) => Ok(new_page(&state, &admin, &form, Some(e.to_string()))),
        Err(CreateUserError::Storage(e)) => Err(e.into()),
    }
}

#[derive(Serialize)]
struct GrantRow {
    id: String,
    client_id: String,
    client_name: String,
    scope: String,
    created: String,
    revoked: Option<String>,
}

#[derive(Serialize)]
struct ConsentRow {
    client_id: String,
    client_name: String,
    scope: String,
    updated: String,
}

#[derive(Serialize)]
struct DetailPage<'a> {
    frame: Frame,
    id: &'a str,
    form: UserForm,
    is_active: bool,
    is_self: bool,
    created: String,
    last_login: Option<String>,
    grants: Vec<GrantRow>,
    consents: Vec<ConsentRow>,
    sessions: Vec<SessionLine>,
    factors: super::user_security::FactorsView,
    error: Option<String>,
}

#[derive(Serialize)]
struct SessionLine {
    id: String,
    user_agent: String,
    address: String,
    created: String,
    last_seen: String,
}

pub(super) async fn find_user(state: &AppState, id: String) -> Result<User, AdminError> {
    state
        .db
        .run(move |conn| users::find(conn, &id))
        .await?
        .ok_or(AdminError::NotFound)
}

async fn detail_page(
    state: &AppState,
    admin: &Admin,
    user: User,
    form: Option<UserForm>,
    error: Option<String>,
) -> Result<HttpResponse, AdminError> {
    let user_id = user.id.clone();
    let (grant_list, consent_list, names, session_list, factors) = state
        .db
        .run(move |conn| -> Result<_, StorageError> {
            let factors = crate::storage::factors::summary(conn, &user_id)?;
            let session_list = sessions::for_user(conn, &user_id)?;
            let grant_list = grants::list_grants_for_user(conn, &user_id)?;
            let consent_list = grants::list_consents_for_user(conn, &user_id)?;
            let names: std::collections::HashMap<String, String> = clients::list(conn)?
                .into_iter()
                .map(|c| (c.id, c.name))
                .collect();
            Ok((grant_list, consent_list, names, session_list, factors))
        })
        .await?;
    let name_of = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
    let context = DetailPage {
        frame: admin.frame("users"),
        id: &user.id,
        form: form.unwrap_or_else(|| UserForm {
            username: user.username.clone(),
            email: user.email.clone(),
            email_verified: user.email_verified.then(|| "on".to_owned()),
            given_name: user.given_name.clone(),
            family_name: user.family_name.clone(),
            is_admin: user.is_admin.then(|| "on".to_owned()),
            ..UserForm::default()
        }),
        is_active: user.is_active,
        is_self: user.id == admin.id,
        created: format_time(user.created_at),
        last_login: user.last_login_at.map(format_time),
        grants: grant_list
            .into_iter()
            .map(|g| GrantRow {
                client_name: name_of(&g.client_id),
                created: format_time(g.created_at),
                revoked: g.revoked_at.map(format_time),
                id: g.id,
                client_id: g.client_id,
                scope: g.scope.to_string(),
            })
            .collect(),
        consents: consent_list
            .into_iter()
            .map(|c| ConsentRow {
                client_name: name_of(&c.client_id),
                updated: format_time(c.updated_at),
                client_id: c.client_id,
                scope: c.scope.to_string(),
            })
            .collect(),
        sessions: session_list
            .into_iter()
            .map(|s| SessionLine {
                id: s.public_id,
                user_agent: s.user_agent,
                address: s.client_addr,
                created: format_time(s.created_at),
                last_seen: format_time(s.last_seen_at),
            })
            .collect(),
        factors: factors.into(),
        error: error.clone(),
    };
    Ok(form_page(state, "admin/user.html", &context, &error))
}

async fn detail(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let user = find_user(&state, path.into_inner()).await?;
    detail_page(&state, &admin, user, None, None).await
}

async fn update(
    AdminForm { admin, form }: AdminForm<UserForm>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let user = find_user(&state, path.into_inner()).await?;
    let mut form = form;
    form.username.clone_from(&user.username);
    let profile = form.profile();
    if user.id == admin.id && !profile.is_admin {
        let error = Some("You cannot remove your own administrator rights.".to_owned());
        return detail_page(&state, &admin, user, Some(form), error).await;
    }
    let event = admin_event(Kind::UserUpdated, &admin.username)
        .with_user(&user.id, &user.username)
        .with_detail("profile");
    let id = user.id.clone();
    let updated = state
        .db
        .write(move |conn| {
            let found = users::update_profile(conn, &id, &profile)?;
            if found {
                audit::record(conn, &event)?;
            }
            Ok(found)
        })
        .await;
    match updated {
        Ok(true) => {
            admin.flash("Saved.");
            Ok(see_other(&format!("/admin/users/{}", urlencode(&user.id))))
        }
        Ok(false) => Err(AdminError::NotFound),
        Err(CreateUserError::Input(e)) => {
            detail_page(&state, &admin, user, Some(form), Some(e.to_string())).await
        }
        Err(CreateUserError::Storage(e)) => Err(e.into()),
    }
}

/// Body of the set-password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    password: String,
}

async fn set_password(
    AdminForm { admin, form }: AdminForm<PasswordForm>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let user = find_user(&state, path.into_inner()).await?;
    if let Err(e) = validate_password(&form.password) {
        return detail_page(&state, &admin, user, None, Some(e.to_string())).await;
    }
    let hash = state
        .hasher
        .hash(form.password)
        .await
        .map_err(|e| AdminError::Unexpected(e.into()))?;
    let event =
        admin_event(Kind::PasswordReset, &admin.username).with_user(&user.id, &user.username);
    let id = user.id.clone();
    state
        .db
        .write(move |conn| -> Result<_, StorageError> {
            if users::reset_password(conn, &id, &hash)? {
                audit::record(conn, &event)?;
            }
            Ok(())
        })
        .await?;
    tracing::info!(user = %user.username, admin = %admin.username, "password set");
    admin.flash("Password changed.");
    Ok(see_other(&format!("/admin/users/{}", urlencode(&user.id))))
}

/// Body of the activate/deactivate form.
#[derive(Deserialize)]
pub struct ActiveForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    active: String,
}

async fn set_active(
    AdminForm { admin, form }: AdminForm<ActiveForm>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let user = find_user(&state, path.into_inner()).await?;
    let active = match form.active.as_str() {
        "true" => true,
        "false" => false,
        _ => return Err(AdminError::BadRequest("Unknown action.".to_owned())),
    };
    if user.id == admin.id && !active {
        return Err(AdminError::BadRequest(
            "You cannot deactivate your own account.".to_owned(),
        ));
    }
    let event = admin_event(Kind::UserUpdated, &admin.username)
        .with_user(&user.id, &user.username)
        .with_detail(if active { "activated" } else { "deactivated" });
    let id = user.id.clone();
    // Deactivation ends every session, grant and token at once; activation restores none.
    state
        .db
        .write(move |conn| -> Result<_, StorageError> {
            let found = if active {
                users::set_active(conn, &id, true)?
            } else {
                users::deactivate(conn, &id)?
            };
            if found {
                audit::record(conn, &event)?;
            }
            Ok(())
        })
        .await?;
    tracing::info!(user = %user.username, admin = %admin.username, active, "user activation changed");
    admin.flash(if active {
        "Account activated."
    } else {
        "Account deactivated: the user can no longer sign in, and every session and token ended."
    });
    Ok(see_other(&format!("/admin/users/{}", urlencode(&user.id))))
}

async fn revoke_grant(
    AdminForm { admin, .. }: AdminForm<ActionForm>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (user_id, grant_id) = path.into_inner();
    let owner = user_id.clone();
    let revoked = state
        .db
        .run(move |conn| -> Result<Option<bool>, StorageError> {
            match grants::find_grant(conn, &grant_id)? {
                Some(grant) if grant.user_id == owner => {
                    Ok(Some(grants::revoke_grant(conn, &grant_id)?))
                }
                _ => Ok(None),
            }
        })
        .await?;
    if revoked.is_none() {
        return Err(AdminError::NotFound);
    }
    tracing::info!(user_id = %user_id, admin = %admin.username, "grant revoked");
    admin.flash("Access revoked: the application's tokens no longer work.");
    Ok(see_other(&format!("/admin/users/{}", urlencode(&user_id))))
}

async fn delete_consent(
    AdminForm { admin, .. }: AdminForm<ActionForm>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (user_id, client_id) = path.into_inner();
    let key = (user_id.clone(), client_id);
    let deleted = state
        .db
        .run(move |conn| -> Result<bool, StorageError> {
            Ok(grants::delete_consent(conn, &key.0, &key.1)?)
        })
        .await?;
    if !deleted {
        return Err(AdminError::NotFound);
    }
    tracing::info!(user_id = %user_id, admin = %admin.username, "consent withdrawn");
    admin.flash("Consent withdrawn: the application must ask again.");
    Ok(see_other(&format!("/admin/users/{}", urlencode(&user_id))))
}

#[derive(Serialize)]
struct DeletePage<'a> {
    frame: Frame,
    id: &'a str,
    username: &'a str,
}

/// `GET /admin/users/{id}/delete`: asks for confirmation.
async fn delete_form(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let user = find_user(&state, path.into_inner()).await?;
    if user.id == admin.id {
        return Err(AdminError::BadRequest(
            "You cannot delete your own account.".to_owned(),
        ));
    }
    let context = DeletePage {
        frame: admin.frame("users"),
        id: &user.id,
        username: &user.username,
    };
    Ok(crate::pages::render(
        &state.templates,
        "admin/user_delete.html",
        &context,
    ))
}

/// `POST /admin/users/{id}/delete`: deletes the user with everything they held.
async fn delete(
    AdminForm { admin, .. }: AdminForm<ActionForm>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let user = find_user(&state, path.into_inner()).await?;
    if user.id == admin.id {
        return Err(AdminError::BadRequest(
            "You cannot delete your own account.".to_owned(),
        ));
    }
    let event = admin_event(Kind::UserDeleted, &admin.username).with_user(&user.id, &user.username);
    let id = user.id.clone();
    let deleted = state
        .db
        .write(move |conn| -> Result<_, StorageError> {
            let deleted = users::delete(conn, &id)?;
            if deleted {
                audit::record(conn, &event)?;
            }
            Ok(deleted)
        })
        .await?;
    if !deleted {
        return Err(AdminError::NotFound);
    }
    tracing::info!(user = %user.username, admin = %admin.username, "user deleted");
    admin.flash("User deleted.");
    Ok(see_other("/admin/users"))
}
