//! The authorization endpoint: every row of the authorization table of docs/security.md.

use reqwest::StatusCode;
use reqwest::header::LOCATION;

use crate::helpers::{
    Browser, Consent, Pkce, REDIRECT_URI, TestApp, USER_PASSWORD, USER_USERNAME, spawn_app,
};

/// An error page: HTML, 4xx, and no redirect.
async fn assert_error_page(browser: &Browser, url: &str) {
    let response = browser.get(url).await;
    assert!(
        response.status().is_client_error(),
        "{url}: {}",
        response.status()
    );
    assert!(
        response.headers().get(LOCATION).is_none(),
        "{url} redirected"
    );
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
}

/// The redirect of a request that should fail at the client, with its error.
async fn redirect_error(app: &TestApp, browser: &Browser, url: &str) -> (url::Url, String) {
    let response = browser.get(url).await;
    assert_eq!(response.status(), StatusCode::FOUND, "{url}");
    let location = url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT_URI), "{location}");
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("state").as_deref(), Some("state-123"), "{location}");
    assert_eq!(param("iss").as_deref(), Some(app.issuer()), "{location}");
    let error = param("error").unwrap_or_default();
    (location, error)
}

#[tokio::test]
async fn unknown_client_id_shows_error_page_without_redirect() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let pkce = Pkce::new();
    assert_error_page(
        &browser,
        &app.authorize_url(&pkce, &[("client_id", "nobody")]),
    )
    .await;
    assert_error_page(&browser, &app.authorize_url(&pkce, &[("client_id", "")])).await;
}

#[tokio::test]
async fn redirect_uri_not_byte_identical_shows_error_page_without_redirect() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let variants = [
        "http://127.0.0.1:3000/api/auth/callback/PROVIDER",
        "HTTP://127.0.0.1:3000/api/auth/callback/provider",
        "http://127.0.0.1:3000/api/auth/callback/provider/",
        "http://127.0.0.1:3000/api/auth/callback/provider?x=1",
        "http://127.0.0.1:3000/api/auth/callback/provider#frag",
        "http://user@127.0.0.1:3000/api/auth/callback/provider",
        "http://127.0.0.1:3000/api/auth/callback/x/../provider",
        "http://127.0.0.1:3000/api/auth/callback/provider%20",
        "https://127.0.0.1:3000/api/auth/callback/provider",
        "http://127.0.0.1:443/api/auth/callback/provider",
        "https://evil.example/callback",
    ];
    for uri in variants {
        assert_error_page(
            &browser,
            &app.authorize_url(&pkce, &[("redirect_uri", uri)]),
        )
        .await;
    }
    // A registered https URI with and without the default port is two different strings.
    app.add_client(crate::helpers::ClientSpec {
        redirect_uris: &["https://app.example/cb"],
        ..crate::helpers::ClientSpec::confidential("tls")
    });
    assert_error_page(
        &browser,
        &app.authorize_url(
            &pkce,
            &[
                ("client_id", "tls"),
                ("redirect_uri", "https://app.example:443/cb"),
            ],
        ),
    )
    .await;
}

#[tokio::test]
async fn redirect_uri_missing_with_several_registered_shows_error_page() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    assert_error_page(
        &browser,
        &app.authorize_url(&Pkce::new(), &[("redirect_uri", "")]),
    )
    .await;
}

#[tokio::test]
async fn redirect_uri_missing_with_one_registered_uses_it() {
    let app = spawn_app().await;
    app.add_client(crate::helpers::ClientSpec::confidential("single"));
    let browser = app.new_browser();
    browser.log_in(USER_USERNAME, USER_PASSWORD).await;
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("client_id", "single"), ("redirect_uri", "")]),
            None,
            Consent::Authorize,
        )
        .await;
    assert!(outcome.redirect.unwrap().as_str().starts_with(REDIRECT_URI));
}

#[tokio::test]
async fn response_type_missing_or_not_code_redirects_with_error() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let (_, error) = redirect_error(
        &app,
        &browser,
        &app.authorize_url(&pkce, &[("response_type", "")]),
    )
    .await;
    assert_eq!(error, "invalid_request");
    for response_type in ["token", "id_token", "code id_token", "none"] {
        let (_, error) = redirect_error(
            &app,
            &browser,
            &app.authorize_url(&pkce, &[("response_type", response_type)]),
        )
        .await;
        assert_eq!(error, "unsupported_response_type", "{response_type}");
    }
    // Only once the client and the redirect URI are valid.
    assert_error_page(
        &browser,
        &app.authorize_url(
            &pkce,
            &[("response_type", "token"), ("client_id", "nobody")],
        ),
    )
    .await;
}

#[tokio::test]
async fn missing_or_plain_or_unknown_code_challenge_redirects_with_invalid_request() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let pkce = Pkce::new();
    for extra in [
        vec![("code_challenge", ""), ("code_challenge_method", "")],
        vec![("code_challenge", "")],
        vec![("code_challenge_method", "plain")],
        vec![("code_challenge_method", "S512")],
        vec![("code_challenge_method", "")],
        vec![("code_challenge", "short")],
    ] {
        let (_, error) = redirect_error(&app, &browser, &app.authorize_url(&pkce, &extra)).await;
        assert_eq!(error, "invalid_request", "{extra:?}");
    }
}

#[tokio::test]
async fn scope_without_openid_or_unknown_scope_redirects_with_invalid_scope() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let pkce = Pkce::new();
    for scope in ["profile email", "openid admin", "", "openid\u{7f}"] {
        let (_, error) = redirect_error(
            &app,
            &browser,
            &app.authorize_url(&pkce, &[("scope", scope)]),
        )
        .await;
        assert_eq!(error, "invalid_scope", "{scope:?}");
    }
}

#[tokio::test]
async fn unknown_extra_parameters_are_ignored_and_the_flow_succeeds() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let url = app.authorize_url(
        &pkce,
        &[
            ("foo", "bar"),
            ("ui_locales", "de"),
            ("claims_locales", "x"),
        ],
    );
    let outcome = browser
        .drive(
            &url,
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    let code = outcome.code();
    assert_eq!(
        app.exchange(&code, &pkce.verifier).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn no_nonce_flow_succeeds() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let url = app.authorize_url(&pkce, &[("nonce", "")]);
    let outcome = browser
        .drive(
            &url,
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    let response = app.exchange(&outcome.code(), &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    let claims = crate::helpers::jwt_claims(body["id_token"].as_str().unwrap());
    assert!(claims.get("nonce").is_none());
}

#[tokio::test]
async fn prompt_none_not_logged_in_redirects_with_login_required_without_ui() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let (_, error) = redirect_error(
        &app,
        &browser,
        &app.authorize_url(&Pkce::new(), &[("prompt", "none")]),
    )
    .await;
    assert_eq!(error, "login_required");
}

#[tokio::test]
async fn prompt_none_logged_in_with_consent_returns_code_without_ui() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let pkce = Pkce::new();
    let response = browser
        .get(&app.authorize_url(&pkce, &[("prompt", "none")]))
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(
        app.exchange(&code, &pkce.verifier).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn prompt_none_logged_in_without_consent_redirects_with_consent_required() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    browser.log_in(USER_USERNAME, USER_PASSWORD).await;
    let (_, error) = redirect_error(
        &app,
        &browser,
        &app.authorize_url(&Pkce::new(), &[("prompt", "none")]),
    )
    .await;
    assert_eq!(error, "consent_required");
}

#[tokio::test]
async fn prompt_none_with_other_values_is_invalid_request() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let (_, error) = redirect_error(
        &app,
        &browser,
        &app.authorize_url(&Pkce::new(), &[("prompt", "none login")]),
    )
    .await;
    assert_eq!(error, "invalid_request");
}

#[tokio::test]
async fn consent_cancel_redirects_with_access_denied_and_state() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Cancel,
        )
        .await;
    assert!(outcome.saw_consent);
    assert_eq!(outcome.param("error").as_deref(), Some("access_denied"));
    assert_eq!(outcome.param("state").as_deref(), Some("state-123"));
    assert_eq!(outcome.param("iss").as_deref(), Some(app.issuer()));
    assert!(outcome.param("code").is_none());
}

#[tokio::test]
async fn every_redirect_back_carries_state_unchanged_and_iss() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let odd_state = "a b+c/d?e=f&g=ü%";
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("state", odd_state)]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    assert!(outcome.saw_login && outcome.saw_consent);
    assert_eq!(outcome.param("state").as_deref(), Some(odd_state));
    assert_eq!(outcome.param("iss").as_deref(), Some(app.issuer()));
    // Error redirects too.
    let response = browser
        .get(&app.authorize_url(&pkce, &[("state", odd_state), ("scope", "profile")]))
        .await;
    let location = url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert!(
        pairs.contains(&("state".into(), odd_state.into())),
        "{pairs:?}"
    );
    assert!(
        pairs.contains(&("iss".into(), app.issuer().to_owned())),
        "{pairs:?}"
    );
}

#[tokio::test]
async fn request_via_post_works_the_same() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    browser.log_in(USER_USERNAME, USER_PASSWORD).await;
    let pkce = Pkce::new();
    let url = url::Url::parse(&app.authorize_url(&pkce, &[])).unwrap();
    let form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let response = browser.post_form(&app.url("/oauth/authorize"), &form).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("/oauth/authorize/decision"),
        "consent page expected"
    );
    let mut fields = crate::helpers::hidden_fields(&body);
    fields.push(("decision".into(), "authorize".into()));
    let response = browser
        .post_form(&app.url("/oauth/authorize/decision"), &fields)
        .await;
    let location = url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(
        app.exchange(&code, &pkce.verifier).await.status(),
        StatusCode::OK
    );
    // A POST error redirect looks like a GET one.
    let mut bad = form.clone();
    bad.retain(|(k, _)| k != "code_challenge");
    let response = browser.post_form(&app.url("/oauth/authorize"), &bad).await;
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.contains("error=invalid_request") && location.contains("state=state-123"),
        "{location}"
    );
}

#[tokio::test]
async fn login_and_consent_pages_cannot_be_framed() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let login = browser.get(&app.url("/login")).await;
    browser.log_in(USER_USERNAME, USER_PASSWORD).await;
    let consent = browser.get(&app.authorize_url(&Pkce::new(), &[])).await;
    assert_eq!(consent.status(), StatusCode::OK);
    for response in [login, consent] {
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }
}

#[tokio::test]
async fn consent_posted_without_or_with_wrong_csrf_token_is_403_and_changes_nothing() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    browser.log_in(USER_USERNAME, USER_PASSWORD).await;
    let pkce = Pkce::new();
    let body = browser
        .get(&app.authorize_url(&pkce, &[]))
        .await
        .text()
        .await
        .unwrap();
    let fields = crate::helpers::hidden_fields(&body);
    for token in [None, Some("wrong"), Some("")] {
        let mut form: Vec<(String, String)> = fields
            .iter()
            .filter(|(k, _)| k != "csrf_token")
            .cloned()
            .collect();
        if let Some(token) = token {
            form.push(("csrf_token".into(), token.into()));
        }
        form.push(("decision".into(), "authorize".into()));
        let response = browser
            .post_form(&app.url("/oauth/authorize/decision"), &form)
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{token:?}");
        assert!(response.headers().get(LOCATION).is_none());
    }
    // Nothing was remembered: prompt=none still needs consent.
    let response = browser
        .get(&app.authorize_url(&pkce, &[("prompt", "none")]))
        .await;
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.contains("error=consent_required"), "{location}");
    // A foreign browser's valid token does not work in this session either.
    let other = app.new_browser();
    other.log_in(USER_USERNAME, USER_PASSWORD).await;
    let other_body = other
        .get(&app.authorize_url(&pkce, &[]))
        .await
        .text()
        .await
        .unwrap();
    let mut form = crate::helpers::hidden_fields(&other_body);
    form.push(("decision".into(), "authorize".into()));
    let response = browser
        .post_form(&app.url("/oauth/authorize/decision"), &form)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn login_redirect_keeps_the_request_and_returns_to_it_once() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let response = browser
        .get(&app.authorize_url(&Pkce::new(), &[("login_hint", "alice")]))
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/login?next=%2Foauth%2Fauthorize%3F"),
        "{location}"
    );
    assert!(location.contains("login_hint=alice"), "{location}");
}

#[tokio::test]
async fn malformed_query_before_client_validation_is_an_error_page() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    assert_error_page(
        &browser,
        &app.url("/oauth/authorize?client_id=webapp&client_id=other"),
    )
    .await;
    assert_error_page(&browser, &app.url("/oauth/authorize?client_id=%FF")).await;
    assert_error_page(&browser, &app.url("/oauth/authorize")).await;
}

#[tokio::test]
async fn request_objects_are_refused_at_the_redirect_uri() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let (_, error) = redirect_error(
        &app,
        &browser,
        &app.authorize_url(&Pkce::new(), &[("request", "eyJ.x.y")]),
    )
    .await;
    assert_eq!(error, "request_not_supported");
    let (_, error) = redirect_error(
        &app,
        &browser,
        &app.authorize_url(&Pkce::new(), &[("request_uri", "https://x.example/r")]),
    )
    .await;
    assert_eq!(error, "request_uri_not_supported");
}

#[tokio::test]
async fn auth_after_from_the_request_does_not_skip_a_forced_login() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    for extra in [
        &[("prompt", "login"), ("auth_after", "0")][..],
        &[("max_age", "0"), ("auth_after", "0")][..],
    ] {
        // auth_time has one-second steps: make the login at least a second old for max_age=0.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let response = browser.get(&app.authorize_url(&Pkce::new(), extra)).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{extra:?}");
        let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(location.starts_with("/login?"), "{extra:?}: {location}");
        assert!(!location.contains("auth_after"), "{location}");
    }
}

#[tokio::test]
async fn a_far_future_auth_after_does_not_send_the_user_round_a_login_loop() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let pkce = Pkce::new();
    // `drive` submits the login form once and stops at a second one.
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("auth_after", "99999999999")]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    assert!(outcome.saw_login);
    let code = outcome.code();
    assert_eq!(
        app.exchange(&code, &pkce.verifier).await.status(),
        StatusCode::OK
    );
    // Signed in now: the same with prompt=login asks for the password once and then succeeds.
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("prompt", "login"), ("auth_after", "99999999999")]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Unexpected,
        )
        .await;
    assert!(outcome.saw_login);
    assert_eq!(
        app.exchange(&outcome.code(), &pkce.verifier).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_forced_login_round_trip_works_once_and_its_replay_asks_again() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let pkce = Pkce::new();
    let start = app.authorize_url(&pkce, &[("prompt", "login")]);
    let response = browser.get(&start).await;
    let login = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(login.starts_with("/login?"), "{login}");
    let next = url::Url::parse(&app.url(&login))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "next")
        .unwrap()
        .1
        .into_owned();
    let outcome = browser
        .drive(
            &app.url(&login),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Unexpected,
        )
        .await;
    assert!(outcome.saw_login);
    assert_eq!(
        app.exchange(&outcome.code(), &pkce.verifier).await.status(),
        StatusCode::OK
    );
    // Replaying the request the login returned to asks for the password again.
    let replay = browser.get(&app.url(&next)).await;
    assert_eq!(replay.status(), StatusCode::FOUND);
    let location = replay.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with("/login?"), "{location}");
}

#[tokio::test]
async fn consent_posted_after_the_account_was_disabled_issues_no_code() {
    use diesel::prelude::*;
    use provider::storage::schema::users;

    let app = spawn_app().await;
    let browser = app.new_browser();
    browser.log_in(USER_USERNAME, USER_PASSWORD).await;
    let response = browser.get(&app.authorize_url(&Pkce::new(), &[])).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut fields = crate::helpers::hidden_fields(&response.text().await.unwrap());
    fields.push(("decision".into(), "authorize".into()));
    // The account is disabled while the consent page is open.
    let mut conn = app.state.db.conn().expect("db conn");
    diesel::update(users::table.filter(users::username.eq(USER_USERNAME)))
        .set(users::is_active.eq(false))
        .execute(&mut *conn)
        .expect("disable");
    drop(conn);
    let response = browser
        .post_form(&app.url("/oauth/authorize/decision"), &fields)
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with("/login?"), "{location}");
    // Nor is a consent remembered for the disabled account.
    let mut conn = app.state.db.conn().expect("db conn");
    let consents: i64 = provider::storage::schema::consents::table
        .count()
        .get_result(&mut *conn)
        .expect("count");
    assert_eq!(consents, 0);
}
