//! The admin page of the signing keys: list, rotate (per algorithm), retire.

use actix_web::{HttpResponse, web};
use oidc_core::jose::Algorithm;
use serde::{Deserialize, Serialize};

use super::{
    ActionForm, Admin, AdminError, AdminForm, AdminRoutes, Frame, admin_forms, format_time, page,
};
use crate::identity::login::see_other;
use crate::state::AppState;
use crate::storage::signing_keys::{KeyStatus, RetireOutcome};

pub(super) fn routes(routes: AdminRoutes) -> AdminRoutes {
    routes
        .get("/keys", list)
        .post("/keys/rotate", rotate)
        .post("/keys/{kid}/retire", retire)
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

async fn list(admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
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
        frame: admin.frame("keys"),
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

admin_forms!(RotateForm);

async fn rotate(
    AdminForm { admin, form }: AdminForm<RotateForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let alg = Algorithm::parse(&form.algorithm)
        .map_err(|_| AdminError::BadRequest("Unknown algorithm.".to_owned()))?;
    let kid = state.keys.rotate_as(alg, &admin.username).await?;
    tracing::info!(%kid, %alg, admin = %admin.username, "signing key rotated");
    admin.flash(&format!(
        "New {alg} key {kid} is active; the previous one stays published until retired."
    ));
    Ok(see_other("/admin/keys"))
}

async fn retire(
    AdminForm { admin, .. }: AdminForm<ActionForm>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let kid = path.into_inner();
    match state.keys.retire(&kid).await? {
        RetireOutcome::Retired => {
            tracing::info!(%kid, admin = %admin.username, "signing key retired");
            admin.flash(&format!("Key {kid} retired: it is no longer published."));
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
