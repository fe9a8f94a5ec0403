//! Discovery metadata and the published key set.

use reqwest::StatusCode;

use crate::helpers::{TestApp, spawn_app};

#[tokio::test]
async fn discovery_answers_with_and_without_trailing_slash() {
    let app = spawn_app().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/openid-configuration/",
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let m: serde_json::Value = response.json().await.unwrap();
        assert_eq!(m["issuer"], app.issuer());
        assert_eq!(m["authorization_endpoint"], app.url("/oauth/authorize"));
        assert_eq!(m["token_endpoint"], app.url("/oauth/token"));
        assert_eq!(m["userinfo_endpoint"], app.url("/oauth/userinfo"));
        assert_eq!(m["jwks_uri"], app.url("/oauth/jwks"));
        assert_eq!(m["revocation_endpoint"], app.url("/oauth/revoke"));
        assert_eq!(m["introspection_endpoint"], app.url("/oauth/introspect"));
        assert_eq!(m["end_session_endpoint"], app.url("/oauth/logout"));
        assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(m["subject_types_supported"], serde_json::json!(["public"]));
        assert_eq!(
            m["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        for scope in ["openid", "profile", "email", "offline_access"] {
            assert!(
                m["scopes_supported"]
                    .as_array()
                    .unwrap()
                    .contains(&scope.into()),
                "{scope}"
            );
        }
        for method in ["client_secret_basic", "client_secret_post", "none"] {
            assert!(
                m["token_endpoint_auth_methods_supported"]
                    .as_array()
                    .unwrap()
                    .contains(&method.into()),
                "{method}"
            );
        }
        for grant in ["authorization_code", "refresh_token"] {
            assert!(
                m["grant_types_supported"]
                    .as_array()
                    .unwrap()
                    .contains(&grant.into())
            );
        }
        assert!(
            m["id_token_signing_alg_values_supported"]
                .as_array()
                .unwrap()
                .contains(&"RS256".into())
        );
        for claim in [
            "sub",
            "name",
            "email",
            "email_verified",
            "preferred_username",
            "auth_time",
        ] {
            assert!(
                m["claims_supported"]
                    .as_array()
                    .unwrap()
                    .contains(&claim.into()),
                "{claim}"
            );
        }
    }
}

#[tokio::test]
async fn jwks_publishes_every_key_with_kid_use_alg_and_is_cacheable() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/oauth/jwks")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cache.contains("max-age="), "{cache}");
    let jwks: serde_json::Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        assert!(key["kid"].is_string(), "{key}");
        assert_eq!(key["use"], "sig");
        assert!(key["alg"] == "RS256" || key["alg"] == "ES256", "{key}");
        assert!(key.get("d").is_none(), "no private parts: {key}");
    }
    assert!(keys.iter().any(|k| k["alg"] == "RS256"));
}

/// The `kid` in the header of a JWT.
fn kid_of(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().expect("a header");
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .expect("base64url"),
    )
    .expect("JSON header");
    header["kid"].as_str().expect("a kid").to_owned()
}

/// Verifies an ID token of alice's flow against the key set published right now.
async fn verify_with_published_keys(
    app: &TestApp,
    id_token: &str,
) -> Result<(), oidc_core::jose::VerifyError> {
    let jwks: oidc_core::jwk::JwkSet = app.published_keys().await;
    oidc_core::jose::IdTokenVerifier::new(
        oidc_core::types::IssuerUrl::parse(app.issuer()).unwrap(),
        oidc_core::types::ClientId::new(crate::helpers::CLIENT_ID),
        jwks,
    )
    .verify(
        id_token,
        Some(&oidc_core::types::Nonce::new("nonce-456")),
        None,
    )
    .map(|_| ())
}

#[tokio::test]
async fn rotated_key_signs_new_tokens_and_old_tokens_verify_until_retired() {
    let app = spawn_app().await;
    let before = app.tokens_for_alice().await;
    let old_token = before["id_token"].as_str().unwrap().to_owned();
    let old_kid = kid_of(&old_token);

    let new_kid = app
        .state
        .keys
        .rotate(oidc_core::jose::Algorithm::RS256)
        .await
        .unwrap();
    assert_ne!(new_kid, old_kid);
    let after = app.tokens_for_alice().await;
    let new_token = after["id_token"].as_str().unwrap().to_owned();
    assert_eq!(kid_of(&new_token), new_kid, "new tokens use the new key");
    verify_with_published_keys(&app, &new_token).await.unwrap();
    verify_with_published_keys(&app, &old_token)
        .await
        .expect("the old key is still published");

    app.state.keys.retire(&old_kid).await.unwrap();
    let error = verify_with_published_keys(&app, &old_token)
        .await
        .unwrap_err();
    assert!(error.is_unknown_key(), "{error:?}");
    verify_with_published_keys(&app, &new_token).await.unwrap();
}
