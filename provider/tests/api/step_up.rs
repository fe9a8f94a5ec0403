//! `amr` and `acr` in ID tokens (from the code and from refresh), `acr_values` step-up, with
//! `prompt=login` and `max_age`, clients that require a second factor, and the admin site's
//! second-factor policy (`PROVIDER_REQUIRE_MFA_FOR_ADMINS`).

use diesel::prelude::*;
use provider::config::AdminMfa;
use provider::storage::schema::clients;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::factors::{
    add_confirmed_totp, code_at, drive_with_code, has_audit, make_admin, password_step,
    session_count, settled_step, submit_factor,
};
use crate::helpers::{
    ADMIN_PASSWORD, ADMIN_USERNAME, CLIENT_ID, CLIENT_SECRET, Consent, Pkce, TestApp,
    USER_PASSWORD, USER_USERNAME, hidden_fields, jwt_claims, location, spawn_app, spawn_app_with,
};

/// Exchanges `code`, then refreshes; returns both ID tokens' claims.
async fn id_tokens_from_code_and_refresh(app: &TestApp, code: &str, pkce: &Pkce) -> (Value, Value) {
    let response = app.exchange(code, &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    let first = jwt_claims(tokens["id_token"].as_str().unwrap());
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let response = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    (first, jwt_claims(tokens["id_token"].as_str().unwrap()))
}

#[tokio::test]
async fn id_tokens_say_how_the_user_signed_in_from_the_code_and_from_refresh() {
    let app = spawn_app().await;
    // A password only.
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    let (first, refreshed) = id_tokens_from_code_and_refresh(&app, &code, &pkce).await;
    for claims in [&first, &refreshed] {
        assert_eq!(claims["acr"], "pwd");
        assert_eq!(claims["amr"], json!(["pwd"]));
    }
    // A password and a TOTP code.
    let secret = add_confirmed_totp(&app, USER_USERNAME);
    let code_now = code_at(&secret, settled_step().await);
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let (outcome, asked) = drive_with_code(
        &browser,
        &app.authorize_url(&pkce, &[]),
        Some((USER_USERNAME, USER_PASSWORD)),
        Consent::Authorize,
        &code_now,
    )
    .await;
    assert!(asked, "the factor was asked for");
    let (first, refreshed) = id_tokens_from_code_and_refresh(&app, &outcome.code(), &pkce).await;
    for claims in [&first, &refreshed] {
        assert_eq!(claims["acr"], "mfa");
        assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    }
    assert_eq!(first["auth_time"], refreshed["auth_time"]);
}

#[tokio::test]
async fn discovery_lists_the_acr_values() {
    let app = spawn_app().await;
    let doc: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["acr_values_supported"], json!(["mfa", "pwd"]));
    let claims = doc["claims_supported"].as_array().unwrap();
    assert!(claims.contains(&json!("acr")) && claims.contains(&json!("amr")));
}

#[tokio::test]
async fn acr_values_mfa_steps_up_a_password_session_without_asking_the_password() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    let (before, _) = id_tokens_from_code_and_refresh(&app, &code, &pkce).await;
    // The factor is set up after the sign-in: the session has the password only.
    let secret = add_confirmed_totp(&app, USER_USERNAME);
    let sessions = session_count(&app, USER_USERNAME);

    // Without acr_values nothing more is asked.
    let pkce = Pkce::new();
    let outcome = browser
        .drive(&app.authorize_url(&pkce, &[]), None, Consent::Unexpected)
        .await;
    let (plain, _) = id_tokens_from_code_and_refresh(&app, &outcome.code(), &pkce).await;
    assert_eq!(plain["acr"], "pwd");

    let pkce = Pkce::new();
    let start = app.authorize_url(&pkce, &[("acr_values", "mfa")]);
    let response = browser.get(&start).await;
    assert!(response.status().is_redirection());
    assert_eq!(
        location(&response),
        "/login/factor",
        "the factor, not the password"
    );
    let code_now = code_at(&secret, settled_step().await);
    let (outcome, asked) = drive_with_code(
        &browser,
        "/login/factor",
        None,
        Consent::Unexpected,
        &code_now,
    )
    .await;
    assert!(asked);
    assert!(!outcome.saw_login, "no password again");
    let (claims, refreshed) = id_tokens_from_code_and_refresh(&app, &outcome.code(), &pkce).await;
    assert_eq!(claims["acr"], "mfa");
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(refreshed["acr"], "mfa");
    assert_eq!(
        claims["auth_time"], before["auth_time"],
        "the password was not entered again"
    );
    assert_eq!(claims["sid"], before["sid"], "the same session, raised");
    assert_eq!(session_count(&app, USER_USERNAME), sessions);
    assert!(has_audit(
        &app,
        USER_USERNAME,
        "sign_in",
        "succeeded",
        "step_up+totp"
    ));

    // Raised once, the session satisfies acr_values=mfa without asking again.
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("acr_values", "mfa")]),
            None,
            Consent::Unexpected,
        )
        .await;
    let (claims, _) = id_tokens_from_code_and_refresh(&app, &outcome.code(), &pkce).await;
    assert_eq!(claims["acr"], "mfa");
}

#[tokio::test]
async fn acr_values_mfa_for_a_user_without_a_factor_is_denied_at_the_client() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let outcome = browser
        .drive(
            &app.authorize_url(&Pkce::new(), &[("acr_values", "mfa")]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Unexpected,
        )
        .await;
    assert_eq!(outcome.param("error").as_deref(), Some("access_denied"));
    let description = outcome.param("error_description").unwrap();
    assert!(description.contains("second factor"), "{description}");
    assert!(description.contains("/account/security"), "{description}");
    assert_eq!(outcome.param("state").as_deref(), Some("state-123"));
    assert_eq!(outcome.param("iss").as_deref(), Some(app.issuer()));
    // Listing pwd too (in any order) accepts the password.
    for values in ["pwd mfa", "mfa pwd"] {
        let pkce = Pkce::new();
        let outcome = browser
            .drive(
                &app.authorize_url(&pkce, &[("acr_values", values)]),
                None,
                Consent::Authorize,
            )
            .await;
        let (claims, _) = id_tokens_from_code_and_refresh(&app, &outcome.code(), &pkce).await;
        assert_eq!(claims["acr"], "pwd", "{values}");
    }
}

#[tokio::test]
async fn acr_values_preferring_mfa_steps_up_a_user_who_has_a_factor() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    add_confirmed_totp(&app, USER_USERNAME);
    let response = browser
        .get(&app.authorize_url(&Pkce::new(), &[("acr_values", "mfa pwd")]))
        .await;
    assert_eq!(location(&response), "/login/factor");
    // Preferring the password asks nothing.
    let response = browser
        .get(&app.authorize_url(&Pkce::new(), &[("acr_values", "pwd mfa")]))
        .await;
    assert!(location(&response).starts_with("http://127.0.0.1:3000/"));
}

#[tokio::test]
async fn prompt_none_that_needs_a_second_factor_answers_interaction_required() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    add_confirmed_totp(&app, USER_USERNAME);
    let outcome = browser
        .drive(
            &app.authorize_url(&Pkce::new(), &[("acr_values", "mfa"), ("prompt", "none")]),
            None,
            Consent::Unexpected,
        )
        .await;
    assert_eq!(
        outcome.param("error").as_deref(),
        Some("interaction_required")
    );
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_the_password_and_then_the_factor() {
    let app = spawn_app().await;
    let secret = add_confirmed_totp(&app, USER_USERNAME);
    let browser = app.new_browser();
    let step = settled_step().await;
    let pkce = Pkce::new();
    let (outcome, asked) = drive_with_code(
        &browser,
        &app.authorize_url(&pkce, &[("acr_values", "mfa")]),
        Some((USER_USERNAME, USER_PASSWORD)),
        Consent::Authorize,
        &code_at(&secret, step - 1),
    )
    .await;
    assert!(asked);
    let (first, _) = id_tokens_from_code_and_refresh(&app, &outcome.code(), &pkce).await;

    for (extra, code) in [
        ("prompt", code_at(&secret, step)),
        ("max_age", code_at(&secret, step + 1)),
    ] {
        // auth_time has one-second steps: make the login at least a second old.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let value = if extra == "prompt" { "login" } else { "0" };
        let pkce = Pkce::new();
        let start = app.authorize_url(&pkce, &[("acr_values", "mfa"), (extra, value)]);
        let response = browser.get(&start).await;
        assert!(
            location(&response).starts_with("/login?"),
            "{extra}: the password first"
        );
        let (outcome, asked) = drive_with_code(
            &browser,
            &start,
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Unexpected,
            &code,
        )
        .await;
        assert!(asked, "{extra}: then the factor");
        assert!(outcome.saw_login, "{extra}");
        let (claims, _) = id_tokens_from_code_and_refresh(&app, &outcome.code(), &pkce).await;
        assert_eq!(claims["acr"], "mfa", "{extra}");
        assert!(
            claims["auth_time"].as_i64() > first["auth_time"].as_i64(),
            "{extra}"
        );
    }
}

#[tokio::test]
async fn a_step_up_does_not_count_as_the_new_login_prompt_login_asks_for() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let secret = add_confirmed_totp(&app, USER_USERNAME);
    // A request with prompt=login waits for a new login...
    let forced = app.authorize_url(&Pkce::new(), &[("prompt", "login")]);
    assert!(location(&browser.get(&forced).await).starts_with("/login?"));
    // ...and a step-up made meanwhile for another request is not that login.
    let response = browser
        .get(&app.authorize_url(&Pkce::new(), &[("acr_values", "mfa")]))
        .await;
    assert_eq!(location(&response), "/login/factor");
    let response = submit_factor(&browser, &code_at(&secret, settled_step().await)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&browser.get(&forced).await).starts_with("/login?"));
}

fn require_mfa(app: &TestApp, client_id: &str) {
    diesel::update(clients::table.filter(clients::id.eq(client_id)))
        .set(clients::requires_mfa.eq(true))
        .execute(&mut *app.state.db.conn().unwrap())
        .unwrap();
}

#[tokio::test]
async fn a_client_that_requires_mfa_acts_as_if_acr_values_mfa_were_sent() {
    let app = spawn_app().await;
    require_mfa(&app, CLIENT_ID);
    let browser = app.new_browser();
    let outcome = browser
        .drive(
            &app.authorize_url(&Pkce::new(), &[("acr_values", "pwd")]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Unexpected,
        )
        .await;
    assert_eq!(outcome.param("error").as_deref(), Some("access_denied"));

    let secret = add_confirmed_totp(&app, USER_USERNAME);
    let response = browser.get(&app.authorize_url(&Pkce::new(), &[])).await;
    assert_eq!(location(&response), "/login/factor");
    let pkce = Pkce::new();
    let code_now = code_at(&secret, settled_step().await);
    let (outcome, asked) = drive_with_code(
        &browser,
        &app.authorize_url(&pkce, &[]),
        None,
        Consent::Authorize,
        &code_now,
    )
    .await;
    assert!(asked);
    let (claims, _) = id_tokens_from_code_and_refresh(&app, &outcome.code(), &pkce).await;
    assert_eq!(claims["acr"], "mfa");
}

#[tokio::test]
async fn a_consent_posted_by_hand_does_not_skip_the_second_factor() {
    let app = spawn_app().await;
    require_mfa(&app, CLIENT_ID);
    let browser = app.new_browser();
    browser.log_in(USER_USERNAME, USER_PASSWORD).await;
    let pkce = Pkce::new();
    // The consent form's fields, made up from the request (the page itself is never shown).
    let url = url::Url::parse(&app.authorize_url(&pkce, &[])).unwrap();
    let mut fields: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let token = browser.csrf_token("/login").await;
    fields.push(("csrf_token".into(), token));
    fields.push(("decision".into(), "authorize".into()));
    let response = browser
        .post_form("/oauth/authorize/decision", &fields)
        .await;
    let to = location(&response);
    assert!(to.contains("error=access_denied"), "{to}");

    add_confirmed_totp(&app, USER_USERNAME);
    let response = browser
        .post_form("/oauth/authorize/decision", &fields)
        .await;
    assert_eq!(location(&response), "/login/factor");
    assert!(hidden_fields(&browser.get_html("/login/factor").await.1).len() == 1);
}

/// An admin site with `policy` and a second administrator `root` (no factor).
async fn admin_app(policy: AdminMfa) -> TestApp {
    let app = spawn_app_with(|s| s.require_mfa_for_admins = policy).await;
    app.add_user("root", "root-password-123");
    make_admin(&app, "root");
    app
}

#[tokio::test]
async fn admins_policy_auto_needs_a_factor_once_an_admin_has_one() {
    let app = admin_app(AdminMfa::Auto).await;
    let admin = app.admin_browser().await;
    let root = app.new_browser();
    root.log_in("root", "root-password-123").await;
    assert_eq!(admin.get("/admin").await.status(), StatusCode::OK);
    assert_eq!(root.get("/admin").await.status(), StatusCode::OK);

    // The first administrator with a factor turns the requirement on.
    let secret = add_confirmed_totp(&app, ADMIN_USERNAME);
    let response = admin.get("/admin/users").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login/factor", "stepped up");
    let response = submit_factor(&admin, &code_at(&secret, settled_step().await)).await;
    assert_eq!(location(&response), "/admin/users", "and back");
    assert_eq!(admin.get("/admin/users").await.status(), StatusCode::OK);

    // An administrator without a factor is sent to set one up.
    let response = root.get("/admin").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to = location(&response);
    assert_eq!(to, "/account/security?notice=admin_mfa");
    let (_, page) = root.get_html(&to).await;
    assert!(
        page.contains("The admin site requires a second factor"),
        "{page}"
    );
    // Posts are refused the same way.
    let token = root.csrf_token("/account/security").await;
    let response = root
        .post_form("/admin/keys/rotate", &[("csrf_token", token.as_str())])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account/security?notice=admin_mfa");
    // Other users are not concerned.
    assert_eq!(
        app.user_browser().await.get("/").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn admins_policy_true_needs_a_factor_from_the_start() {
    let app = admin_app(AdminMfa::Required).await;
    let admin = app.admin_browser().await;
    let response = admin.get("/admin").await;
    assert_eq!(location(&response), "/account/security?notice=admin_mfa");
    // Signing in with the factor opens the site.
    let secret = add_confirmed_totp(&app, ADMIN_USERNAME);
    let browser = app.new_browser();
    password_step(&browser, ADMIN_USERNAME, ADMIN_PASSWORD).await;
    submit_factor(&browser, &code_at(&secret, settled_step().await)).await;
    assert_eq!(browser.get("/admin").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn admins_policy_false_never_asks() {
    let app = admin_app(AdminMfa::Off).await;
    let admin = app.admin_browser().await;
    add_confirmed_totp(&app, ADMIN_USERNAME);
    assert_eq!(admin.get("/admin").await.status(), StatusCode::OK);
    let root = app.new_browser();
    root.log_in("root", "root-password-123").await;
    assert_eq!(root.get("/admin").await.status(), StatusCode::OK);
}
