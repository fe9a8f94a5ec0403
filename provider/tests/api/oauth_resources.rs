//! Userinfo, introspection, revocation and the protected profile API.

use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;

use crate::helpers::{
    CLIENT_ID, CLIENT_SECRET, ClientSpec, Consent, Pkce, TestApp, USER_PASSWORD, USER_USERNAME,
    spawn_app, spawn_app_with,
};

fn assert_invalid_token(response: &reqwest::Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[tokio::test]
async fn missing_malformed_expired_or_revoked_token_is_401_with_bearer_invalid_token() {
    let app = spawn_app_with(|s| s.access_token_ttl_secs = 1).await;
    let tokens = app.tokens_for_alice().await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let url = app.url("/oauth/userinfo");

    assert_invalid_token(&app.http.get(&url).send().await.unwrap());
    for header in [
        "Bearer",
        "Bearer ",
        "Basic abc",
        "bearer-ish token",
        "Bearer not-a-token",
    ] {
        let response = app
            .http
            .get(&url)
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_invalid_token(&response);
    }
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_invalid_token(
        &app.http
            .get(&url)
            .bearer_auth(&access)
            .send()
            .await
            .unwrap(),
    );

    // Revoked.
    let app = spawn_app().await;
    let tokens = app.tokens_for_alice().await;
    let access = tokens["access_token"].as_str().unwrap();
    let url = app.url("/oauth/userinfo");
    assert_eq!(
        app.http
            .get(&url)
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let revoked = app
        .http
        .post(app.url("/oauth/revoke"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_invalid_token(&app.http.get(&url).bearer_auth(access).send().await.unwrap());
    assert_invalid_token(
        &app.http
            .post(&url)
            .form(&[("access_token", access)])
            .send()
            .await
            .unwrap(),
    );
}

#[tokio::test]
async fn token_by_header_and_by_post_body_both_work_get_and_post() {
    let app = spawn_app().await;
    let tokens = app.tokens_for_alice().await;
    let access = tokens["access_token"].as_str().unwrap();
    let url = app.url("/oauth/userinfo");
    let responses = [
        app.http.get(&url).bearer_auth(access).send().await.unwrap(),
        app.http
            .post(&url)
            .bearer_auth(access)
            .send()
            .await
            .unwrap(),
        app.http
            .post(&url)
            .form(&[("access_token", access)])
            .send()
            .await
            .unwrap(),
    ];
    for response in responses {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let info: serde_json::Value = response.json().await.unwrap();
        assert_eq!(info["email"], "alice@example.com");
        assert_eq!(info["name"], "Alice Example");
        assert_eq!(info["preferred_username"], USER_USERNAME);
        assert_eq!(
            info["sub"],
            crate::helpers::jwt_claims(tokens["id_token"].as_str().unwrap())["sub"]
        );
    }
    // Both ways at once is a malformed request.
    let response = app
        .http
        .post(&url)
        .bearer_auth(access)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn userinfo_releases_only_the_claims_of_the_granted_scopes() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("scope", "openid email")]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    let tokens: serde_json::Value = app
        .exchange(&outcome.code(), &pkce.verifier)
        .await
        .json()
        .await
        .unwrap();
    let info: serde_json::Value = app
        .http
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["email"], "alice@example.com");
    assert!(
        info.get("name").is_none() && info.get("preferred_username").is_none(),
        "{info}"
    );
}

#[tokio::test]
async fn revocation_of_an_unknown_token_is_200() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(app.url("/oauth/revoke"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("token", "no-such-token"),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Still authenticated: a wrong secret is refused.
    let response = app
        .http
        .post(app.url("/oauth/revoke"))
        .basic_auth(CLIENT_ID, Some("wrong"))
        .form(&[("token", "no-such-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_grant() {
    let app = spawn_app().await;
    let tokens = app.tokens_for_alice().await;
    let response = app
        .http
        .post(app.url("/oauth/revoke"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", tokens["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .http
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_invalid_token(&response);
    let refresh = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refresh.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn revocation_by_another_client_does_not_revoke() {
    let app = spawn_app().await;
    let other = app.add_client(ClientSpec::confidential("other")).unwrap();
    let tokens = app.tokens_for_alice().await;
    let access = tokens["access_token"].as_str().unwrap();
    let response = app
        .http
        .post(app.url("/oauth/revoke"))
        .basic_auth("other", Some(&other))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .http
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn introspection_by_an_unauthenticated_caller_is_401() {
    let app = spawn_app().await;
    let tokens = app.tokens_for_alice().await;
    let access = tokens["access_token"].as_str().unwrap();
    let url = app.url("/oauth/introspect");
    let unauthenticated = app
        .http
        .post(&url)
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert!(unauthenticated.headers().contains_key(WWW_AUTHENTICATE));
    let wrong = app
        .http
        .post(&url)
        .basic_auth(CLIENT_ID, Some("wrong"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn introspection_describes_active_and_inactive_tokens() {
    let app = spawn_app().await;
    let tokens = app.tokens_for_alice().await;
    let introspect = |token: String| {
        let app = &app;
        async move {
            let response = app
                .http
                .post(app.url("/oauth/introspect"))
                .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    let access = introspect(tokens["access_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(access["active"], true);
    assert_eq!(access["client_id"], CLIENT_ID);
    assert_eq!(access["username"], USER_USERNAME);
    assert_eq!(access["token_type"], "Bearer");
    assert_eq!(access["iss"], app.issuer());
    assert!(access["scope"].as_str().unwrap().contains("openid"));
    assert!(access["exp"].as_i64().unwrap() > access["iat"].as_i64().unwrap());
    let refresh = introspect(tokens["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["token_type"], "refresh_token");
    let unknown = introspect("nope".to_owned()).await;
    assert_eq!(unknown, serde_json::json!({ "active": false }));
}

#[tokio::test]
async fn api_profile_needs_a_bearer_token_with_profile_scope() {
    let app = spawn_app().await;
    let url = app.url("/api/profile");
    let missing = app.http.get(&url).send().await.unwrap();
    assert_invalid_token(&missing);
    let invalid = app
        .http
        .get(&url)
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_invalid_token(&invalid);

    let tokens = app.tokens_for_alice().await;
    let response = app
        .http
        .get(&url)
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let profile: serde_json::Value = response.json().await.unwrap();
    assert_eq!(profile["username"], USER_USERNAME);
    assert_eq!(profile["name"], "Alice Example");
    assert_eq!(profile["email"], "alice@example.com");

    // Without the profile scope: 403 insufficient_scope.
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("scope", "openid email")]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    let tokens: serde_json::Value = app
        .exchange(&outcome.code(), &pkce.verifier)
        .await
        .json()
        .await
        .unwrap();
    let response = app
        .http
        .get(&url)
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
}

/// POSTs `token` to the introspection endpoint as `client` and returns the JSON answer.
async fn introspect_as(app: &TestApp, client: (&str, &str), token: &str) -> serde_json::Value {
    let response = app
        .http
        .post(app.url("/oauth/introspect"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

/// Tokens issued to the client `id` (registered with the usual redirect URI) for alice.
async fn tokens_for_client(app: &TestApp, id: &str, secret: &str) -> serde_json::Value {
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("client_id", id)]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    let response = app
        .token_request(
            (id, secret),
            &[
                ("grant_type", "authorization_code"),
                ("code", &outcome.code()),
                ("redirect_uri", crate::helpers::REDIRECT_URI),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_client_introspecting_another_clients_tokens_learns_nothing() {
    let app = spawn_app().await;
    let other = app.add_client(ClientSpec::confidential("other")).unwrap();
    let tokens = app.tokens_for_alice().await;
    let inactive = serde_json::json!({ "active": false });
    for token in ["access_token", "refresh_token"] {
        let token = tokens[token].as_str().unwrap();
        assert_eq!(
            introspect_as(&app, ("other", &other), token).await,
            inactive
        );
        // The owner still sees it.
        assert_eq!(
            introspect_as(&app, (CLIENT_ID, CLIENT_SECRET), token).await["active"],
            true
        );
    }
    // The other way round too: webapp learns nothing about other's tokens.
    let others = tokens_for_client(&app, "other", &other).await;
    for token in ["access_token", "refresh_token"] {
        let token = others[token].as_str().unwrap();
        assert_eq!(
            introspect_as(&app, (CLIENT_ID, CLIENT_SECRET), token).await,
            inactive
        );
        let own = introspect_as(&app, ("other", &other), token).await;
        assert_eq!(own["active"], true);
        assert_eq!(own["client_id"], "other");
    }
}

#[tokio::test]
async fn revocation_of_a_refresh_token_by_another_client_does_not_revoke() {
    let app = spawn_app().await;
    let other = app.add_client(ClientSpec::confidential("other")).unwrap();
    let tokens = app.tokens_for_alice().await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let response = app
        .http
        .post(app.url("/oauth/revoke"))
        .basic_auth("other", Some(&other))
        .form(&[("token", refresh), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Neither the refresh token nor the access token of its grant was touched.
    let refreshed = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_resource_server_introspects_access_tokens_of_other_clients_but_not_refresh_tokens() {
    use provider::storage::clients::{self, ClientInput};
    let app = spawn_app().await;
    let mut input = ClientInput::new("Profile API", vec!["https://api.example/cb".to_owned()]);
    input.id = Some("api".to_owned());
    input.can_introspect = true;
    let (_, secret) = clients::create(&mut app.state.db.conn().unwrap(), &input, &[]).unwrap();
    let secret = secret.unwrap();
    let api = ("api", secret.secret());
    let tokens = app.tokens_for_alice().await;

    let access = introspect_as(&app, api, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(access["active"], true, "{access}");
    assert_eq!(access["client_id"], CLIENT_ID);
    assert_eq!(access["username"], USER_USERNAME);
    assert!(access["sub"].is_string());
    let refresh = introspect_as(&app, api, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refresh, serde_json::json!({ "active": false }));

    // The flag is what makes the difference: once it is off, the access token is hidden too.
    input.can_introspect = false;
    clients::update(&mut app.state.db.conn().unwrap(), "api", &input, &[])
        .unwrap()
        .unwrap();
    let access = introspect_as(&app, api, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(access, serde_json::json!({ "active": false }));
}

/// Generated and mutated `Authorization` headers and bodies at the token, introspection and
/// userinfo endpoints over HTTP: always the documented 4xx, never a 5xx or a dropped connection.
#[test]
fn generated_authorization_headers_get_the_documented_errors_over_http() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app());
    let header = prop_oneof![
        "\\PC{0,60}".prop_map(|v| v.into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..60),
        ("(Bearer|bearer|BEARER|Basic|basic) ?", "[ -~]{0,60}")
            .prop_map(|(s, t)| format!("{s}{t}").into_bytes()),
    ];
    let mut runner = TestRunner::new(Config::with_cases(64));
    runner
        .run(&header, |value| {
            let Ok(value) = reqwest::header::HeaderValue::from_bytes(&value) else {
                return Ok(());
            };
            runtime.block_on(async {
                let userinfo = app
                    .http
                    .get(app.url("/oauth/userinfo"))
                    .header("authorization", value.clone())
                    .send()
                    .await
                    .expect("an answer, not a dropped connection");
                // Not a valid token whatever it is: 401 Bearer invalid_token (400 only for a
                // request that is malformed in another way).
                assert!(
                    matches!(userinfo.status().as_u16(), 400 | 401),
                    "{value:?}: {}",
                    userinfo.status()
                );
                let challenge = userinfo.headers()[WWW_AUTHENTICATE].to_str().unwrap();
                assert!(challenge.starts_with("Bearer"), "{challenge}");
                for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
                    let response = app
                        .http
                        .post(app.url(path))
                        .header("authorization", value.clone())
                        .form(&[
                            ("grant_type", "refresh_token"),
                            ("token", "x"),
                            ("refresh_token", "x"),
                        ])
                        .send()
                        .await
                        .expect("an answer, not a dropped connection");
                    assert!(
                        response.status() == StatusCode::UNAUTHORIZED
                            || response.status() == StatusCode::BAD_REQUEST,
                        "{path} {value:?}: {}",
                        response.status()
                    );
                    if response.status() == StatusCode::UNAUTHORIZED {
                        assert!(response.headers().contains_key(WWW_AUTHENTICATE));
                    }
                    let body: serde_json::Value = response.json().await.expect("a JSON error");
                    assert!(
                        ["invalid_client", "invalid_request", "invalid_grant"]
                            .contains(&body["error"].as_str().unwrap_or_default()),
                        "{path} {value:?}: {body}"
                    );
                }
            });
            Ok(())
        })
        .unwrap();
}
