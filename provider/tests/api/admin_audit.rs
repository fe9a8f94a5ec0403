//! Administrators' actions are recorded with the admin as actor, and the reset of a user's
//! second factors: what it deletes, that it ends the user's sessions, and who may do it.

use diesel::prelude::*;
use provider::storage::audit::{EventRow, Kind};
use provider::storage::audit_query::Filter;
use provider::storage::schema::{passkeys, recovery_codes, totp_credentials};
use reqwest::StatusCode;

use crate::audit::stored;
use crate::helpers::{
    ADMIN_USERNAME, Browser, CLIENT_ID, TestApp, USER_USERNAME, location, spawn_app,
};

/// The events of `kind`, newest first.
pub fn events(app: &TestApp, kind: Kind) -> Vec<EventRow> {
    stored(
        app,
        Filter {
            kind: Some(kind),
            ..Filter::default()
        },
    )
}

/// The row id of the user called `username`.
pub fn user_id(app: &TestApp, username: &str) -> String {
    let conn = &mut *app.state.db.conn().expect("connection");
    provider::storage::users::find_by_username(conn, username)
        .expect("query")
        .expect("user")
        .id
}

/// Gives `user_id` a confirmed TOTP, three recovery codes (one used) and two passkeys.
pub fn enrol_factors(app: &TestApp, user_id: &str) {
    let conn = &mut *app.state.db.conn().expect("connection");
    diesel::insert_into(totp_credentials::table)
        .values((
            totp_credentials::user_id.eq(user_id),
            totp_credentials::secret.eq("JBSWY3DPEHPK3PXP"),
            totp_credentials::confirmed_at.eq(Some(1_795_000_000_i64)),
            totp_credentials::last_used_step.eq(0_i64),
            totp_credentials::created_at.eq(1_795_000_000_i64),
        ))
        .execute(conn)
        .expect("totp");
    for (i, used) in [None, None, Some(1_i64)].into_iter().enumerate() {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::user_id.eq(user_id),
                recovery_codes::code_hash.eq(format!("hash-{user_id}-{i}")),
                recovery_codes::used_at.eq(used),
                recovery_codes::created_at.eq(1_i64),
            ))
            .execute(conn)
            .expect("recovery code");
    }
    for name in ["YubiKey 5", "Laptop"] {
        diesel::insert_into(passkeys::table)
            .values((
                passkeys::id.eq(format!("{user_id}-{name}")),
                passkeys::user_id.eq(user_id),
                passkeys::name.eq(name),
                passkeys::passkey.eq("{}"),
                passkeys::created_at.eq(1_i64),
            ))
            .execute(conn)
            .expect("passkey");
    }
}

/// Rows of (TOTP, recovery codes, passkeys) of `user_id`.
pub fn factor_rows(app: &TestApp, user_id: &str) -> (i64, i64, i64) {
    let conn = &mut *app.state.db.conn().expect("connection");
    (
        totp_credentials::table
            .filter(totp_credentials::user_id.eq(user_id))
            .count()
            .get_result(conn)
            .unwrap(),
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .count()
            .get_result(conn)
            .unwrap(),
        passkeys::table
            .filter(passkeys::user_id.eq(user_id))
            .count()
            .get_result(conn)
            .unwrap(),
    )
}

fn assert_by_admin(event: &EventRow) {
    assert_eq!(event.actor.as_deref(), Some(ADMIN_USERNAME), "{event:?}");
    assert_eq!(event.outcome, "succeeded");
}

#[tokio::test]
async fn admin_actions_on_users_applications_and_keys_are_recorded_with_the_admin_as_actor() {
    let app = spawn_app().await;
    let admin = app.admin_browser().await;

    // Users: created, updated, password reset, deactivated, deleted.
    let response = admin
        .submit(
            "/admin/users/new",
            "/admin/users",
            &[
                ("username", "bob"),
                ("password", "bob-password-123"),
                ("email", "bob@example.com"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = location(&response);
    let bob = user_id(&app, "bob");
    let created = events(&app, Kind::UserCreated);
    assert_eq!(created.len(), 1);
    assert_by_admin(&created[0]);
    assert_eq!(created[0].user_id.as_deref(), Some(bob.as_str()));
    assert_eq!(created[0].username, "bob");

    let response = admin
        .submit(
            &page,
            &page,
            &[("email", "bob@example.org"), ("given_name", "Bob")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = admin
        .submit(
            &page,
            &format!("{page}/password"),
            &[("password", "new-password-456")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = admin
        .submit(&page, &format!("{page}/active"), &[("active", "false")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let updated = events(&app, Kind::UserUpdated);
    assert_eq!(
        updated
            .iter()
            .map(|e| e.detail.as_str())
            .collect::<Vec<_>>(),
        ["deactivated", "profile"]
    );
    updated.iter().for_each(assert_by_admin);
    let reset = events(&app, Kind::PasswordReset);
    assert_eq!(reset.len(), 1);
    assert_by_admin(&reset[0]);
    assert_eq!(reset[0].user_id.as_deref(), Some(bob.as_str()));
    // A refused change records nothing.
    let response = admin
        .submit(&page, &format!("{page}/password"), &[("password", "short")])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(events(&app, Kind::PasswordReset).len(), 1);

    let response = admin
        .submit(&format!("{page}/delete"), &format!("{page}/delete"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let deleted = events(&app, Kind::UserDeleted);
    assert_eq!(deleted.len(), 1);
    assert_by_admin(&deleted[0]);
    assert_eq!(deleted[0].username, "bob");

    // Applications: created, updated, secret rotated, deleted.
    let response = admin
        .submit(
            "/admin/applications/new",
            "/admin/applications",
            &[
                ("client_id", "audited"),
                ("name", "Audited"),
                ("client_type", "confidential"),
                ("redirect_uris", "https://app.example/cb"),
                ("algorithm", "RS256"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let path = "/admin/applications/audited";
    let response = admin
        .submit(
            path,
            path,
            &[
                ("name", "Audited again"),
                ("client_type", "confidential"),
                ("redirect_uris", "https://app.example/cb"),
                ("algorithm", "RS256"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = admin.submit(path, &format!("{path}/secret"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = admin.submit(path, &format!("{path}/delete"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    for kind in [
        Kind::ClientCreated,
        Kind::ClientUpdated,
        Kind::ClientSecretRotated,
        Kind::ClientDeleted,
    ] {
        let recorded = events(&app, kind);
        assert_eq!(recorded.len(), 1, "{kind:?}");
        assert_by_admin(&recorded[0]);
        assert_eq!(
            recorded[0].client_id.as_deref(),
            Some("audited"),
            "{kind:?}"
        );
    }

    // Keys.
    let response = admin
        .submit(
            "/admin/keys",
            "/admin/keys/rotate",
            &[("algorithm", "ES256")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let rotated = events(&app, Kind::KeyRotated);
    assert_eq!(rotated.len(), 1);
    assert_by_admin(&rotated[0]);
    let kid = app
        .state
        .keys
        .active(oidc_core::jose::Algorithm::ES256)
        .unwrap()
        .kid()
        .to_owned();
    assert!(rotated[0].detail.contains(&kid), "{:?}", rotated[0]);

    // Sessions: one ended, then all.
    let alice = user_id(&app, USER_USERNAME);
    signed_in_alice(&app).await;
    let sessions = {
        let conn = &mut *app.state.db.conn().expect("connection");
        provider::storage::sessions::for_user(conn, &alice).expect("sessions")
    };
    let user_page = format!("/admin/users/{alice}");
    let one = format!("{user_page}/sessions/{}/end", sessions[0].public_id);
    let response = admin.submit(&user_page, &one, &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let all = format!("{user_page}/sessions/end");
    let response = admin.submit(&user_page, &all, &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let ended = events(&app, Kind::SessionEnded);
    assert_eq!(
        ended.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>(),
        ["all sessions", "one session"]
    );
    ended.iter().for_each(assert_by_admin);
    assert!(ended.iter().all(|e| e.username == USER_USERNAME));

    // And the audit page shows them, with the actor.
    let (status, html) = admin.get_html("/admin/audit?kind=client_deleted").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("audited") && html.contains(ADMIN_USERNAME),
        "{html}"
    );
}

async fn signed_in_alice(app: &TestApp) -> Browser {
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let (error, code) = crate::sessions::prompt_none(app, &browser).await;
    assert!(error.is_none() && code.is_some(), "alice is signed in");
    browser
}

#[tokio::test]
async fn the_admin_user_page_shows_second_factors_and_a_reset_ends_them_and_every_session() {
    let app = spawn_app().await;
    let alice = user_id(&app, USER_USERNAME);
    let admin = app.admin_browser().await;
    let page = format!("/admin/users/{alice}");
    let (_, html) = admin.get_html(&page).await;
    assert!(html.contains(r#"<dd id="factor-totp">no</dd>"#), "{html}");
    assert!(html.contains(r#"<dd id="factor-recovery-codes">0</dd>"#));
    assert!(!html.contains("/factors/reset"), "nothing to reset");

    // Signed in before the factors exist: with them, a password alone no longer signs in.
    let browser = signed_in_alice(&app).await;
    let tokens = app.tokens_for_alice().await;
    enrol_factors(&app, &alice);
    let userinfo = |token: String| {
        let request = app.http.get(app.url("/oauth/userinfo")).bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(access_token.clone()).await, StatusCode::OK);
    let (_, html) = admin.get_html(&page).await;
    assert!(
        html.contains(r#"<dd id="factor-totp">yes, since 2026-11-18 11:06 UTC</dd>"#),
        "{html}"
    );
    assert!(html.contains(r#"<dd id="factor-recovery-codes">2</dd>"#));
    assert!(html.contains("YubiKey 5") && html.contains("Laptop"));
    assert!(html.contains("/factors/reset"));

    let response = admin
        .submit(
            &page,
            &format!("{page}/factors/reset"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), page);
    assert_eq!(factor_rows(&app, &alice), (0, 0, 0));
    // The user's cookie no longer works, and the tokens issued before are revoked.
    let (error, code) = crate::sessions::prompt_none(&app, &browser).await;
    assert_eq!(error.as_deref(), Some("login_required"));
    assert!(code.is_none());
    assert_eq!(userinfo(access_token).await, StatusCode::UNAUTHORIZED);
    let recorded = events(&app, Kind::FactorsReset);
    assert_eq!(recorded.len(), 1);
    assert_by_admin(&recorded[0]);
    assert_eq!(recorded[0].user_id.as_deref(), Some(alice.as_str()));
    assert_eq!(recorded[0].detail, "totp=1 recovery_codes=3 passkeys=2");
    let (_, html) = admin.get_html(&page).await;
    assert!(html.contains(r#"<dd id="factor-passkeys">none</dd>"#));
    // The client seeded for the tests is untouched.
    assert!(
        app.state
            .db
            .run(|conn| provider::storage::clients::find(conn, CLIENT_ID))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_factor_reset_needs_an_admin_the_csrf_token_and_the_confirmation() {
    let app = spawn_app().await;
    let alice = user_id(&app, USER_USERNAME);
    let browser = signed_in_alice(&app).await;
    enrol_factors(&app, &alice);
    let path = format!("/admin/users/{alice}/factors/reset");
    let admin = app.admin_browser().await;

    // No token, a wrong token: 403.
    let response = admin.post_form(&path, &[("confirm", "yes")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = admin
        .post_form(&path, &[("confirm", "yes"), ("csrf_token", "wrong")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Not confirmed: 400.
    let page = format!("/admin/users/{alice}");
    let response = admin.submit(&page, &path, &[]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Not an administrator (alice herself, with a valid token of her own session): 403.
    let token = browser.csrf_token("/logout").await;
    let response = browser
        .post_form(&path, &[("confirm", "yes"), ("csrf_token", token.as_str())])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // An unknown user: 404.
    let response = admin
        .submit(
            &page,
            "/admin/users/nobody/factors/reset",
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    assert_eq!(factor_rows(&app, &alice), (1, 3, 2));
    assert!(events(&app, Kind::FactorsReset).is_empty());
    let (error, _) = crate::sessions::prompt_none(&app, &browser).await;
    assert!(error.is_none(), "alice is still signed in");
}

#[tokio::test]
async fn a_consent_given_and_a_sign_out_are_recorded_for_the_user() {
    let app = spawn_app().await;
    let alice = user_id(&app, USER_USERNAME);
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let granted = events(&app, Kind::ConsentGranted);
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert_eq!(granted[0].user_id.as_deref(), Some(alice.as_str()));
    assert_eq!(granted[0].username, USER_USERNAME);
    assert_eq!(granted[0].client_id.as_deref(), Some(CLIENT_ID));
    assert!(
        granted[0].detail.contains("openid"),
        "{}",
        granted[0].detail
    );
    // A second flow with the consent remembered asks nothing and records nothing.
    app.code_for_alice(&browser).await;
    assert_eq!(events(&app, Kind::ConsentGranted).len(), 1);

    assert!(events(&app, Kind::SessionEnded).is_empty());
    let token = browser.csrf_token("/logout").await;
    let response = browser
        .post_form("/logout", &[("csrf_token", token.as_str())])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let ended = events(&app, Kind::SessionEnded);
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].user_id.as_deref(), Some(alice.as_str()));
    assert_eq!(ended[0].detail, "signed out");
}
