//! The OAuth 2.0 / OpenID Connect exchanges a browser and a relying party make with the provider.

use std::net::SocketAddr;

use anyhow::{Context, anyhow, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::StatusCode;
use hyper::header::{self, HeaderValue};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use htmlform::Document;

use crate::http::{Agent, Conn, Response, expect_status};
use crate::pages::{consent_choice, fill_login, login_form};
use crate::stats::Steps;

/// What the generator needs to know about the provider under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where the provider listens.
    pub addr: SocketAddr,
    /// The issuer URL as configured (`http://127.0.0.1:PORT`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    pub username: String,
    pub password: String,
    pub scope: String,
}

/// Paths of the endpoints, read from the discovery document.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub discovery: String,
    pub authorize: String,
    pub token: String,
    pub userinfo: String,
    pub jwks: String,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    jwks_uri: String,
}

/// The shared, read-only context of every virtual user.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub target: Target,
    pub endpoints: Endpoints,
    /// The issuer, parsed: pages' form actions are resolved against it.
    issuer_url: url::Url,
    basic_auth: HeaderValue,
}

/// Tokens from a token response.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
}

/// What happened along a browser flow, beyond its latency.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlowPages {
    pub login_pages: u32,
    pub consent_pages: u32,
}

pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

impl Ctx {
    /// Reads the discovery document and checks it names the expected issuer.
    pub async fn discover(target: Target) -> anyhow::Result<Self> {
        let mut conn = Conn::new(target.addr);
        let response = conn.get(DISCOVERY_PATH, &[]).await?;
        expect_status(&response, StatusCode::OK).context("discovery")?;
        let doc: Discovery =
            serde_json::from_slice(&response.body).context("discovery document")?;
        ensure!(
            doc.issuer == target.issuer,
            "discovery names issuer {} instead of {}",
            doc.issuer,
            target.issuer
        );
        let path = |url: &str| local_path(&target.issuer, url);
        let endpoints = Endpoints {
            discovery: DISCOVERY_PATH.to_owned(),
            authorize: path(&doc.authorization_endpoint)?,
            token: path(&doc.token_endpoint)?,
            userinfo: path(&doc.userinfo_endpoint)?,
            jwks: path(&doc.jwks_uri)?,
        };
        let credentials = format!(
            "{}:{}",
            url::form_urlencoded::byte_serialize(target.client_id.as_bytes()).collect::<String>(),
            url::form_urlencoded::byte_serialize(target.client_secret.as_bytes())
                .collect::<String>()
        );
        let basic_auth = HeaderValue::from_str(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        ))?;
        Ok(Self {
            issuer_url: url::Url::parse(&target.issuer).context("issuer URL")?,
            target,
            endpoints,
            basic_auth,
        })
    }

    /// A browser flow from the authorization request to the access token and userinfo: logs in
    /// on the way when `login` is set (and `prompt=consent` asks for the consent page again),
    /// and fails if a signed-in agent is sent to the login page.
    pub async fn browser_flow(
        &self,
        agent: &mut Agent,
        rp: &mut Conn,
        login: bool,
        steps: &mut Steps,
    ) -> anyhow::Result<(Tokens, FlowPages)> {
        let verifier = random_token(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let state = random_token(16);
        let nonce = random_token(16);
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.target.client_id)
            .append_pair("redirect_uri", &self.target.redirect_uri)
            .append_pair("scope", &self.target.scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if login {
            query.append_pair("prompt", "consent");
        }
        let start = format!("{}?{}", self.endpoints.authorize, query.finish());
        let (code, pages) = self
            .drive_to_code(agent, &start, login, &state, steps)
            .await?;
        let tokens = self.exchange_code(rp, &code, &verifier, steps).await?;
        self.userinfo(rp, &tokens.access_token, steps).await?;
        Ok((tokens, pages))
    }

    /// Follows the provider's redirects and fills its forms until it redirects to the client.
    async fn drive_to_code(
        &self,
        agent: &mut Agent,
        start: &str,
        login: bool,
        state: &str,
        steps: &mut Steps,
    ) -> anyhow::Result<(String, FlowPages)> {
        let mut pages = FlowPages::default();
        let mut current = start.to_owned();
        let mut post: Option<String> = None;
        for _ in 0..12 {
            let started = std::time::Instant::now();
            let (method, response) = match post.take() {
                Some(body) => ("POST", agent.post_form(&current, body).await?),
                None => ("GET", agent.get(&current).await?),
            };
            steps.record(method, &current, started.elapsed());
            if response.status.is_redirection() {
                let location = response
                    .location()
                    .ok_or_else(|| anyhow!("redirect without Location from {current}"))?;
                if let Some(query) = location
                    .strip_prefix(&self.target.redirect_uri)
                    .and_then(|rest| rest.strip_prefix('?'))
                {
                    return Ok((code_from_redirect(query, state)?, pages));
                }
                current = resolve(&self.target.issuer, &current, location)?;
                continue;
            }
            if response.status != StatusCode::OK {
                bail!("{method} {}: {}", path_only(&current), response.describe());
            }
            let page_url = self.issuer_url.join(&current)?;
            let forms = Document::parse(&response.text()).forms(&page_url)?;
            if let Some(form) = login_form(&forms) {
                if !login || pages.login_pages > 0 {
                    bail!("unexpected login page at {}", path_only(&current));
                }
                pages.login_pages += 1;
                let form = fill_login(form, &self.target.username, &self.target.password)?;
                post = Some(form.encode());
                current = local_path(&self.target.issuer, form.action.as_str())?;
                continue;
            }
            if let Some(form) = consent_choice(&forms) {
                if pages.consent_pages > 0 {
                    bail!("consent page shown twice");
                }
                pages.consent_pages += 1;
                post = Some(form.encode());
                current = local_path(&self.target.issuer, form.action.as_str())?;
                continue;
            }
            bail!(
                "page without login or consent form at {}: {}",
                path_only(&current),
                response.describe()
            );
        }
        bail!("too many redirects or pages before the code")
    }

    /// Authorization-code grant (client_secret_basic, PKCE verifier).
    pub async fn exchange_code(
        &self,
        rp: &mut Conn,
        code: &str,
        verifier: &str,
        steps: &mut Steps,
    ) -> anyhow::Result<Tokens> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", &self.target.redirect_uri)
            .append_pair("code_verifier", verifier)
            .finish();
        let tokens = self.token_request(rp, body, steps).await?;
        Ok(tokens)
    }

    /// Refresh-token grant; returns the new tokens (the refresh token rotates).
    pub async fn refresh(
        &self,
        rp: &mut Conn,
        refresh_token: &str,
        steps: &mut Steps,
    ) -> anyhow::Result<Tokens> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", refresh_token)
            .finish();
        self.token_request(rp, body, steps).await
    }

    async fn token_request(
        &self,
        rp: &mut Conn,
        body: String,
        steps: &mut Steps,
    ) -> anyhow::Result<Tokens> {
        let started = std::time::Instant::now();
        let response = rp
            .post_form(
                &self.endpoints.token,
                &[(header::AUTHORIZATION, self.basic_auth.clone())],
                body,
            )
            .await?;
        steps.record("POST", &self.endpoints.token, started.elapsed());
        expect_status(&response, StatusCode::OK).context("token endpoint")?;
        let parsed: TokenResponse =
            serde_json::from_slice(&response.body).context("token response")?;
        ensure!(
            parsed.token_type.eq_ignore_ascii_case("bearer"),
            "token_type {}",
            parsed.token_type
        );
        if let Some(id_token) = &parsed.id_token {
            ensure!(id_token.split('.').count() == 3, "id_token is not a JWS");
        }
        Ok(Tokens {
            access_token: parsed.access_token,
            refresh_token: parsed.refresh_token,
        })
    }

    /// Userinfo with a bearer token; checks a `sub` comes back.
    pub async fn userinfo(
        &self,
        rp: &mut Conn,
        access_token: &str,
        steps: &mut Steps,
    ) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let bearer = HeaderValue::from_str(&format!("Bearer {access_token}"))?;
        let response = rp
            .get(&self.endpoints.userinfo, &[(header::AUTHORIZATION, bearer)])
            .await?;
        steps.record("GET", &self.endpoints.userinfo, started.elapsed());
        expect_json_with(&response, "\"sub\"").context("userinfo")
    }

    /// The discovery document.
    pub async fn discovery(&self, conn: &mut Conn) -> anyhow::Result<()> {
        let response = conn.get(&self.endpoints.discovery, &[]).await?;
        expect_json_with(&response, "\"issuer\"").context("discovery")
    }

    /// The JSON Web Key Set.
    pub async fn jwks(&self, conn: &mut Conn) -> anyhow::Result<()> {
        let response = conn.get(&self.endpoints.jwks, &[]).await?;
        expect_json_with(&response, "\"keys\"").context("jwks")
    }
}

fn expect_json_with(response: &Response, needle: &str) -> anyhow::Result<()> {
    expect_status(response, StatusCode::OK)?;
    let found = response
        .body
        .windows(needle.len())
        .any(|w| w == needle.as_bytes());
    ensure!(found, "response lacks {needle}: {}", response.describe());
    Ok(())
}

/// `code` from the redirect to the client, after checking `state` and the absence of `error`.
fn code_from_redirect(query: &str, state: &str) -> anyhow::Result<String> {
    let mut code = None;
    let mut returned_state = None;
    let mut error = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "code" => code = Some(value.into_owned()),
            "state" => returned_state = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            _ => {}
        }
    }
    if let Some(error) = error {
        bail!("authorization error at the redirect URI: {error}");
    }
    ensure!(
        returned_state.as_deref() == Some(state),
        "state not returned unchanged"
    );
    code.ok_or_else(|| anyhow!("redirect to the client without a code"))
}

/// The origin-form path of a URL on the provider (absolute or already a path).
pub fn local_path(issuer: &str, url: &str) -> anyhow::Result<String> {
    if url.starts_with('/') && !url.starts_with("//") {
        return Ok(url.to_owned());
    }
    let origin = url::Url::parse(issuer)?;
    let parsed = url::Url::parse(url).with_context(|| format!("URL {url}"))?;
    ensure!(
        parsed.origin() == origin.origin(),
        "{url} is not on the provider {issuer}"
    );
    Ok(match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_owned(),
    })
}

/// Where a redirect from `current` to `location` leads, as a path on the provider.
fn resolve(issuer: &str, current: &str, location: &str) -> anyhow::Result<String> {
    let base = url::Url::parse(issuer)?.join(current)?;
    let next = base.join(location)?;
    local_path(issuer, next.as_str())
}

fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// A random base64url string of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_redirects_and_form_actions_on_the_provider() {
        let issuer = "http://127.0.0.1:8000";
        assert_eq!(
            resolve(issuer, "/oauth/authorize?a=1", "/login?next=%2Fx").unwrap(),
            "/login?next=%2Fx"
        );
        assert_eq!(
            resolve(
                issuer,
                "/login?next=x",
                "http://127.0.0.1:8000/oauth/authorize?b=2"
            )
            .unwrap(),
            "/oauth/authorize?b=2"
        );
        assert!(resolve(issuer, "/login", "http://evil.example/").is_err());
        // A form without an action posts to its page.
        let page = url::Url::parse(issuer)
            .unwrap()
            .join("/login?next=x")
            .unwrap();
        for html in [r#"<form action="">"#, "<form>"] {
            let forms = Document::parse(html).forms(&page).unwrap();
            assert_eq!(
                local_path(issuer, forms[0].action.as_str()).unwrap(),
                "/login?next=x"
            );
        }
    }

    #[test]
    fn reads_the_code_and_checks_state() {
        assert_eq!(
            code_from_redirect("code=abc&state=s1&iss=x", "s1").unwrap(),
            "abc"
        );
        assert!(code_from_redirect("code=abc&state=other", "s1").is_err());
        assert!(code_from_redirect("error=access_denied&state=s1", "s1").is_err());
    }
}
