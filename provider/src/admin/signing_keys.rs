//! The admin page of the signing keys: list, rotate (per algorithm), retire.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use oidc_core::jose::Algorithm;
use serde::{Deserialize, Serialize};

use super::{AdminError, Frame, flash, format_time, page, require_admin, require_admin_form};
use crate::identity::login::see_other;
use crate::state::AppState;
use crate::storage::signing_keys::{KeyStatus, RetireOutcome};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/keys", web::get().to(list))
        .route("/keys/rotate", web::post().to(rotate))
        .route("/keys/{kid}/retire", web::post().to(retire));
}

#[derive(Serialize)]
struct Row {
    kid: String,
    alg: Algorithm,
    status: KeyStatus,
    created: String,
    rotated: Option<String>,
    retired: Option<String>,
}

#[derive(Serialize)]
struct ListPage {
    frame: Frame,
    keys: Vec<Row>,
}

async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin(&req, &state, &session).await?;
    let keys = state
        .keys
        .list()
        .await?
        .into_iter()
        .map(|k| Row {
            created: format_time(k.created_at),
            rotated: k.rotated_at.map(format_time),
            retired: k.retired_at.map(format_time),
            kid: k.kid,
            alg: k.alg,
            status: k.status,
        })
        .collect();
    let context = ListPage {
        frame: Frame::new(&session, &admin, "keys"),
        keys,
    };
    Ok(page(&state, "admin/keys.html", &context))
}

/// Body of the rotate form.
#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    algorithm: String,
}

async fn rotate(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<RotateForm>,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin_form(&req, &state, &session, &form.csrf_token).await?;
    let alg = Algorithm::parse(&form.algorithm)
        .map_err(|_| AdminError::BadRequest("Unknown algorithm.".to_owned()))?;
    let kid = state.keys.rotate(alg).await?;
    tracing::info!(%kid, %alg, admin = %admin.username, "signing key rotated");
    flash(
        &session,
        &format!("New {alg} key {kid} is active; the previous one stays published until retired."),
    );
    Ok(see_other("/admin/keys"))
}

/// Body of the retire form.
#[derive(Deserialize)]
pub struct RetireForm {
    #[serde(default)]
    csrf_token: String,
}

async fn retire(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<String>,
    form: web::Form<RetireForm>,
) -> Result<HttpResponse, AdminError> {
    let admin = require_admin_form(&req, &state, &session, &form.csrf_token).await?;
    let kid = path.into_inner();
    match state.keys.retire(&kid).await? {
        RetireOutcome::Retired => {
            tracing::info!(%kid, admin = %admin.username, "signing key retired");
            flash(
                &session,
                &format!("Key {kid} retired: it is no longer published."),
            );
            Ok(see_other("/admin/keys"))
        }
        RetireOutcome::NotFound => Err(AdminError::NotFound),
        RetireOutcome::Active => Err(AdminError::BadRequest(
            "The active key cannot be retired: rotate first.".to_owned(),
        )),
        RetireOutcome::AlreadyRetired => Err(AdminError::BadRequest(
            "This key is already retired.".to_owned(),
        )),
    }
}
