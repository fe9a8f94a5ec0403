//! Connected applications at `/account/applications`: what each may do, and Revoke, which
//! revokes the user's tokens of that application and forgets the consent; nothing of another
//! user's.

use diesel::prelude::*;
use provider::storage::schema::consents;
use reqwest::StatusCode;

use crate::account::{account_post, audit_rows, user_id};
use crate::cascades::active;
use crate::helpers::{
    Browser, CLIENT_ID, CLIENT_SECRET, ClientSpec, Consent, Pkce, TestApp, USER_PASSWORD,
    USER_USERNAME, location, page_text, spawn_app,
};

fn consent_exists(app: &TestApp, username: &str, client_id: &str) -> bool {
    let id = user_id(app, username);
    consents::table
        .find((id, client_id))
        .count()
        .get_result::<i64>(&mut *app.state.db.conn().unwrap())
        .unwrap()
        == 1
}

/// Authorizes `webapp` as `username` in `browser`; the token response.
async fn authorize(
    app: &TestApp,
    browser: &Browser,
    credentials: (&str, &str),
) -> serde_json::Value {
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[]),
            Some(credentials),
            Consent::Authorize,
        )
        .await;
    let response = app.exchange(&outcome.code(), &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn revoking_an_application_revokes_its_tokens_and_forgets_the_consent() {
    let app = spawn_app().await;
    let alice = app.new_browser();
    let first = authorize(&app, &alice, (USER_USERNAME, USER_PASSWORD)).await;
    let second = authorize(&app, &alice, (USER_USERNAME, USER_PASSWORD)).await;
    assert!(consent_exists(&app, USER_USERNAME, CLIENT_ID));

    let (status, html) = alice.get_html("/account/applications").await;
    assert_eq!(status, StatusCode::OK);
    let text = page_text(&html);
    assert!(text.contains("Web app"), "{text}");
    assert!(text.contains("See your email address"), "{text}");
    assert!(text.contains("Stay connected"), "{text}");
    let row = html
        .split(&format!("data-client-id=\"{CLIENT_ID}\""))
        .nth(1)
        .unwrap();
    assert!(row.contains("<td class=\"grants\">2</td>"), "{row}");

    let response = account_post(
        &alice,
        "/account/applications",
        &format!("/account/applications/{CLIENT_ID}/revoke"),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account/applications");
    for tokens in [&first, &second] {
        for kind in ["access_token", "refresh_token"] {
            assert!(
                !active(&app, tokens[kind].as_str().unwrap()).await,
                "{kind}"
            );
        }
    }
    let refreshed = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", second["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::BAD_REQUEST);
    assert!(!consent_exists(&app, USER_USERNAME, CLIENT_ID));
    let (_, html) = alice.get_html("/account/applications").await;
    assert!(!html.contains(&format!("data-client-id=\"{CLIENT_ID}\"")));
    assert!(page_text(&html).contains("Access revoked"));

    // The next authorization asks again.
    let outcome = alice
        .drive(
            &app.authorize_url(&Pkce::new(), &[]),
            None,
            Consent::Authorize,
        )
        .await;
    assert!(outcome.saw_consent, "consent is asked again");
    assert!(!outcome.saw_login, "still signed in");
    let rows = audit_rows(&app, USER_USERNAME);
    assert!(
        rows.iter().any(|(k, o, d)| k == "consent_revoked"
            && o == "succeeded"
            && d == "grants revoked: 2"),
        "{rows:?}"
    );
    // Still signed in at the provider: revoking an application is not a sign-out.
    let (status, _) = alice.get_html("/account").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn revoking_another_users_or_an_unused_application_changes_nothing() {
    let app = spawn_app().await;
    app.add_user("bob", "bob-password-123");
    app.add_client(ClientSpec::confidential("bobs-app"));
    // Bob authorized webapp; alice never used any application.
    let bob = app.new_browser();
    let bob_tokens = authorize(&app, &bob, ("bob", "bob-password-123")).await;
    assert!(consent_exists(&app, "bob", CLIENT_ID));
    let alice = app.user_browser().await;
    let (_, html) = alice.get_html("/account/applications").await;
    assert!(page_text(&html).contains("No application has access"));
    for client_id in [CLIENT_ID, "bobs-app", "no-such-app", "%2F..%2Fx"] {
        // Alice's page has no Revoke form: the token comes from another of her pages.
        let response = account_post(
            &alice,
            "/account",
            &format!("/account/applications/{client_id}/revoke"),
            &[],
        )
        .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{client_id}");
    }
    assert!(consent_exists(&app, "bob", CLIENT_ID));
    assert!(active(&app, bob_tokens["access_token"].as_str().unwrap()).await);
    assert!(active(&app, bob_tokens["refresh_token"].as_str().unwrap()).await);
    assert!(
        audit_rows(&app, USER_USERNAME)
            .iter()
            .all(|(k, _, _)| k != "consent_revoked")
    );
}
