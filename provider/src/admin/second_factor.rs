//! Whether the admin site needs a second factor (`PROVIDER_REQUIRE_MFA_FOR_ADMINS`), and what
//! an administrator without one in their session is sent to: the factor page when they have a
//! factor (then back), the security page to set one up when they have none.

use actix_session::Session;

use crate::config::AdminMfa;
use crate::identity::factor::{self, PendingLogin};
use crate::identity::session::Login;
use crate::state::AppState;
use crate::storage::StorageError;
use crate::storage::totp;
use crate::storage::users::User;

use super::AdminError;

/// Where an administrator without any second factor is sent when the policy needs one.
const SET_UP: &str = "/account/security?notice=admin_mfa";

/// Lets `login` of the administrator `admin` use the admin site, or sends them to a second
/// factor first; `next` is where to come back.
pub(super) async fn check(
    state: &AppState,
    session: &Session,
    login: &Login,
    admin: &User,
    next: &str,
) -> Result<(), AdminError> {
    let policy = state.settings.require_mfa_for_admins;
    if policy == AdminMfa::Off || factor::is_mfa(&login.amr) {
        return Ok(());
    }
    let id = admin.id.clone();
    let (has_factor, required) = state
        .db
        .run(move |conn| {
            let has_factor = totp::factors(conn, &id)?.any();
            // Under `auto`, the first administrator with a factor turns the requirement on.
            let required = match policy {
                AdminMfa::Required => true,
                AdminMfa::Auto => has_factor || totp::any_admin_has_factor(conn)?,
                AdminMfa::Off => false,
            };
            Ok::<_, StorageError>((has_factor, required))
        })
        .await?;
    if !required {
        return Ok(());
    }
    if !has_factor {
        return Err(AdminError::Redirect(SET_UP.to_owned()));
    }
    let pending = PendingLogin::step_up(login, &admin.username, next);
    factor::ask_for_factor(session, &pending).map_err(|e| AdminError::Unexpected(e.into()))?;
    Err(AdminError::Redirect("/login/factor".to_owned()))
}
