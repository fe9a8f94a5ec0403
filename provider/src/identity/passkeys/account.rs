//! `/account/passkeys`: the signed-in user's passkeys (list, register, rename, remove).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use oidc_core::unix_now;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    CredentialID, Passkey, PasskeyRegistration, RegisterPublicKeyCredential,
};

use super::ceremony::{self, Purpose};
use super::{PasskeyError, check_csrf, credential_key, parse_json, relying_party, user_handle};
use crate::account::{Account, Frame};
use crate::identity::login::{see_other, signed_in_user};
use crate::pages::{csrf, error_page, render};
use crate::state::AppState;
use crate::storage::audit::{self, Event, Kind, Outcome};
use crate::storage::passkeys::{self, Inserted, PasskeyRow};
use crate::storage::users::User;

const PAGE: &str = "/account/passkeys";

/// Mounts `/account/passkeys` and its endpoints.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PAGE, web::get().to(page))
        .route(
            "/account/passkeys/register/options",
            web::post().to(register_options),
        )
        .route(
            "/account/passkeys/register/finish",
            web::post().to(register_finish),
        )
        .route("/account/passkeys/rename", web::post().to(rename))
        .route("/account/passkeys/remove", web::post().to(remove));
}

#[derive(Serialize)]
struct PasskeyItem {
    id: String,
    name: String,
    created_at: String,
    last_used_at: Option<String>,
}

#[derive(Serialize)]
struct Page {
    frame: Frame,
    passkeys: Vec<PasskeyItem>,
    can_add: bool,
    message: Option<&'static str>,
}

fn format_time(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// The page's messages, chosen by a query value so that no text comes from the request.
fn message(query: Option<&str>) -> Option<&'static str> {
    match query? {
        "added" => Some("Your passkey was added."),
        "renamed" => Some("The passkey was renamed."),
        "removed" => Some("The passkey was removed."),
        _ => None,
    }
}

#[derive(Deserialize)]
struct PageQuery {
    done: Option<String>,
}

/// `GET /account/passkeys`, in the account pages' frame (signed-out visitors are sent to log
/// in first by the `Account` extractor).
async fn page(
    state: web::Data<AppState>,
    account: Account,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, PasskeyError> {
    let user_id = account.user.id.clone();
    let rows = state
        .db
        .run(move |conn| passkeys::list_for_user(conn, &user_id).map_err(PasskeyError::from))
        .await?;
    let can_add = i64::try_from(rows.len()).unwrap_or(i64::MAX) < passkeys::MAX_PER_USER;
    let page = Page {
        frame: account.frame("passkeys"),
        passkeys: rows
            .into_iter()
            .map(|row| PasskeyItem {
                id: row.id,
                name: row.name,
                created_at: format_time(row.created_at),
                last_used_at: row.last_used_at.map(format_time),
            })
            .collect(),
        can_add,
        message: message(query.done.as_deref()),
    };
    Ok(render(&state.templates, "account/passkeys.html", &page))
}

/// The signed-in user of a JSON request, else 401.
async fn require_user(state: &AppState, session: &Session) -> Result<User, PasskeyError> {
    signed_in_user(state, session)
        .await?
        .ok_or(PasskeyError::NotSignedIn)
}

fn stored_passkeys(rows: &[PasskeyRow]) -> Vec<Passkey> {
    rows.iter()
        .filter_map(|row| serde_json::from_str::<Passkey>(&row.passkey).ok())
        .collect()
}

/// `POST /account/passkeys/register/options`: the creation options for a new passkey, which
/// must be discoverable and verify the user, excluding the user's registered credentials.
async fn register_options(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PasskeyError> {
    check_csrf(&req, &session)?;
    let user = require_user(&state, &session).await?;
    let rp = relying_party(&state.settings)?;
    let user_id = user.id.clone();
    let rows = state
        .db
        .run(move |conn| passkeys::list_for_user(conn, &user_id).map_err(PasskeyError::from))
        .await?;
    if i64::try_from(rows.len()).unwrap_or(i64::MAX) >= passkeys::MAX_PER_USER {
        return Err(PasskeyError::Conflict(
            "You have as many passkeys as allowed; remove one first.",
        ));
    }
    let exclude: Vec<CredentialID> = stored_passkeys(&rows)
        .iter()
        .map(|p| p.cred_id().clone())
        .collect();
    let display_name = format!("{} {}", user.given_name, user.family_name);
    let display_name = match display_name.trim() {
        "" => user.username.as_str(),
        name => name,
    };
    let (mut options, registration) = rp
        .start_passkey_registration(
            user_handle(&user.id),
            &user.username,
            display_name,
            Some(exclude),
        )
        .map_err(|e| PasskeyError::Unexpected(anyhow::anyhow!("registration options: {e}")))?;
    // Signing in without a username needs the credential to be discoverable.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Required);
        selection.require_resident_key = true;
    }
    ceremony::begin(
        &session,
        Purpose::Register {
            user_id: user.id.clone(),
        },
        &registration,
        unix_now(),
    )?;
    Ok(HttpResponse::Ok().json(options))
}

/// Body of `POST /account/passkeys/register/finish`.
#[derive(Deserialize)]
struct RegisterFinish {
    #[serde(default)]
    name: String,
    credential: RegisterPublicKeyCredential,
}

/// `POST /account/passkeys/register/finish`: verifies the authenticator's answer and stores
/// the passkey, with its audit event in the same write.
async fn register_finish(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: web::Bytes,
) -> Result<HttpResponse, PasskeyError> {
    check_csrf(&req, &session)?;
    let user = require_user(&state, &session).await?;
    let finish: RegisterFinish = parse_json(&body)?;
    let rp = relying_party(&state.settings)?;
    let now = unix_now();
    let (registration, _issued_at): (PasskeyRegistration, i64) = ceremony::take(
        &session,
        &Purpose::Register {
            user_id: user.id.clone(),
        },
        now,
    )?;
    let passkey = rp
        .finish_passkey_registration(&finish.credential, &registration)
        .map_err(|error| {
            tracing::info!(error = %error, "a passkey registration was refused");
            PasskeyError::Refused
        })?;
    let name = passkeys::clean_name(&finish.name).unwrap_or_else(|| "Passkey".to_owned());
    let row = PasskeyRow {
        id: credential_key(passkey.cred_id().as_ref()),
        user_id: user.id.clone(),
        name,
        passkey: serde_json::to_string(&passkey).map_err(anyhow::Error::from)?,
        created_at: now,
        last_used_at: None,
    };
    let address = crate::identity::login::client_address(&req, state.settings.trust_forwarded_for);
    let event = Event::new(Kind::FactorEnrolled, Outcome::Succeeded)
        .with_user(&user.id, &user.username)
        .with_address(&address)
        .with_detail("passkey");
    let inserted = state
        .db
        .write(move |conn| -> Result<Inserted, PasskeyError> {
            let inserted = passkeys::insert(conn, &row)?;
            if inserted == Inserted::Stored {
                audit::record(conn, &event)?;
            }
            Ok(inserted)
        })
        .await;
    match inserted {
        Ok(Inserted::Stored) => Ok(HttpResponse::Ok().json(serde_json::json!({
            "redirect": format!("{PAGE}?done=added"),
        }))),
        Ok(Inserted::TooMany) => Err(PasskeyError::Conflict(
            "You have as many passkeys as allowed; remove one first.",
        )),
        Ok(Inserted::Exists) => Err(PasskeyError::Conflict(
            "This passkey is registered already.",
        )),
        Err(PasskeyError::Unexpected(error))
            if error
                .downcast_ref::<diesel::result::Error>()
                .is_some_and(crate::storage::is_unique_violation) =>
        {
            Err(PasskeyError::Conflict(
                "This passkey is registered already.",
            ))
        }
        Err(error) => Err(error),
    }
}

/// Form of the rename and remove buttons.
#[derive(Deserialize)]
struct PasskeyForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

fn form_expired() -> HttpResponse {
    error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form has expired or was not sent from this site. Go back, reload the page and try again.",
    )
}

fn no_such_passkey() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such passkey on your account.",
    )
}

/// `POST /account/passkeys/rename`: renames one of the user's passkeys.
async fn rename(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<PasskeyForm>,
) -> Result<HttpResponse, PasskeyError> {
    let form = form.into_inner();
    if !csrf::verify(&session, &form.csrf_token) {
        return Ok(form_expired());
    }
    let Some(user) = signed_in_user(&state, &session).await? else {
        return Ok(see_other("/login?next=%2Faccount%2Fpasskeys"));
    };
    let Some(name) = passkeys::clean_name(&form.name) else {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "Name missing",
            "Give the passkey a name. Go back and try again.",
        ));
    };
    let renamed = state
        .db
        .write(move |conn| {
            passkeys::rename(conn, &user.id, &form.id, &name).map_err(PasskeyError::from)
        })
        .await?;
    Ok(if renamed {
        see_other(&format!("{PAGE}?done=renamed"))
    } else {
        no_such_passkey()
    })
}

/// `POST /account/passkeys/remove`: removes one of the user's passkeys, with its audit event
/// in the same write.
async fn remove(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<PasskeyForm>,
) -> Result<HttpResponse, PasskeyError> {
    let form = form.into_inner();
    if !csrf::verify(&session, &form.csrf_token) {
        return Ok(form_expired());
    }
    let Some(user) = signed_in_user(&state, &session).await? else {
        return Ok(see_other("/login?next=%2Faccount%2Fpasskeys"));
    };
    let address = crate::identity::login::client_address(&req, state.settings.trust_forwarded_for);
    let removed = state
        .db
        .write(move |conn| -> Result<bool, PasskeyError> {
            let Some(row) = passkeys::remove(conn, &user.id, &form.id)? else {
                return Ok(false);
            };
            let event = Event::new(Kind::FactorRemoved, Outcome::Succeeded)
                .with_user(&user.id, &user.username)
                .with_address(&address)
                .with_detail(&format!("passkey {}", row.name));
            audit::record(conn, &event)?;
            Ok(true)
        })
        .await?;
    Ok(if removed {
        see_other(&format!("{PAGE}?done=removed"))
    } else {
        no_such_passkey()
    })
}
