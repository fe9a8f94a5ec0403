//! Second factors in tests: TOTP codes computed with the same crate from the secret a page
//! shows, enrolment through the real pages, the factor prompt, and the audit log's rows.

use diesel::prelude::*;
use provider::storage::schema::{audit_events, sessions, totp_credentials, users};
use reqwest::{Response, StatusCode};
use totp_rs::{Algorithm, Secret, TOTP};

use super::{Browser, TestApp, element_text, location};

/// The code of the base32 `secret` for time step `step` (30 s steps, 6 digits, SHA-1).
pub fn code_at(secret: &str, step: i64) -> String {
    let bytes = Secret::Encoded(secret.to_owned())
        .to_bytes()
        .expect("base32");
    let totp = TOTP::new(Algorithm::SHA1, 6, 0, 30, bytes).expect("TOTP");
    totp.generate(u64::try_from(step * 30).expect("positive"))
}

/// The current time step, waiting first when the step is about to end, so that a code computed
/// now still belongs to the same step when the provider checks it.
pub async fn settled_step() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let into = now % 30.0;
    if into > 25.0 {
        tokio::time::sleep(std::time::Duration::from_secs_f64(30.0 - into + 0.2)).await;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    i64::try_from(now / 30).expect("small")
}

/// What enrolment showed: the secret in text, the QR code's SVG, the otpauth URI and the
/// recovery codes.
pub struct Enrolment {
    pub secret: String,
    pub qr_svg: String,
    pub otpauth_uri: String,
    pub recovery_codes: Vec<String>,
    /// The time step of the code that confirmed it.
    pub confirmed_step: i64,
}

/// Starts enrolment on the security page; returns the setup page's HTML.
pub async fn start_enrolment(browser: &Browser) -> String {
    let response = browser
        .submit("/account/security", "/account/security/totp/start", &[])
        .await;
    assert_eq!(response.status(), StatusCode::OK, "start enrolment");
    response.text().await.expect("body")
}

/// The secret shown in text on a setup page.
pub fn shown_secret(html: &str) -> String {
    element_text(html, "#totp-secret").expect("secret shown in text")
}

/// Enrols TOTP for the signed-in user of `browser` through the pages, confirming with the code
/// of the previous step (so the current and next steps stay free for the test).
pub async fn enrol(browser: &Browser) -> Enrolment {
    let html = start_enrolment(browser).await;
    let secret = shown_secret(&html);
    let qr_svg = html[html.find("<svg").expect("QR SVG")..].to_owned();
    let otpauth_uri = element_text(&html, "#otpauth-uri").expect("otpauth URI");
    let step = settled_step().await - 1;
    let token = super::csrf_token(&html).expect("csrf");
    let response = browser
        .post_form(
            "/account/security/totp/confirm",
            &[
                ("code", code_at(&secret, step).as_str()),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "confirm enrolment");
    let html = response.text().await.expect("body");
    Enrolment {
        secret,
        qr_svg,
        otpauth_uri,
        recovery_codes: recovery_codes_shown(&html),
        confirmed_step: step,
    }
}

/// The recovery codes listed on a page.
pub fn recovery_codes_shown(html: &str) -> Vec<String> {
    let start = html
        .find("id=\"recovery-codes\"")
        .expect("a list of recovery codes");
    let list = &html[start..];
    let list = &list[..list.find("</ul>").expect("end of the list")];
    list.split("<code>")
        .skip(1)
        .map(|part| part[..part.find("</code>").expect("closed")].to_owned())
        .collect()
}

/// Submits `code` on the factor page of `browser`.
pub async fn submit_factor(browser: &Browser, code: &str) -> Response {
    browser
        .submit("/login/factor", "/login/factor", &[("code", code)])
        .await
}

/// Signs in with the password and expects the factor prompt (no session yet).
pub async fn password_step(browser: &Browser, username: &str, password: &str) {
    let response = browser.login(username, password).await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "password accepted"
    );
    assert_eq!(location(&response), "/login/factor");
}

/// The user's row id.
pub fn user_id(app: &TestApp, username: &str) -> String {
    users::table
        .filter(users::username.eq(username))
        .select(users::id)
        .first(&mut *app.state.db.conn().expect("conn"))
        .expect("user")
}

/// Gives `username` a confirmed TOTP credential straight in the database; returns its secret.
pub fn add_confirmed_totp(app: &TestApp, username: &str) -> String {
    let secret = provider::identity::totp::generate_secret();
    let id = user_id(app, username);
    diesel::insert_into(totp_credentials::table)
        .values((
            totp_credentials::user_id.eq(&id),
            totp_credentials::secret.eq(&secret),
            totp_credentials::confirmed_at.eq(Some(oidc_core::unix_now())),
            totp_credentials::last_used_step.eq(0_i64),
            totp_credentials::created_at.eq(oidc_core::unix_now()),
        ))
        .execute(&mut *app.state.db.conn().expect("conn"))
        .expect("insert TOTP");
    secret
}

/// How many sessions `username` has.
pub fn session_count(app: &TestApp, username: &str) -> i64 {
    let id = user_id(app, username);
    sessions::table
        .filter(sessions::user_id.eq(id))
        .count()
        .get_result(&mut *app.state.db.conn().expect("conn"))
        .expect("count")
}

/// The audit rows `(kind, outcome, detail)` of `username`, oldest first.
pub fn audit_rows(app: &TestApp, username: &str) -> Vec<(String, String, String)> {
    audit_events::table
        .filter(audit_events::username.eq(username))
        .order(audit_events::id.asc())
        .select((
            audit_events::kind,
            audit_events::outcome,
            audit_events::detail,
        ))
        .load(&mut *app.state.db.conn().expect("conn"))
        .expect("audit rows")
}

/// Whether `username` has an audit row of this kind, outcome and detail.
pub fn has_audit(app: &TestApp, username: &str, kind: &str, outcome: &str, detail: &str) -> bool {
    audit_rows(app, username)
        .iter()
        .any(|(k, o, d)| k == kind && o == outcome && d == detail)
}

/// Walks a flow from `start` like [`Browser::drive`], entering `code` on the factor page when
/// it is shown; `None` when the flow ended without asking for a factor.
pub async fn drive_with_code(
    browser: &Browser,
    start: &str,
    credentials: Option<(&str, &str)>,
    consent: super::Consent,
    code: &str,
) -> (super::Outcome, bool) {
    let outcome = browser.drive(start, credentials, consent).await;
    if outcome.redirect.is_some() || !outcome.body.contains("action=\"/login/factor\"") {
        return (outcome, false);
    }
    let response = submit_factor(browser, code).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "factor accepted");
    let next = location(&response);
    let mut after = browser.drive(&next, None, consent).await;
    after.saw_login |= outcome.saw_login;
    (after, true)
}

/// Makes `username` an administrator.
pub fn make_admin(app: &TestApp, username: &str) {
    diesel::update(users::table.filter(users::username.eq(username)))
        .set(users::is_admin.eq(true))
        .execute(&mut *app.state.db.conn().expect("conn"))
        .expect("make admin");
}
