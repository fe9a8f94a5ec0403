//! Two `provider serve` processes on one database behind Debian's haproxy, the issuer being the
//! balancer's URL: every piece of state a flow leaves at one replica is honoured by the other.
//! Each test proves which replica served which step by talking to one of them directly, or by
//! haproxy's `X-Served-By` header.
//!
//! Each scenario runs on PostgreSQL and on SQLite (one file shared by both processes); the
//! browser sign-in on PostgreSQL.

mod chromium;
mod failover;
mod keys;
mod throttle;
mod tokens;

use anyhow::{Context, bail, ensure};
use base64::Engine as _;
use oidc_core::pkce::{CodeChallenge, CodeVerifier};
use reqwest::StatusCode;
use serde_json::Value;
use testkit::replicas::{Backend, Replicas, ReplicasOptions};
use testkit::{Browser, Page, is_consent_page, login_form, query_param};
use url::Url;

/// Runs the scenario `async fn $name(backend: Backend)` as two tests, `$name::on_postgres` and
/// `$name::on_sqlite`.
macro_rules! on_each_backend {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn on_postgres() {
                super::$name(testkit::replicas::Backend::Postgres).await
            }

            #[tokio::test]
            async fn on_sqlite() {
                super::$name(testkit::replicas::Backend::Sqlite).await
            }
        }
    };
}
use on_each_backend;

/// Two replicas on a fresh database of `backend` with `env` added to their settings.
async fn two_replicas(backend: Backend, env: &[(&str, &str)]) -> Replicas {
    let mut options = ReplicasOptions::new(backend, 2);
    for (name, value) in env {
        options = options.env(name, *value);
    }
    Replicas::start_with(options)
        .await
        .expect("two replicas behind haproxy start")
}

/// A PKCE pair.
#[derive(Clone)]
struct Pkce {
    verifier: String,
    challenge: String,
}

impl Pkce {
    fn new() -> Self {
        let verifier = CodeVerifier::generate();
        let challenge = CodeChallenge::from_verifier(&verifier);
        Self {
            verifier: verifier.secret().to_owned(),
            challenge: challenge.as_str().to_owned(),
        }
    }
}

/// A code and where it came from.
struct Code {
    code: String,
    /// The URL whose answer was the redirect carrying the code.
    issued_by: Url,
    /// `X-Served-By` of every response on the way (only through the balancer).
    served_by: Vec<String>,
    /// The provider asked for the password on the way.
    saw_login: bool,
}

/// The authorization request of the web app's client at `base` (a replica or the balancer).
fn authorize_url(replicas: &Replicas, base: &str, pkce: &Pkce) -> String {
    let mut url = Url::parse(&format!("{base}/oauth/authorize")).expect("base URL");
    url.query_pairs_mut()
        .append_pair("client_id", &replicas.client_id)
        .append_pair("redirect_uri", &replicas.redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email offline_access")
        .append_pair("state", "state-replicas")
        .append_pair("nonce", "nonce-replicas")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    url.to_string()
}

/// Walks the authorization request at `base` with `browser`'s cookies: logs in as the seeded
/// user when asked, authorizes on a consent page; stops at the redirect to the web app.
async fn code_at(
    browser: &Browser,
    replicas: &Replicas,
    base: &str,
    pkce: &Pkce,
) -> anyhow::Result<Code> {
    let mut page = browser.get(authorize_url(replicas, base, pkce)).await?;
    let mut served_by = Vec::new();
    let mut saw_login = false;
    for _ in 0..20 {
        served_by.extend(page.header(testkit::haproxy::SERVED_BY).map(str::to_owned));
        if let Some(next) = page.location()? {
            if next.as_str().starts_with(&replicas.redirect_uri) {
                ensure!(
                    query_param(&next, "state").as_deref() == Some("state-replicas"),
                    "state came back: {next}"
                );
                let code = query_param(&next, "code")
                    .with_context(|| format!("no code in the redirect {next}"))?;
                return Ok(Code {
                    code,
                    issued_by: page.url,
                    served_by,
                    saw_login,
                });
            }
            page = browser.get(next.as_str()).await?;
        } else if let Ok(mut form) = login_form(&page) {
            saw_login = true;
            form.set("username", &replicas.user.username)
                .set("password", &replicas.user.password);
            page = browser.submit_once(&form).await?;
        } else if is_consent_page(&page) {
            let form = page.form_with_button("Authorize")?.click("Authorize")?;
            page = browser.submit_once(&form).await?;
        } else {
            bail!(
                "unexpected page {} ({}):\n{}",
                page.url,
                page.status,
                page.body
            );
        }
    }
    bail!("no code after 20 steps, at {}", page.url)
}

/// The origin of `url` is `base`'s.
fn at(url: &Url, base: &str) -> bool {
    url.origin() == Url::parse(base).expect("base URL").origin()
}

/// A token request of the web app's client at `base`; the status and JSON body.
async fn token_at(replicas: &Replicas, base: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .basic_auth(&replicas.client_id, Some(&replicas.client_secret))
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = response.status();
    (status, response.json().await.expect("JSON token response"))
}

async fn redeem_at(
    replicas: &Replicas,
    base: &str,
    code: &str,
    pkce: &Pkce,
) -> (StatusCode, Value) {
    token_at(
        replicas,
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &replicas.redirect_uri),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await
}

async fn refresh_at(replicas: &Replicas, base: &str, refresh_token: &str) -> (StatusCode, Value) {
    token_at(
        replicas,
        base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// The status of a userinfo request at `base` with `access_token`.
async fn userinfo_at(base: &str, access_token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{base}/oauth/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo request")
        .status()
}

/// A string field of a JSON body.
fn field<'a>(body: &'a Value, name: &str) -> &'a str {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

/// The JSON of a JWT's part `index` (0: header, 1: claims).
fn jwt_part(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url JWT part");
    serde_json::from_slice(&bytes).expect("JSON JWT part")
}

/// The `kid` in the header of a token response's ID token.
fn id_token_kid(tokens: &Value) -> String {
    jwt_part(field(tokens, "id_token"), 0)["kid"]
        .as_str()
        .expect("the ID token names its key")
        .to_owned()
}

/// Tokens for the seeded user: a code at `code_base`, redeemed at `redeem_base`.
async fn tokens_via(
    browser: &Browser,
    replicas: &Replicas,
    code_base: &str,
    redeem_base: &str,
) -> Value {
    let pkce = Pkce::new();
    let code = code_at(browser, replicas, code_base, &pkce)
        .await
        .expect("a code");
    let (status, tokens) = redeem_at(replicas, redeem_base, &code.code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

/// A login form of the provider at `base` (GET /login), for one guess.
async fn login_page_at(browser: &Browser, base: &str) -> Page {
    let page = browser
        .get(format!("{base}/login"))
        .await
        .expect("login page");
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page
}
