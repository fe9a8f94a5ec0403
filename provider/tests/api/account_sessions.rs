//! The sessions page of the account center: what is listed, ending one, ending all others, and
//! nothing of another user's.

use reqwest::StatusCode;

use crate::account::{
    account_post, audit_count, audit_rows, browser_with_agent, session_ids, signed_in,
};
use crate::cascades::active;
use crate::helpers::{
    Consent, Pkce, TestApp, USER_PASSWORD, USER_USERNAME, location, page_text, spawn_app,
};

/// Signs alice in from a browser sending `user_agent`.
async fn alice_on(app: &TestApp, user_agent: &str) -> crate::helpers::Browser {
    let browser = browser_with_agent(app, user_agent);
    browser.log_in(USER_USERNAME, USER_PASSWORD).await;
    browser
}

/// The public id of the session `browser` is signed in with, read from its sessions page.
async fn own_session_id(app: &TestApp, browser: &crate::helpers::Browser) -> String {
    let before: std::collections::HashSet<String> =
        session_ids(app, USER_USERNAME).into_iter().collect();
    let (_, html) = browser.get_html("/account/sessions").await;
    let current = html
        .split("<tr class=\"session current\">")
        .nth(1)
        .expect("this session is marked");
    before
        .into_iter()
        .find(|id| current.split("</tr>").next().unwrap().contains(id.as_str()))
        .expect("this session's id on its row")
}

/// An access token for `webapp` issued in the session of `browser` (no `offline_access`, so
/// it lives only as long as the session).
async fn token_in_session(app: &TestApp, browser: &crate::helpers::Browser) -> String {
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("scope", "openid profile")]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    let response = app.exchange(&outcome.code(), &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_sessions_page_lists_devices_and_addresses_and_marks_this_session() {
    let app = spawn_app().await;
    let laptop = alice_on(&app, "Laptop/1.0 (Firefox)").await;
    let _phone = alice_on(&app, "Phone/2.0 (Safari)").await;
    let (status, html) = laptop.get_html("/account/sessions").await;
    assert_eq!(status, StatusCode::OK);
    let text = page_text(&html);
    assert!(text.contains("Laptop/1.0 (Firefox)"), "{text}");
    assert!(text.contains("Phone/2.0 (Safari)"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
    assert_eq!(html.matches("this session").count(), 1, "{text}");
    let current = html.split("session current").nth(1).unwrap();
    let current = page_text(current.split("</tr>").next().unwrap());
    assert!(current.contains("Laptop/1.0"), "{current}");
    // A user agent is shown as text, never as markup.
    let _odd = alice_on(&app, "<script>alert(1)</script>").await;
    let (_, html) = laptop.get_html("/account/sessions").await;
    assert!(!html.contains("<script>alert(1)"));
    assert!(page_text(&html).contains("<script>alert(1)</script>"));
}

#[tokio::test]
async fn ending_one_session_signs_that_browser_out_and_revokes_its_tokens() {
    let app = spawn_app().await;
    let laptop = alice_on(&app, "Laptop").await;
    let phone = alice_on(&app, "Phone").await;
    let tablet = alice_on(&app, "Tablet").await;
    let phone_token = token_in_session(&app, &phone).await;
    let laptop_token = token_in_session(&app, &laptop).await;
    let phone_id = own_session_id(&app, &phone).await;

    let response = account_post(
        &laptop,
        "/account/sessions",
        &format!("/account/sessions/{phone_id}/end"),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account/sessions");
    assert!(!signed_in(&phone).await, "the phone is signed out");
    assert!(signed_in(&laptop).await);
    assert!(signed_in(&tablet).await);
    assert!(!active(&app, &phone_token).await, "its tokens are revoked");
    assert!(active(&app, &laptop_token).await);
    assert!(!session_ids(&app, USER_USERNAME).contains(&phone_id));
    let rows = audit_rows(&app, USER_USERNAME);
    assert!(
        rows.iter()
            .any(|(k, o, d)| k == "session_ended" && o == "succeeded" && d == "another session"),
        "{rows:?}"
    );

    // Again: it is gone, so 404 and nothing else ends.
    let response = account_post(
        &laptop,
        "/account/sessions",
        &format!("/account/sessions/{phone_id}/end"),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(session_ids(&app, USER_USERNAME).len(), 2);

    // Ending this very session signs out.
    let tablet_id = own_session_id(&app, &tablet).await;
    let response = account_post(
        &tablet,
        "/account/sessions",
        &format!("/account/sessions/{tablet_id}/end"),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");
    assert!(!signed_in(&tablet).await);
    assert!(signed_in(&laptop).await);
    assert_eq!(audit_count(&app, USER_USERNAME, "session_ended"), 2);
}

#[tokio::test]
async fn ending_all_other_sessions_keeps_only_this_one() {
    let app = spawn_app().await;
    let laptop = alice_on(&app, "Laptop").await;
    let phone = alice_on(&app, "Phone").await;
    let tablet = alice_on(&app, "Tablet").await;
    let phone_token = token_in_session(&app, &phone).await;
    let laptop_token = token_in_session(&app, &laptop).await;
    let response = account_post(
        &laptop,
        "/account/sessions",
        "/account/sessions/others/end",
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, html) = laptop.get_html(&location(&response)).await;
    let text = page_text(&html);
    assert!(text.contains("2 other sessions ended."), "{text}");
    assert!(
        !text.contains("End all other sessions"),
        "none left: {text}"
    );
    assert!(signed_in(&laptop).await);
    assert!(!signed_in(&phone).await);
    assert!(!signed_in(&tablet).await);
    assert!(!active(&app, &phone_token).await);
    assert!(active(&app, &laptop_token).await);
    assert_eq!(session_ids(&app, USER_USERNAME).len(), 1);
    let rows = audit_rows(&app, USER_USERNAME);
    assert!(
        rows.iter()
            .any(|(k, _, d)| k == "session_ended" && d == "other sessions ended: 2"),
        "{rows:?}"
    );
}

#[tokio::test]
async fn another_users_session_cannot_be_ended() {
    let app = spawn_app().await;
    app.add_user("bob", "bob-password-123");
    let bob = app.new_browser();
    bob.log_in("bob", "bob-password-123").await;
    let bob_session = session_ids(&app, "bob").pop().unwrap();
    let alice = alice_on(&app, "Laptop").await;
    for path in [
        format!("/account/sessions/{bob_session}/end"),
        "/account/sessions/no-such-session/end".to_owned(),
    ] {
        let response = account_post(&alice, "/account/sessions", &path, &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert!(signed_in(&bob).await, "bob is still signed in");
    assert_eq!(session_ids(&app, "bob"), vec![bob_session]);
    // Ending alice's other sessions leaves bob's alone.
    let response = account_post(
        &alice,
        "/account/sessions",
        "/account/sessions/others/end",
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(signed_in(&bob).await);
    assert!(signed_in(&alice).await);
    assert_eq!(audit_count(&app, USER_USERNAME, "session_ended"), 0);
    assert_eq!(audit_count(&app, "bob", "session_ended"), 0);
}

/// The sessions named by the back-channel logouts recorded for `webapp`.
fn logouts_recorded_for(app: &TestApp) -> Vec<Option<String>> {
    use diesel::prelude::*;
    use provider::storage::schema::logout_deliveries;
    logout_deliveries::table
        .filter(logout_deliveries::client_id.eq(crate::helpers::CLIENT_ID))
        .select(logout_deliveries::sid)
        .load(&mut *app.state.db.conn().unwrap())
        .unwrap()
}

#[tokio::test]
async fn ending_sessions_tells_their_applications_by_back_channel_logout() {
    use diesel::prelude::*;
    use provider::storage::schema::clients;
    let app = spawn_app().await;
    // Nothing listens there: the deliveries stay recorded, waiting for their retry.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://127.0.0.1:{}/bc",
            listener.local_addr().unwrap().port()
        )
    };
    diesel::update(clients::table.find(crate::helpers::CLIENT_ID))
        .set(clients::backchannel_logout_uri.eq(dead))
        .execute(&mut *app.state.db.conn().unwrap())
        .unwrap();
    let laptop = alice_on(&app, "Laptop").await;
    let phone = alice_on(&app, "Phone").await;
    let tablet = alice_on(&app, "Tablet").await;
    token_in_session(&app, &laptop).await;
    token_in_session(&app, &phone).await;
    token_in_session(&app, &tablet).await;
    let phone_id = own_session_id(&app, &phone).await;
    let tablet_id = own_session_id(&app, &tablet).await;
    assert!(logouts_recorded_for(&app).is_empty());

    let response = account_post(
        &laptop,
        "/account/sessions",
        &format!("/account/sessions/{phone_id}/end"),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(logouts_recorded_for(&app), vec![Some(phone_id.clone())]);

    let response = account_post(
        &laptop,
        "/account/sessions",
        "/account/sessions/others/end",
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let mut recorded = logouts_recorded_for(&app);
    recorded.sort();
    let mut expected = vec![Some(phone_id), Some(tablet_id)];
    expected.sort();
    assert_eq!(recorded, expected, "the laptop's application is not told");
}
