//! Generated and mutated authorization and logout requests over HTTP: never a panic, never a
//! 5xx, always one of the documented answers (a 400 page, the login page, or a redirect to a
//! registered address).

use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};

use crate::helpers::{CLIENT_ID, POST_LOGOUT_REDIRECT_URI, Pkce, REDIRECT_URI, spawn_app};

/// Requests sent per property: bounded so the suite stays quick.
const CASES: u32 = 128;

/// A damaged version of `seed`: parameters dropped, repeated, replaced by odd values, raw bytes
/// appended.
fn mutated(seed: Vec<(String, String)>) -> impl Strategy<Value = String> {
    let names: Vec<String> = seed.iter().map(|(k, _)| k.clone()).collect();
    let value = prop_oneof![
        Just(String::new()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just("none login".to_owned()),
        Just("login consent".to_owned()),
        Just("S256".to_owned()),
        Just("plain".to_owned()),
        Just("code".to_owned()),
        Just("openid".to_owned()),
        Just(REDIRECT_URI.to_owned()),
        Just(format!("{REDIRECT_URI}/x")),
        Just("eyJhbGciOiJub25lIn0.e30.".to_owned()),
        "\\PC{0,40}",
        "[a-zA-Z0-9_-]{0,2000}",
    ];
    let name = prop_oneof![
        prop::sample::select(names),
        prop::sample::select(vec![
            "auth_after".to_owned(),
            "prompt".to_owned(),
            "max_age".to_owned(),
            "request".to_owned(),
            "id_token_hint".to_owned(),
            "csrf_token".to_owned(),
        ]),
        "\\PC{0,8}",
    ];
    let raw = prop::sample::select(vec!["", "&%FF=1", "&a=%", "&=&&", "&x=%C3", "&%00=%00"]);
    (prop::collection::vec((any::<u8>(), name, value), 0..6), raw).prop_map(move |(edits, raw)| {
        let mut pairs = seed.clone();
        for (kind, name, value) in edits {
            match kind % 3 {
                0 => pairs.retain(|(k, _)| *k != name),
                1 => pairs.push((name, value)),
                _ => {
                    pairs.retain(|(k, _)| *k != name);
                    pairs.push((name, value));
                }
            }
        }
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(pairs);
        format!("{}{raw}", query.finish())
    })
}

fn samples(strategy: impl Strategy<Value = String>) -> Vec<String> {
    let mut runner = TestRunner::new(Config::with_cases(CASES));
    (0..CASES)
        .map(|_| {
            strategy
                .new_tree(&mut runner)
                .expect("a generated value")
                .current()
        })
        .collect()
}

fn is_html(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

fn authorize_seed() -> Vec<(String, String)> {
    let pkce = Pkce::new();
    [
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("response_type", "code"),
        ("scope", "openid profile"),
        ("state", "state-123"),
        ("nonce", "nonce-456"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[tokio::test]
async fn mutated_authorization_requests_get_a_documented_answer() {
    let app = spawn_app().await;
    let signed_in = app.new_browser();
    app.code_for_alice(&signed_in).await;
    let anonymous = app.new_browser();
    for (i, query) in samples(mutated(authorize_seed())).into_iter().enumerate() {
        let browser = if i % 2 == 0 { &signed_in } else { &anonymous };
        let url = format!("{}?{query}", app.url("/oauth/authorize"));
        let response = if i % 3 == 0 {
            browser
                .client
                .post(app.url("/oauth/authorize"))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(query.clone())
                .send()
                .await
                .expect("POST")
        } else {
            browser.get(&url).await
        };
        let status = response.status();
        match status {
            StatusCode::FOUND => {
                let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
                if location.starts_with("/login?") {
                    continue;
                }
                let target = url::Url::parse(&location).expect("absolute redirect");
                assert!(location.starts_with(REDIRECT_URI), "{query}: {location}");
                let has = |name: &str| target.query_pairs().any(|(k, _)| k == name);
                assert!(has("code") || has("error"), "{query}: {location}");
                assert!(has("iss"), "{query}: {location}");
            }
            StatusCode::OK | StatusCode::BAD_REQUEST => {
                assert!(is_html(&response), "{query}: {status}");
                assert!(response.headers().get(LOCATION).is_none(), "{query}");
            }
            other => panic!("{query}: unexpected {other}"),
        }
    }
}

#[tokio::test]
async fn mutated_logout_requests_get_a_documented_answer() {
    let app = spawn_app().await;
    let seed: Vec<(String, String)> = [
        ("client_id", CLIENT_ID),
        ("post_logout_redirect_uri", POST_LOGOUT_REDIRECT_URI),
        ("state", "bye"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let signed_in = app.new_browser();
    signed_in.log_in("alice", "alice-password-123").await;
    let anonymous = app.new_browser();
    for (i, query) in samples(mutated(seed)).into_iter().enumerate() {
        let browser = if i % 2 == 0 { &signed_in } else { &anonymous };
        let response = if i % 3 == 0 {
            browser
                .client
                .post(app.url("/oauth/logout"))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(query.clone())
                .send()
                .await
                .expect("POST")
        } else {
            browser
                .get(&format!("{}?{query}", app.url("/oauth/logout")))
                .await
        };
        let status = response.status();
        match status {
            StatusCode::FOUND => {
                let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
                assert!(
                    location.starts_with(POST_LOGOUT_REDIRECT_URI),
                    "{query}: {location}"
                );
            }
            StatusCode::OK | StatusCode::BAD_REQUEST => {
                assert!(is_html(&response), "{query}: {status}");
                assert!(response.headers().get(LOCATION).is_none(), "{query}");
            }
            other => panic!("{query}: unexpected {other}"),
        }
    }
}
