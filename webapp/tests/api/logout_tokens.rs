//! The back-channel logout endpoint with logout tokens signed by the test provider's real key.

use std::sync::Arc;

use oidc_core::claims::{Audience, LogoutTokenClaims};
use oidc_core::jose::{Algorithm, SigningKey};
use oidc_core::types::{ClientId, IssuerUrl, Subject};
use proptest::prelude::*;
use serde_json::json;
use testkit::{Browser, Stack};

use crate::helpers::{assert_signed_out, session_json};

fn provider_key(stack: &Stack) -> Arc<SigningKey> {
    let keys = &stack.provider.state().keys;
    keys.active(Algorithm::RS256)
        .or_else(|| keys.active(Algorithm::ES256))
        .expect("the provider has a signing key")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn claims(stack: &Stack, sub: Option<&str>, sid: Option<&str>) -> LogoutTokenClaims {
    LogoutTokenClaims::new(
        IssuerUrl::parse(&stack.provider.issuer).unwrap(),
        Audience::Single(ClientId::new(stack.provider.client_id.clone())),
        sub.map(Subject::new),
        sid.map(str::to_owned),
        now(),
        now() + 120,
    )
}

pub fn endpoint(stack: &Stack) -> String {
    stack.webapp.url(&format!(
        "/api/auth/backchannel-logout/{}",
        stack.webapp.provider_id
    ))
}

pub async fn post(stack: &Stack, token: &str) -> (u16, String, Option<String>) {
    let answer = reqwest::Client::new()
        .post(endpoint(stack))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let cache = answer
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, answer.text().await.unwrap(), cache)
}

fn assert_invalid_request(what: &str, (status, body, _): &(u16, String, Option<String>)) {
    assert_eq!(*status, 400, "{what}: {body}");
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["error"], "invalid_request", "{what}: {body}");
    assert!(json["error_description"].is_string(), "{what}: {body}");
}

/// The subject the provider gives the seeded user (the `sub` of the session).
async fn signed_in_sub(stack: &Stack, browser: &Browser) -> String {
    stack.sign_in(browser).await.unwrap();
    // The web app does not show `sub`; its session row has it.
    let store = webapp::store::Store::open(&stack.webapp.database_path).unwrap();
    let subjects = store.active_subjects(now()).await.unwrap();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    subjects[0].clone()
}

#[tokio::test]
async fn bad_logout_tokens_get_400_and_end_nothing() {
    let stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    let sub = signed_in_sub(&stack, &browser).await;
    let key = provider_key(&stack);
    let stranger = SigningKey::generate(key.algorithm()).unwrap();

    let good = claims(&stack, Some(&sub), None);
    let mut wrong_aud = good.clone();
    wrong_aud.aud = Audience::Single(ClientId::new("someone-else"));
    let mut wrong_iss = good.clone();
    wrong_iss.iss = IssuerUrl::parse("http://127.0.0.1:1").unwrap();
    let mut old = good.clone();
    old.iat = now() - 3600;
    let mut future = good.clone();
    future.iat = now() + 3600;
    let mut with_nonce = serde_json::to_value(&good).unwrap();
    with_nonce["nonce"] = json!("n-1");
    let mut without_events = serde_json::to_value(&good).unwrap();
    without_events.as_object_mut().unwrap().remove("events");

    // A token signed by the real key with a changed payload keeps a signature that no longer fits.
    let genuine = key.sign_logout_token(&good).unwrap();
    let parts: Vec<&str> = genuine.split('.').collect();
    let other_payload = key
        .sign_logout_token(&claims(&stack, Some("someone"), None))
        .unwrap();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        other_payload.split('.').nth(1).unwrap(),
        parts[2]
    );

    let cases = [
        (
            "signed by another key",
            stranger.sign_logout_token(&good).unwrap(),
        ),
        ("payload swapped", swapped),
        ("wrong aud", key.sign_logout_token(&wrong_aud).unwrap()),
        ("wrong iss", key.sign_logout_token(&wrong_iss).unwrap()),
        ("iat an hour ago", key.sign_logout_token(&old).unwrap()),
        ("iat in an hour", key.sign_logout_token(&future).unwrap()),
        ("nonce present", key.sign(&with_nonce).unwrap()),
        ("no events", key.sign(&without_events).unwrap()),
        ("garbage", "not-a-token".to_owned()),
    ];
    for (what, token) in &cases {
        assert_invalid_request(what, &post(&stack, token).await);
        assert_eq!(
            session_json(&browser, &stack.webapp).await["user"]["name"],
            "Alice Example",
            "{what}: still signed in"
        );
    }

    // The genuine token works once; its replay is refused.
    let (status, body, cache) = post(&stack, &genuine).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_signed_out(&browser, &stack.webapp).await;
    assert_invalid_request("replayed jti", &post(&stack, &genuine).await);
}

#[tokio::test]
async fn a_replayed_jti_ends_nothing() {
    let stack = Stack::start().await.unwrap();
    let first = Browser::new();
    let sub = signed_in_sub(&stack, &first).await;
    let key = provider_key(&stack);
    // Used once for a subject without sessions.
    let mut used = claims(&stack, Some("nobody"), None);
    assert_eq!(
        post(&stack, &key.sign_logout_token(&used).unwrap()).await.0,
        200
    );
    // The same jti naming the signed-in user: refused, the session lives on.
    used.sub = Some(Subject::new(sub));
    assert_invalid_request(
        "jti reused",
        &post(&stack, &key.sign_logout_token(&used).unwrap()).await,
    );
    assert_eq!(
        session_json(&first, &stack.webapp).await["user"]["name"],
        "Alice Example"
    );
}

#[tokio::test]
async fn a_sub_token_ends_every_session_of_the_user() {
    let stack = Stack::start().await.unwrap();
    let (first, second) = (Browser::new(), Browser::new());
    let sub = signed_in_sub(&stack, &first).await;
    stack.sign_in(&second).await.unwrap();
    let key = provider_key(&stack);
    let token = key
        .sign_logout_token(&claims(&stack, Some(&sub), None))
        .unwrap();
    assert_eq!(post(&stack, &token).await.0, 200);
    assert_signed_out(&first, &stack.webapp).await;
    assert_signed_out(&second, &stack.webapp).await;
}

#[tokio::test]
async fn unknown_provider_get_and_bad_bodies_are_client_errors() {
    let stack = Stack::start().await.unwrap();
    let http = reqwest::Client::new();
    let unknown = http
        .post(stack.webapp.url("/api/auth/backchannel-logout/other"))
        .form(&[("logout_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let get = http.get(endpoint(&stack)).send().await.unwrap();
    assert!(
        matches!(get.status().as_u16(), 404 | 405),
        "{}",
        get.status()
    );
    for body in [
        Vec::new(),
        b"logout_token=a&logout_token=b".to_vec(),
        vec![0xff, 0x00, b'=', 0x80],
        format!("logout_token={}", "A".repeat(12_000)).into_bytes(),
    ] {
        let answer = http
            .post(endpoint(&stack))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400);
    }
    let huge = http
        .post(endpoint(&stack))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert!(
        matches!(huge.status().as_u16(), 400 | 413),
        "{}",
        huge.status()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_logout_tokens_never_get_a_5xx() {
    let stack = Stack::start().await.unwrap();
    let key = provider_key(&stack);
    let base = key
        .sign_logout_token(&claims(&stack, Some("nobody"), Some("s")))
        .unwrap();
    let runtime = tokio::runtime::Handle::current();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    let strategy = (0..base.len(), any::<u8>(), 0usize..4, "\\PC{0,40}");
    let outcome = tokio::task::block_in_place(|| {
        runner.run(&strategy, |(at, byte, kind, junk)| {
            let mut token = base.clone().into_bytes();
            match kind {
                0 => token[at] = byte,
                1 => token.truncate(at),
                2 => token.splice(at..at, junk.bytes()).for_each(drop),
                _ => token = junk.clone().into_bytes(),
            }
            let token = String::from_utf8_lossy(&token).into_owned();
            let (status, body, _) = runtime.block_on(post(&stack, &token));
            prop_assert!(status < 500, "{status} {body}");
            Ok(())
        })
    });
    outcome.unwrap();
}
