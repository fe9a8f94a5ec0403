//! Every parser of outside input, fed generated and mutated values through the running web app:
//! the session and flow cookies, the callback's query, the sign-in and sign-out forms. Never a
//! panic, never a 5xx, always the documented answer.
//!
//! proptest drives synchronous tests, so each test runs its stack on a runtime of its own and
//! blocks on one request at a time; the case count is fixed to bound CI time.

use proptest::prelude::*;
use proptest::sample::Index;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use testkit::{Browser, Stack};
use tokio::runtime::Runtime;
use url::Url;

use crate::helpers::{FLOW_COOKIE, SESSION_COOKIE, run_until_callback, url};

const CASES: u32 = 128;

/// A stack on its own runtime, a signed-in browser's cookies and CSRF token, and a sign-in
/// stopped before its callback.
struct Fixture {
    runtime: Runtime,
    stack: Option<Stack>,
    http: reqwest::Client,
    session_cookie: String,
    csrf_token: String,
    callback: Url,
    flow_cookie: String,
}

impl Fixture {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (stack, session_cookie, csrf_token, callback, flow_cookie) = runtime.block_on(async {
            let stack = Stack::start().await.unwrap();
            let browser = Browser::new();
            stack.sign_in(&browser).await.unwrap();
            let site = url(&stack.webapp.url("/"));
            let session_cookie = browser.cookie(&site, SESSION_COOKIE).unwrap();
            let csrf: serde_json::Value = browser
                .get(stack.webapp.url("/api/auth/csrf"))
                .await
                .unwrap()
                .json()
                .unwrap();
            let csrf_token = csrf["csrfToken"].as_str().unwrap().to_owned();
            let starter = Browser::new();
            let callback = run_until_callback(&starter, &stack).await.unwrap();
            let flow_cookie = starter.cookie(&callback, FLOW_COOKIE).unwrap();
            (stack, session_cookie, csrf_token, callback, flow_cookie)
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            runtime,
            stack: Some(stack),
            http,
            session_cookie,
            csrf_token,
            callback,
            flow_cookie,
        }
    }

    fn webapp_url(&self, path: &str) -> String {
        self.stack.as_ref().unwrap().webapp.url(path)
    }

    fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        self.runtime.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get(LOCATION)
                .map(|v| v.to_str().unwrap_or("").to_owned());
            let set_cookies = response
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap_or("").to_owned())
                .collect();
            let body = response.text().await.unwrap_or_default();
            Answer {
                status,
                location,
                set_cookies,
                body,
            }
        })
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let stack = self.stack.take();
        self.runtime.block_on(async move { drop(stack) });
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

/// How a genuine value is damaged.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(Index),
    Replace(Index, char),
    Insert(Index, String),
    Remove(Index, usize),
    Repeat(usize),
    Append(String),
    Instead(String),
}

/// Characters a cookie value may carry (RFC 6265 cookie-octet), so the request is well-formed
/// and reaches the parser.
const COOKIE_OCTETS: &str = "[!#-+\\-./0-9:<-\\[\\]-~]";

fn mutation() -> impl Strategy<Value = Mutation> {
    let octet = proptest::string::string_regex(COOKIE_OCTETS).unwrap();
    let octets = || proptest::string::string_regex(&format!("{COOKIE_OCTETS}{{0,40}}")).unwrap();
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), octet).prop_map(|(i, c)| Mutation::Replace(i, c.chars().next().unwrap())),
        (any::<Index>(), octets()).prop_map(|(i, s)| Mutation::Insert(i, s)),
        (any::<Index>(), 1..40usize).prop_map(|(i, n)| Mutation::Remove(i, n)),
        // Up to about 8 KB: huge, but within the server's header limits.
        (2..10usize).prop_map(Mutation::Repeat),
        octets().prop_map(Mutation::Append),
        octets().prop_map(Mutation::Instead),
    ]
}

/// `original` damaged by `mutation` (cookie values are ASCII, so byte indexes are safe).
fn mutate(original: &str, mutation: &Mutation) -> String {
    let mut value = original.to_owned();
    let at = |i: &Index| i.index(original.len() + 1);
    match mutation {
        Mutation::Truncate(i) => value.truncate(at(i)),
        Mutation::Replace(i, c) => {
            let i = at(i).min(original.len().saturating_sub(1));
            value.replace_range(i..(i + 1).min(original.len()), &c.to_string());
        }
        Mutation::Insert(i, s) => value.insert_str(at(i), s),
        Mutation::Remove(i, n) => {
            let i = at(i);
            value.replace_range(i..(i + n).min(original.len()), "");
        }
        Mutation::Repeat(n) => value = original.repeat(*n),
        Mutation::Append(s) => value.push_str(s),
        Mutation::Instead(s) => value.clone_from(s),
    }
    value
}

fn removes_cookie(answer: &Answer, name: &str) -> bool {
    answer
        .set_cookies
        .iter()
        .any(|c| c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0"))
}

#[test]
fn damaged_session_cookies_count_as_signed_out() {
    let fixture = Fixture::start();
    proptest!(ProptestConfig::with_cases(CASES), |(mutation in mutation())| {
        let forged = mutate(&fixture.session_cookie, &mutation);
        prop_assume!(forged != fixture.session_cookie);
        let cookie = format!("{SESSION_COOKIE}={forged}");
        let session = fixture.send(
            fixture.http.get(fixture.webapp_url("/api/auth/session")).header(COOKIE, &cookie),
        );
        prop_assert_eq!(session.status, 200, "{:?}", session);
        prop_assert_eq!(session.body.as_str(), "{}");
        let home = fixture.send(fixture.http.get(fixture.webapp_url("/")).header(COOKIE, &cookie));
        prop_assert_eq!(home.status, 302, "{:?}", home);
        prop_assert!(
            home.location.as_deref().is_some_and(|l| l.starts_with("/api/auth/signin?")),
            "{:?}", home
        );
    });
}

#[test]
fn damaged_flow_cookies_are_refused_at_the_callback() {
    let fixture = Fixture::start();
    proptest!(ProptestConfig::with_cases(CASES), |(mutation in mutation())| {
        let forged = mutate(&fixture.flow_cookie, &mutation);
        prop_assume!(forged != fixture.flow_cookie);
        let answer = fixture.send(
            fixture
                .http
                .get(fixture.callback.as_str())
                .header(COOKIE, format!("{FLOW_COOKIE}={forged}")),
        );
        prop_assert_eq!(answer.status, 400, "{:?}", answer);
        prop_assert!(answer.body.contains("Sign-in could not be completed"));
        prop_assert!(answer.location.is_none());
        prop_assert!(removes_cookie(&answer, FLOW_COOKIE), "{:?}", answer.set_cookies);
    });
}

/// Query strings built from the callback's parameters, repeated, empty, encoded or garbled.
fn callback_query() -> impl Strategy<Value = String> {
    let pair = prop_oneof![
        "code=[A-Za-z0-9_%-]{0,12}",
        "state=[A-Za-z0-9_%-]{0,12}",
        "iss=(http%3A%2F%2F127.0.0.1%3A[0-9]{1,5}|[a-z%:/.]{0,12})",
        "error=(access_denied|server_error|[a-z_%]{0,12})",
        "error_description=[a-z+%]{0,12}",
        "[a-z]{0,6}(=[^&#]{0,6})?",
        "%[0-9a-fA-F]{0,2}",
        "[=&+;]{1,3}",
    ];
    proptest::collection::vec(pair, 0..8).prop_map(|pairs| pairs.join("&"))
}

#[test]
fn garbled_callback_queries_are_refused() {
    let fixture = Fixture::start();
    let base = {
        let mut base = fixture.callback.clone();
        base.set_query(None);
        base
    };
    proptest!(ProptestConfig::with_cases(CASES), |(query in callback_query())| {
        // The genuine flow cookie comes along: the first case spends it, the others replay it.
        let answer = fixture.send(
            fixture
                .http
                .get(format!("{base}?{query}"))
                .header(COOKIE, format!("{FLOW_COOKIE}={}", fixture.flow_cookie)),
        );
        prop_assert_eq!(answer.status, 400, "{:?} {:?}", query, answer);
        prop_assert!(answer.location.is_none(), "{:?}", answer);
        prop_assert!(removes_cookie(&answer, FLOW_COOKIE));
        prop_assert!(!answer.set_cookies.iter().any(|c| c.starts_with(SESSION_COOKIE)));
    });
}

/// Form bodies: the forms' fields with damaged or foreign values, repeated fields, raw bytes.
fn form_body(genuine_token: String) -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        mutation().prop_map(move |m| format!("csrfToken={}", mutate(&genuine_token, &m))),
        "csrfToken=[A-Za-z0-9_%-]{0,50}",
        "callbackUrl=[/a-z%.:\\\\]{0,20}",
        "[a-zA-Z]{0,8}(=[^&]{0,8})?",
        "%[0-9a-fA-F]{0,2}",
    ];
    prop_oneof![
        proptest::collection::vec(field, 0..5).prop_map(|f| f.join("&").into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..200),
    ]
}

fn content_type() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => Just("application/x-www-form-urlencoded"),
        1 => Just("application/json"),
        1 => Just("text/plain"),
        1 => Just("multipart/form-data; boundary=x"),
    ]
}

#[test]
fn forged_sign_in_forms_are_refused() {
    let fixture = Fixture::start();
    let token = fixture.csrf_token.clone();
    let genuine = format!("csrfToken={}", fixture.csrf_token);
    proptest!(ProptestConfig::with_cases(CASES), |(body in form_body(token), kind in content_type())| {
        prop_assume!(!String::from_utf8_lossy(&body).split('&').any(|f| f == genuine));
        let answer = fixture.send(
            fixture
                .http
                .post(fixture.webapp_url("/api/auth/signin/provider"))
                .header(COOKIE, format!("{SESSION_COOKIE}={}", fixture.session_cookie))
                .header(CONTENT_TYPE, kind)
                .body(body.clone()),
        );
        // 403 for a form without the session's token, 400 for one that does not parse.
        prop_assert!(matches!(answer.status, 400 | 403), "{:?}", answer);
        prop_assert!(answer.location.is_none(), "{:?}", answer);
        prop_assert!(!answer.set_cookies.iter().any(|c| c.starts_with(FLOW_COOKIE)));
    });
}

#[test]
fn forged_sign_out_forms_are_refused_and_keep_the_session() {
    let fixture = Fixture::start();
    let token = fixture.csrf_token.clone();
    let genuine = format!("csrfToken={}", fixture.csrf_token);
    proptest!(ProptestConfig::with_cases(CASES), |(body in form_body(token), kind in content_type())| {
        prop_assume!(!String::from_utf8_lossy(&body).split('&').any(|f| f == genuine));
        let answer = fixture.send(
            fixture
                .http
                .post(fixture.webapp_url("/api/auth/signout"))
                .header(COOKIE, format!("{SESSION_COOKIE}={}", fixture.session_cookie))
                .header(CONTENT_TYPE, kind)
                .body(body.clone()),
        );
        prop_assert!(matches!(answer.status, 400 | 403), "{:?}", answer);
        prop_assert!(answer.location.is_none(), "{:?}", answer);
        prop_assert!(!answer.set_cookies.iter().any(|c| c.starts_with(SESSION_COOKIE)));
    });
}

#[test]
fn oversized_cookies_get_a_client_error() {
    let fixture = Fixture::start();
    for name in [SESSION_COOKIE, FLOW_COOKIE] {
        let cookie = format!("{name}={}", "A".repeat(64 * 1024));
        let answer = fixture.send(
            fixture
                .http
                .get(fixture.callback.as_str())
                .header(COOKIE, cookie),
        );
        assert!((400..500).contains(&answer.status), "{name}: {answer:?}");
    }
}
