//! The profile: given name, family name and e-mail address, under the same rules as the admin
//! user form. The username is shown, not editable; a new e-mail address is not verified.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{Account, AccountError, AccountForm, Frame, WriteError, account_forms, page};
use crate::identity::login::see_other;
use crate::state::AppState;
use crate::storage::audit::{self, Event, Kind, Outcome};
use crate::storage::users::{self, Profile};

/// Body of `POST /account/profile`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ProfileForm {
    #[serde(default, skip_serializing)]
    csrf_token: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    email: String,
}

account_forms!(ProfileForm);

#[derive(Serialize)]
struct ProfilePage<'a> {
    frame: Frame,
    username: &'a str,
    email_verified: bool,
    form: &'a ProfileForm,
    error: Option<String>,
}

fn profile_page(
    state: &AppState,
    account: &Account,
    form: &ProfileForm,
    error: Option<String>,
) -> HttpResponse {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let context = ProfilePage {
        frame: account.frame("profile"),
        username: &account.user.username,
        email_verified: account.user.email_verified,
        form,
        error,
    };
    page(state, status, "account/profile.html", &context)
}

/// `GET /account`: the profile form.
pub(super) async fn show(account: Account, state: web::Data<AppState>) -> HttpResponse {
    let form = ProfileForm {
        given_name: account.user.given_name.clone(),
        family_name: account.user.family_name.clone(),
        email: account.user.email.clone(),
        ..ProfileForm::default()
    };
    profile_page(&state, &account, &form, None)
}

/// Which fields of the stored profile `form` changes, for the audit log.
fn changed_fields(user: &users::User, form: &ProfileForm) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if user.given_name != form.given_name.trim() {
        changed.push("given name");
    }
    if user.family_name != form.family_name.trim() {
        changed.push("family name");
    }
    if user.email != form.email.trim() {
        changed.push("email");
    }
    changed
}

/// `POST /account/profile`: saves the names and e-mail address. The user's row is read again
/// in the write, so the admin flag and the verification state come from the stored row, never
/// from the form, and a changed address is no longer verified.
pub(super) async fn update(
    AccountForm { account, form }: AccountForm<ProfileForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AccountError> {
    let user_id = account.user.id.clone();
    let address = account.address.clone();
    let fields = (
        form.given_name.clone(),
        form.family_name.clone(),
        form.email.clone(),
    );
    let saved = state
        .db
        .write(move |conn| -> Result<bool, WriteError> {
            // Locked (on PostgreSQL) before it is read: the admin flag written back below
            // cannot undo an administrator's change made in between.
            crate::storage::grants::find_claims_user_for_update(conn, &user_id)?;
            let user = users::find(conn, &user_id)?.ok_or(WriteError::NotFound)?;
            let (given_name, family_name, email) = fields;
            let form = ProfileForm {
                given_name,
                family_name,
                email,
                ..ProfileForm::default()
            };
            let changed = changed_fields(&user, &form);
            let profile = Profile {
                email_verified: user.email_verified && !changed.contains(&"email"),
                email: form.email,
                given_name: form.given_name,
                family_name: form.family_name,
                is_admin: user.is_admin,
            };
            // Checked even when nothing changed, so a bad value is never answered with "saved".
            profile.validate()?;
            if changed.is_empty() {
                return Ok(false);
            }
            if !users::update_profile(conn, &user_id, &profile)? {
                return Err(WriteError::NotFound);
            }
            audit::record(
                conn,
                &Event::new(Kind::ProfileChanged, Outcome::Succeeded)
                    .with_user(&user.id, &user.username)
                    .with_address(&address)
                    .with_detail(&changed.join(", ")),
            )?;
            Ok(true)
        })
        .await;
    match saved {
        Ok(true) => {
            account.flash("Profile saved.");
            Ok(see_other("/account"))
        }
        Ok(false) => {
            account.flash("Nothing to change.");
            Ok(see_other("/account"))
        }
        Err(WriteError::Input(e)) => Ok(profile_page(&state, &account, &form, Some(e.to_string()))),
        Err(e) => Err(e.into()),
    }
}
