//! A cookie-keeping HTTP user agent for tests: follows redirects one hop at a time and submits
//! the forms it finds in pages, as a browser without JavaScript would.

use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use htmlform::Document;
pub use htmlform::{Button, Form, Method};
use reqwest::StatusCode;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, LOCATION};
use url::Url;

/// How many redirects [`Browser::follow`] accepts before it calls it a loop.
const MAX_REDIRECTS: usize = 20;

/// A user agent with a cookie jar and no automatic redirects, so tests can both look at each
/// hop and follow them like a browser.
#[derive(Clone)]
pub struct Browser {
    client: reqwest::Client,
    jar: Arc<Jar>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A fresh user agent with an empty cookie jar.
    pub fn new() -> Self {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("a reqwest client with default TLS settings always builds");
        Self { client, jar }
    }

    /// The underlying HTTP client (shares the cookie jar), for requests the helpers do not cover.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The `Cookie` header this browser would send to `url`, if any.
    pub fn cookie_header(&self, url: &Url) -> Option<String> {
        self.jar
            .cookies(url)
            .and_then(|value| value.to_str().ok().map(str::to_owned))
    }

    /// The value of the cookie `name` that this browser would send to `url`.
    pub fn cookie(&self, url: &Url, name: &str) -> Option<String> {
        let header = self.cookie_header(url)?;
        header.split("; ").find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
    }

    /// Stores a cookie as if `url` had set it (for example a tampered value).
    pub fn set_cookie(&self, url: &Url, cookie: &str) {
        self.jar.add_cookie_str(cookie, url);
    }

    /// One GET request; redirects are returned, not followed.
    pub async fn get(&self, url: impl AsRef<str>) -> anyhow::Result<Page> {
        let url = parse_url(url.as_ref())?;
        self.send(self.client.get(url.clone()), url).await
    }

    /// A GET request whose redirects are followed to the final page.
    pub async fn visit(&self, url: impl AsRef<str>) -> anyhow::Result<Page> {
        let page = self.get(url).await?;
        self.follow(page).await
    }

    /// One POST of `fields` as `application/x-www-form-urlencoded`; redirects are not followed.
    pub async fn post_form(
        &self,
        url: impl AsRef<str>,
        fields: &[(String, String)],
    ) -> anyhow::Result<Page> {
        let url = parse_url(url.as_ref())?;
        self.send(self.client.post(url.clone()).form(fields), url)
            .await
    }

    /// Follows redirects from `page` (GET for every hop, as browsers do after 301/302/303) and
    /// returns the first page that is not a redirect. The URLs passed through are kept in
    /// [`Page::redirects`].
    pub async fn follow(&self, mut page: Page) -> anyhow::Result<Page> {
        let mut history = std::mem::take(&mut page.redirects);
        for _ in 0..MAX_REDIRECTS {
            let Some(next) = page.location()? else {
                page.redirects = history;
                return Ok(page);
            };
            history.push(page.url.clone());
            page = self.get(next.as_str()).await?;
        }
        bail!(
            "more than {MAX_REDIRECTS} redirects, last at {}: {:?}",
            page.url,
            history
        )
    }

    /// Submits `form` as a browser would (including the clicked button, if any) and follows the
    /// redirects that come back.
    pub async fn submit(&self, form: &Form) -> anyhow::Result<Page> {
        let page = self.submit_once(form).await?;
        self.follow(page).await
    }

    /// Submits `form` without following the response's redirect.
    pub async fn submit_once(&self, form: &Form) -> anyhow::Result<Page> {
        let url = form.action.clone();
        let request = if form.method == Method::Get {
            let mut target = url.clone();
            target
                .query_pairs_mut()
                .clear()
                .extend_pairs(form.fields.iter());
            self.client.get(target)
        } else {
            self.client.post(url.clone()).form(&form.fields)
        };
        self.send(request, url).await
    }

    async fn send(&self, request: reqwest::RequestBuilder, url: Url) -> anyhow::Result<Page> {
        let response = request
            .send()
            .await
            .with_context(|| format!("request to {url} failed"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let url = response.url().clone();
        let body = response
            .text()
            .await
            .with_context(|| format!("reading the body from {url} failed"))?;
        Ok(Page {
            url,
            status,
            headers,
            body,
            redirects: Vec::new(),
        })
    }
}

fn parse_url(url: &str) -> anyhow::Result<Url> {
    Url::parse(url).with_context(|| format!("not an absolute URL: {url:?}"))
}

/// A response as the browser saw it.
#[derive(Debug, Clone)]
pub struct Page {
    /// The URL that answered.
    pub url: Url,
    /// Its status code.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body as text.
    pub body: String,
    /// The URLs that redirected to this page, oldest first (filled by [`Browser::follow`]).
    pub redirects: Vec<Url>,
}

impl Page {
    /// Whether the response is a redirect with a `Location` header.
    pub fn is_redirect(&self) -> bool {
        self.status.is_redirection() && self.headers.contains_key(LOCATION)
    }

    /// The redirect target resolved against this page's URL, if this is a redirect.
    pub fn location(&self) -> anyhow::Result<Option<Url>> {
        if !self.status.is_redirection() {
            return Ok(None);
        }
        let Some(value) = self.headers.get(LOCATION) else {
            return Ok(None);
        };
        let value = value
            .to_str()
            .with_context(|| format!("non-ASCII Location header from {}", self.url))?;
        let target = self
            .url
            .join(value)
            .with_context(|| format!("bad Location header {value:?} from {}", self.url))?;
        Ok(Some(target))
    }

    /// The value of the query parameter `name` of the redirect target.
    pub fn location_param(&self, name: &str) -> anyhow::Result<Option<String>> {
        Ok(self.location()?.and_then(|url| query_param(&url, name)))
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Whether the body contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.body.contains(needle)
    }

    /// Fails with the page's URL, status and body when the status is not `expected`.
    pub fn expect_status(&self, expected: StatusCode) -> anyhow::Result<&Self> {
        if self.status != expected {
            bail!(
                "expected {expected} from {}, got {}; body:\n{}",
                self.url,
                self.status,
                excerpt(&self.body)
            );
        }
        Ok(self)
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_str(&self.body).with_context(|| {
            format!(
                "body of {} ({}) is not the expected JSON:\n{}",
                self.url,
                self.status,
                excerpt(&self.body)
            )
        })
    }

    /// The text of the page's `<title>`, trimmed.
    pub fn title(&self) -> Option<String> {
        Document::parse(&self.body).title()
    }

    /// The visible text of the page (all text nodes of `<body>`, whitespace collapsed).
    pub fn text(&self) -> String {
        Document::parse(&self.body).text()
    }

    /// The text of the first element matching the CSS `selector` (entities decoded), if any.
    pub fn select_text(&self, selector: &str) -> anyhow::Result<Option<String>> {
        Document::parse(&self.body).select_text(selector)
    }

    /// The first form matching the CSS `selector` (e.g. `"form"`, `"form#login"`,
    /// `"form[action$='/authorize']"`).
    pub fn form(&self, selector: &str) -> anyhow::Result<Form> {
        self.forms(selector)?.into_iter().next().ok_or_else(|| {
            anyhow!(
                "no form matching {selector:?} on {} ({}):\n{}",
                self.url,
                self.status,
                excerpt(&self.body)
            )
        })
    }

    /// Every form matching the CSS `selector`.
    pub fn forms(&self, selector: &str) -> anyhow::Result<Vec<Form>> {
        Document::parse(&self.body).forms_matching(selector, &self.url)
    }

    /// The first form whose submit buttons include one labelled (or valued) `label`.
    pub fn form_with_button(&self, label: &str) -> anyhow::Result<Form> {
        self.forms("form")?
            .into_iter()
            .find(|form| form.button(label).is_some())
            .ok_or_else(|| {
                anyhow!(
                    "no form with a {label:?} button on {} ({}):\n{}",
                    self.url,
                    self.status,
                    excerpt(&self.body)
                )
            })
    }
}

/// The value of the query parameter `name` of `url`.
pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The start of a long body, for error messages.
fn excerpt(body: &str) -> &str {
    let end = body
        .char_indices()
        .nth(2_000)
        .map_or(body.len(), |(index, _)| index);
    &body[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &str) -> Page {
        Page {
            url: Url::parse("http://127.0.0.1:9/oauth/authorize?client_id=x").unwrap(),
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: body.to_owned(),
            redirects: Vec::new(),
        }
    }

    #[test]
    fn form_fields_hidden_inputs_and_buttons_are_extracted() {
        let page = page(
            r#"<html><body>
            <form id="consent" method="post" action="/oauth/authorize">
              <input type="hidden" name="csrf_token" value="abc">
              <input type="text" name="username">
              <input type="checkbox" name="remember" value="yes">
              <input type="checkbox" name="checked" checked>
              <select name="level"><option value="1">one</option><option value="2" selected>two</option></select>
              <textarea name="note">hi</textarea>
              <button type="submit" name="decision" value="allow">Authorize</button>
              <button type="submit" name="decision" value="deny">Cancel</button>
            </form></body></html>"#,
        );
        let form = page.form("form#consent").unwrap();
        assert_eq!(form.method, Method::Post);
        assert_eq!(form.action.as_str(), "http://127.0.0.1:9/oauth/authorize");
        assert_eq!(form.get("csrf_token"), Some("abc"));
        assert_eq!(form.get("username"), Some(""));
        assert_eq!(form.get("remember"), None);
        assert_eq!(form.get("checked"), Some("on"));
        assert_eq!(form.get("level"), Some("2"));
        assert_eq!(form.get("note"), Some("hi"));
        assert_eq!(form.buttons.len(), 2);

        let allow = form.click("Authorize").unwrap();
        assert_eq!(
            allow.fields.last().unwrap(),
            &("decision".into(), "allow".into())
        );
        let deny = form.click("cancel").unwrap();
        assert_eq!(
            deny.fields.last().unwrap(),
            &("decision".into(), "deny".into())
        );
        assert!(form.click("Delete").is_err());
    }

    #[test]
    fn form_without_action_posts_to_the_page_itself_and_fields_can_be_changed() {
        let page =
            page(r#"<form><input name="a" value="1"><input type="submit" value="Go"></form>"#);
        let mut form = page.form("form").unwrap();
        assert_eq!(form.method, Method::Get);
        assert_eq!(form.action, page.url);
        form.set("a", "2").set("b", "3").remove("nothing");
        assert_eq!(
            form.fields,
            vec![("a".into(), "2".into()), ("b".into(), "3".into())]
        );
        form.remove("a");
        assert_eq!(form.get("a"), None);
        assert!(page.form_with_button("Go").is_ok());
        assert!(page.form("form#missing").is_err());
    }

    #[test]
    fn location_is_resolved_against_the_page_url() {
        let mut redirect = page("");
        redirect.status = StatusCode::SEE_OTHER;
        redirect
            .headers
            .insert(LOCATION, "/login?next=%2Fa".parse().unwrap());
        assert!(redirect.is_redirect());
        assert_eq!(
            redirect.location().unwrap().unwrap().as_str(),
            "http://127.0.0.1:9/login?next=%2Fa"
        );
        assert_eq!(
            redirect.location_param("next").unwrap().as_deref(),
            Some("/a")
        );
        assert_eq!(page("").location().unwrap(), None);
    }

    #[test]
    fn element_text_is_decoded() {
        let page = page(r#"<pre id="session">{&quot;a&quot;: &quot;&lt;b&gt;&quot;}</pre>"#);
        assert_eq!(
            page.select_text("pre#session").unwrap().as_deref(),
            Some(r#"{"a": "<b>"}"#)
        );
        assert_eq!(page.select_text("pre#api").unwrap(), None);
        assert!(page.select_text("pre[").is_err());
    }

    #[test]
    fn text_and_title_are_readable() {
        let page = page(
            "<html><head><title> Sign in </title></head><body><p>Hello\n  <b>there</b></p></body></html>",
        );
        assert_eq!(page.title().as_deref(), Some("Sign in"));
        assert_eq!(page.text(), "Hello there");
    }

    #[tokio::test]
    async fn browser_keeps_cookies_per_origin() {
        let browser = Browser::new();
        let url = Url::parse("http://127.0.0.1:9/").unwrap();
        browser.set_cookie(&url, "session=abc; Path=/");
        assert_eq!(browser.cookie(&url, "session").as_deref(), Some("abc"));
        assert_eq!(browser.cookie(&url, "other"), None);
        let elsewhere = Url::parse("http://localhost:9/").unwrap();
        assert_eq!(browser.cookie(&elsewhere, "session"), None);
    }
}
