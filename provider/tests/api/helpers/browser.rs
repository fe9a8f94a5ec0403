//! A cookie-keeping user agent that does not follow redirects: a browser seen step by step.

use std::sync::Arc;

use reqwest::cookie::Jar;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Response, StatusCode};
use serde::Serialize;
use url::Url;

use super::pages::{csrf_token, hidden_fields};

/// A cookie-keeping HTTP client for the server at `base`; it does not follow redirects.
#[derive(Clone)]
pub struct Browser {
    /// Where relative paths are sent: `http://127.0.0.1:{port}`.
    pub base: String,
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
}

impl Browser {
    /// A client for the server at `base`, with an empty cookie jar.
    pub fn new(base: &str) -> Self {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        Self {
            base: base.to_owned(),
            client,
            jar,
        }
    }

    /// The same user agent, cookies included, sending relative paths to the server at `base`.
    pub fn at(&self, base: &str) -> Self {
        Self {
            base: base.to_owned(),
            ..self.clone()
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// GET `path` (or an absolute URL).
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("GET request")
    }

    /// GET `path` and return its status and body.
    pub async fn get_html(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        let status = response.status();
        (status, response.text().await.expect("body"))
    }

    /// POST an url-encoded form to `path` (or an absolute URL).
    pub async fn post_form<F: Serialize + ?Sized>(&self, path: &str, form: &F) -> Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("POST request")
    }

    /// The CSRF token of the form on the page at `path`.
    pub async fn csrf_token(&self, path: &str) -> String {
        let (status, html) = self.get_html(path).await;
        assert!(status.is_success(), "GET {path}: {status}");
        csrf_token(&html).unwrap_or_else(|| panic!("no csrf_token on {path}"))
    }

    /// POST a form to `path` with the CSRF token of the page at `form_page` added.
    pub async fn submit(&self, form_page: &str, path: &str, fields: &[(&str, &str)]) -> Response {
        let token = self.csrf_token(form_page).await;
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &token));
        self.post_form(path, &form).await
    }

    /// Fills in and submits the login form; returns the response to the POST (303 on success).
    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.login_next(username, password, None).await
    }

    /// Like [`login`](Self::login) with a `next` path.
    pub async fn login_next(&self, username: &str, password: &str, next: Option<&str>) -> Response {
        let token = self.csrf_token("/login").await;
        let mut form = vec![
            ("username", username),
            ("password", password),
            ("csrf_token", token.as_str()),
        ];
        if let Some(next) = next {
            form.push(("next", next));
        }
        self.post_form("/login", &form).await
    }

    /// Signs in at the login page, failing the test unless the provider accepts.
    pub async fn log_in(&self, username: &str, password: &str) {
        let response = self.login(username, password).await;
        assert!(
            response.status().is_redirection(),
            "login failed: {}",
            response.status()
        );
    }

    /// Follows a flow from `start`: submits the login form with `credentials` when shown, acts on
    /// consent as told, and stops at the first redirect that leaves the provider at `base` or at
    /// a page that is neither login nor consent.
    pub async fn drive(
        &self,
        start: &str,
        credentials: Option<(&str, &str)>,
        consent: Consent,
    ) -> Outcome {
        let provider = Url::parse(&self.base).expect("base URL").origin();
        let mut response = self.get(start).await;
        let (mut saw_login, mut saw_consent) = (false, false);
        for _ in 0..20 {
            let current = response.url().clone();
            if response.status().is_redirection() {
                let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
                let next = current.join(&location).unwrap();
                if next.origin() != provider {
                    return Outcome {
                        redirect: Some(next),
                        status: response.status(),
                        body: String::new(),
                        saw_login,
                        saw_consent,
                    };
                }
                response = self.get(next.as_str()).await;
                continue;
            }
            let status = response.status();
            let is_html = response
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/html"));
            let body = response.text().await.unwrap();
            if let (true, "/login", Some((username, password)), false) =
                (is_html, current.path(), credentials, saw_login)
            {
                saw_login = true;
                let mut fields = hidden_fields(&body);
                fields.push(("username".into(), username.into()));
                fields.push(("password".into(), password.into()));
                response = self.post_form("/login", &fields).await;
                continue;
            }
            if is_html
                && body.contains("action=\"/oauth/authorize/decision\"")
                && consent != Consent::Unexpected
            {
                saw_consent = true;
                let mut fields = hidden_fields(&body);
                let decision = if consent == Consent::Authorize {
                    "authorize"
                } else {
                    "cancel"
                };
                fields.push(("decision".into(), decision.into()));
                response = self.post_form("/oauth/authorize/decision", &fields).await;
                continue;
            }
            return Outcome {
                redirect: None,
                status,
                body,
                saw_login,
                saw_consent,
            };
        }
        panic!("redirect loop from {start}");
    }
}

/// What to do on a consent page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Consent {
    Authorize,
    Cancel,
    /// A consent page is a failure of the test.
    Unexpected,
}

/// Where a walk through the provider ended.
#[derive(Debug)]
pub struct Outcome {
    /// The redirect out of the provider, if it ended with one.
    pub redirect: Option<Url>,
    /// Status and body of the last provider page otherwise.
    pub status: StatusCode,
    pub body: String,
    pub saw_login: bool,
    pub saw_consent: bool,
}

impl Outcome {
    pub fn param(&self, name: &str) -> Option<String> {
        self.redirect
            .as_ref()?
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub fn code(&self) -> String {
        self.param("code")
            .unwrap_or_else(|| panic!("no code in the outcome: {self:?}"))
    }
}
