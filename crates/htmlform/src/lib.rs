//! Reads HTML pages as a browser without JavaScript does: the forms, with the fields and the
//! buttons a submission sends, the values of inputs, and the text of elements.
//!
//! ```
//! let page = url::Url::parse("http://127.0.0.1:8000/login?next=%2F").unwrap();
//! let html = r#"<form method="post"><input type="hidden" name="csrf_token" value="a&amp;b">
//!     <input name="username"><input type="password" name="password">
//!     <button name="go" value="1">Sign in</button></form>"#;
//! let mut form = htmlform::Document::parse(html).forms(&page).unwrap().remove(0);
//! assert!(form.is_login());
//! form.set("username", "alice").set("password", "secret");
//! let sent = form.click("Sign in").unwrap();
//! assert_eq!(sent.action, page);
//! assert_eq!(sent.encode(), "csrf_token=a%26b&username=alice&password=secret&go=1");
//! ```
//!
//! Parsing is html5ever's (through `scraper`), the parser of a browser engine: markup is read as
//! a browser reads it and character references are decoded by the HTML rules, so no page needs
//! a hand-written tokenizer or entity table. The provider's tests, testkit (and through it the
//! end-to-end tests) and the load generator all read pages with this crate. A provider page of
//! 5 KB costs about 130 µs of CPU to read in a release build; the load generator reads pages only
//! in the login flow, where the provider spends about 240 ms of bcrypt per login.

use std::sync::LazyLock;

use anyhow::{Context, anyhow};
use scraper::{ElementRef, Html, Selector};
use url::Url;

static FORMS: LazyLock<Selector> = LazyLock::new(|| css("form"));
static CONTROLS: LazyLock<Selector> = LazyLock::new(|| css("input, select, textarea, button"));
static OPTIONS: LazyLock<Selector> = LazyLock::new(|| css("option"));
static INPUTS: LazyLock<Selector> = LazyLock::new(|| css("input"));
static TITLE: LazyLock<Selector> = LazyLock::new(|| css("title"));
static BODY: LazyLock<Selector> = LazyLock::new(|| css("body"));

/// A selector written in this file; each is covered by the tests below.
fn css(selector: &str) -> Selector {
    Selector::parse(selector).unwrap_or_else(|error| panic!("selector {selector:?}: {error}"))
}

/// A parsed HTML page.
pub struct Document {
    html: Html,
}

impl Document {
    /// Parses `html` as a whole document (a fragment is completed as a browser completes it).
    pub fn parse(html: &str) -> Self {
        Self {
            html: Html::parse_document(html),
        }
    }

    /// Every form of the page, in document order; actions are resolved against `page_url`.
    pub fn forms(&self, page_url: &Url) -> anyhow::Result<Vec<Form>> {
        self.html
            .select(&FORMS)
            .map(|form| Form::from_element(page_url, form))
            .collect()
    }

    /// The forms matching the CSS `selector` (e.g. `"form#login"`, `"form[action$='/authorize']"`).
    pub fn forms_matching(&self, selector: &str, page_url: &Url) -> anyhow::Result<Vec<Form>> {
        let selector = parse_selector(selector)?;
        self.html
            .select(&selector)
            .map(|form| Form::from_element(page_url, form))
            .collect()
    }

    /// The `value` of the first `<input>` named `name` that has one.
    pub fn input_value(&self, name: &str) -> Option<String> {
        self.html.select(&INPUTS).find_map(|input| {
            let input = input.value();
            (input.attr("name") == Some(name))
                .then(|| input.attr("value"))
                .flatten()
                .map(str::to_owned)
        })
    }

    /// The name and value of every hidden input of the page, in document order.
    pub fn hidden_inputs(&self) -> Vec<(String, String)> {
        self.html
            .select(&INPUTS)
            .filter_map(|input| {
                let input = input.value();
                let hidden = input
                    .attr("type")
                    .is_some_and(|kind| kind.eq_ignore_ascii_case("hidden"));
                match (hidden, input.attr("name"), input.attr("value")) {
                    (true, Some(name), Some(value)) => Some((name.to_owned(), value.to_owned())),
                    _ => None,
                }
            })
            .collect()
    }

    /// The text of the first element matching the CSS `selector`, if any.
    pub fn select_text(&self, selector: &str) -> anyhow::Result<Option<String>> {
        let selector = parse_selector(selector)?;
        Ok(self
            .html
            .select(&selector)
            .next()
            .map(|element| element.text().collect()))
    }

    /// The text of the page's `<title>`, trimmed.
    pub fn title(&self) -> Option<String> {
        self.html
            .select(&TITLE)
            .next()
            .map(|title| title.text().collect::<String>().trim().to_owned())
    }

    /// The visible text of the page (every text node of `<body>`), white space collapsed.
    pub fn text(&self) -> String {
        let text: String = match self.html.select(&BODY).next() {
            Some(body) => body.text().collect(),
            None => self.html.root_element().text().collect(),
        };
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

fn parse_selector(selector: &str) -> anyhow::Result<Selector> {
    Selector::parse(selector).map_err(|error| anyhow!("bad CSS selector {selector:?}: {error}"))
}

/// How a form is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The fields go in the query of the action URL (the default).
    Get,
    /// The fields go in an `application/x-www-form-urlencoded` body.
    Post,
}

/// A submit button of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    /// Its `name`, sent with its value when it is clicked.
    pub name: Option<String>,
    /// Its `value`.
    pub value: String,
    /// Its visible text (or value, for `<input type=submit>`).
    pub label: String,
}

/// A form as found in a page: where it goes, how, and the fields it would send.
#[derive(Debug, Clone)]
pub struct Form {
    /// The absolute URL the form submits to (the page itself when the action is empty).
    pub action: Url,
    /// GET or POST.
    pub method: Method,
    /// The fields a submission sends, in document order (hidden ones such as `csrf_token`
    /// included; unchecked boxes left out, as a browser leaves them out).
    pub fields: Vec<(String, String)>,
    /// The names of the password inputs.
    pub password_fields: Vec<String>,
    /// The names of the text-like inputs (text, email, or no type), in document order.
    pub text_fields: Vec<String>,
    /// The submit buttons.
    pub buttons: Vec<Button>,
}

impl Form {
    fn from_element(page_url: &Url, form: ElementRef<'_>) -> anyhow::Result<Self> {
        let action = match form.value().attr("action") {
            Some(action) if !action.is_empty() => page_url
                .join(action)
                .with_context(|| format!("bad form action {action:?} on {page_url}"))?,
            _ => page_url.clone(),
        };
        let method = match form.value().attr("method") {
            Some(method) if method.eq_ignore_ascii_case("post") => Method::Post,
            _ => Method::Get,
        };
        let mut read = Self {
            action,
            method,
            fields: Vec::new(),
            password_fields: Vec::new(),
            text_fields: Vec::new(),
            buttons: Vec::new(),
        };
        for control in form.select(&CONTROLS) {
            read.add_control(control);
        }
        Ok(read)
    }

    fn add_control(&mut self, control: ElementRef<'_>) {
        let element = control.value();
        let name = element.attr("name").map(str::to_owned);
        let kind = element.attr("type").unwrap_or("").to_ascii_lowercase();
        match element.name() {
            // A <button> without a type submits the form.
            "button" if kind.is_empty() || kind == "submit" => self.buttons.push(Button {
                name,
                value: element.attr("value").unwrap_or("").to_owned(),
                label: control.text().collect::<String>().trim().to_owned(),
            }),
            "input" => match kind.as_str() {
                "submit" => {
                    let value = element.attr("value").unwrap_or("Submit").to_owned();
                    self.buttons.push(Button {
                        name,
                        label: value.clone(),
                        value,
                    });
                }
                "checkbox" | "radio" => {
                    if let Some(name) = name
                        && element.attr("checked").is_some()
                    {
                        let value = element.attr("value").unwrap_or("on").to_owned();
                        self.fields.push((name, value));
                    }
                }
                "button" | "reset" | "image" | "file" => {}
                _ => {
                    if let Some(name) = name {
                        match kind.as_str() {
                            "password" => self.password_fields.push(name.clone()),
                            "" | "text" | "email" => self.text_fields.push(name.clone()),
                            _ => {}
                        }
                        let value = element.attr("value").unwrap_or("").to_owned();
                        self.fields.push((name, value));
                    }
                }
            },
            "textarea" => {
                if let Some(name) = name {
                    self.fields.push((name, control.text().collect()));
                }
            }
            "select" => {
                if let Some(name) = name {
                    let chosen = control
                        .select(&OPTIONS)
                        .find(|option| option.value().attr("selected").is_some())
                        .or_else(|| control.select(&OPTIONS).next());
                    if let Some(option) = chosen {
                        let value = option
                            .value()
                            .attr("value")
                            .map(str::to_owned)
                            .unwrap_or_else(|| option.text().collect());
                        self.fields.push((name, value));
                    }
                }
            }
            _ => {}
        }
    }

    /// A login form is one with a password field.
    pub fn is_login(&self) -> bool {
        !self.password_fields.is_empty()
    }

    /// The value of field `name`, if the form has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Sets field `name` (replacing its value, or adding it), like typing into it.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        match self.fields.iter_mut().find(|(key, _)| key == name) {
            Some((_, existing)) => *existing = value.to_owned(),
            None => self.fields.push((name.to_owned(), value.to_owned())),
        }
        self
    }

    /// Removes field `name` (e.g. to post without a CSRF token).
    pub fn remove(&mut self, name: &str) -> &mut Self {
        self.fields.retain(|(key, _)| key != name);
        self
    }

    /// The submit button whose label or value is `label` (case-insensitive).
    pub fn button(&self, label: &str) -> Option<&Button> {
        self.buttons.iter().find(|button| {
            button.label.eq_ignore_ascii_case(label) || button.value.eq_ignore_ascii_case(label)
        })
    }

    /// This form as sent by clicking the button labelled `label`.
    pub fn click(&self, label: &str) -> anyhow::Result<Self> {
        let button = self.button(label).ok_or_else(|| {
            anyhow!(
                "no button {label:?} in the form to {}; buttons: {:?}",
                self.action,
                self.buttons
            )
        })?;
        Ok(self.press(button))
    }

    /// This form as sent by clicking `button`: a named button's name and value are added to
    /// the fields, as a browser does.
    pub fn press(&self, button: &Button) -> Self {
        let mut form = self.clone();
        if let Some(name) = &button.name {
            form.fields.push((name.clone(), button.value.clone()));
        }
        form
    }

    /// The fields as an `application/x-www-form-urlencoded` string (a POST body or a query).
    pub fn encode(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.fields)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_url() -> Url {
        Url::parse("http://127.0.0.1:9/login?next=x").unwrap()
    }

    fn forms(html: &str) -> Vec<Form> {
        Document::parse(html).forms(&page_url()).unwrap()
    }

    #[test]
    fn reads_a_login_form_with_escaped_action() {
        let html = r#"<html><body><FORM method="post" action="/login?next=&#x2F;oauth&#x2F;authorize%3Fa%3D1&amp;x=y">
            <input type="hidden" name="csrf_token" value="abc&#x2F;def">
            <input type=text name=username autofocus>
            <input type="password" name="password">
            <button type="submit">Sign in</button></form></body></html>"#;
        let forms = forms(html);
        assert_eq!(forms.len(), 1);
        let form = &forms[0];
        assert!(form.is_login());
        assert_eq!(
            form.action.as_str(),
            "http://127.0.0.1:9/login?next=/oauth/authorize%3Fa%3D1&x=y"
        );
        assert_eq!(form.method, Method::Post);
        assert_eq!(form.text_fields, vec!["username".to_owned()]);
        assert_eq!(form.password_fields, vec!["password".to_owned()]);
        assert_eq!(
            form.fields[0],
            ("csrf_token".to_owned(), "abc/def".to_owned())
        );
        assert_eq!(form.buttons[0].label, "Sign in");
    }

    #[test]
    fn decodes_numeric_and_named_entities() {
        let html = r#"<input name="x" value="a&amp;b&#39;c&#x27;&lt;&unknown;">
            <p id="label">Tom &amp; Jerry&#x2F;&quot;&nbsp;</p>"#;
        let document = Document::parse(html);
        assert_eq!(
            document.input_value("x").as_deref(),
            Some("a&b'c'<&unknown;")
        );
        assert_eq!(
            document.select_text("p#label").unwrap().as_deref(),
            Some("Tom & Jerry/\"\u{a0}")
        );
    }

    #[test]
    fn an_empty_or_missing_action_posts_to_the_page_itself() {
        let forms = forms(r#"<form action=""></form><form method="get"></form>"#);
        assert_eq!(forms[0].action, page_url());
        assert_eq!(forms[1].action, page_url());
        assert_eq!(forms[1].method, Method::Get);
        let error = Document::parse(r#"<form action="http://[::1"></form>"#)
            .forms(&page_url())
            .unwrap_err();
        assert!(error.to_string().contains("bad form action"), "{error}");
    }

    #[test]
    fn every_kind_of_control_sends_what_a_browser_sends() {
        let form = forms(
            r#"<form method="post" action="/c">
              <input type="hidden" name="csrf_token" value="abc">
              <input name="plain" value="p">
              <input type="email" name="mail">
              <input type="number" name="count" value="3">
              <input type="password" name="secret">
              <input type="checkbox" name="unchecked" value="yes">
              <input type="checkbox" name="checked" checked>
              <input type="radio" name="choice" value="b" checked>
              <input type="file" name="upload"><input type="image" name="map">
              <input type="reset" name="reset"><input type="button" name="js">
              <input value="no name">
              <select name="level"><option value="1">one</option><option selected>two</option></select>
              <select name="first"><option value="a">A</option><option value="b">B</option></select>
              <textarea name="note">hi &amp; bye</textarea>
              <button type="button">Not a submit button</button>
              <button name="decision" value="allow">Authorize <b>now</b></button>
              <input type="submit" name="go">
            </form>"#,
        )
        .remove(0);
        assert_eq!(form.method, Method::Post);
        assert_eq!(form.action.as_str(), "http://127.0.0.1:9/c");
        let sent: Vec<(&str, &str)> = form
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            sent,
            [
                ("csrf_token", "abc"),
                ("plain", "p"),
                ("mail", ""),
                ("count", "3"),
                ("secret", ""),
                ("checked", "on"),
                ("choice", "b"),
                ("level", "two"),
                ("first", "a"),
                ("note", "hi & bye"),
            ]
        );
        assert_eq!(form.text_fields, ["plain", "mail"]);
        assert_eq!(form.password_fields, ["secret"]);
        assert_eq!(
            form.buttons,
            [
                Button {
                    name: Some("decision".into()),
                    value: "allow".into(),
                    label: "Authorize now".into(),
                },
                Button {
                    name: Some("go".into()),
                    value: "Submit".into(),
                    label: "Submit".into(),
                },
            ]
        );
    }

    #[test]
    fn a_click_adds_the_named_button_and_fields_can_be_changed() {
        let mut form = forms(
            r#"<form method="post"><input type="hidden" name="t" value="1 2">
            <button name="decision" value="deny">Cancel</button><button>Plain</button></form>"#,
        )
        .remove(0);
        assert_eq!(
            form.click("cancel").unwrap().encode(),
            "t=1+2&decision=deny"
        );
        assert_eq!(form.click("DENY").unwrap().encode(), "t=1+2&decision=deny");
        assert_eq!(form.click("Plain").unwrap().encode(), "t=1+2");
        let error = form.click("Delete").unwrap_err();
        assert!(
            error.to_string().contains("no button \"Delete\""),
            "{error}"
        );
        form.set("t", "&=").set("u", "é").remove("nothing");
        assert_eq!(form.get("t"), Some("&="));
        assert_eq!(form.encode(), "t=%26%3D&u=%C3%A9");
        form.remove("t");
        assert_eq!(form.get("t"), None);
        assert!(!form.is_login());
    }

    #[test]
    fn forms_can_be_picked_by_css_selector() {
        let document = Document::parse(
            r#"<form id="a" action="/a"></form><form id="b" action="/logout"></form>"#,
        );
        let found = document
            .forms_matching("form[action$='/logout']", &page_url())
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].action.path(), "/logout");
        assert!(document.forms_matching("form[", &page_url()).is_err());
        assert!(document.select_text("p[").is_err());
    }

    #[test]
    fn inputs_are_read_wherever_they_are() {
        let document = Document::parse(
            r#"<form><input type="hidden" name="csrf_token" value="t1"><input name="user" value="alice"></form>
            <div><input name="novalue"><input name="novalue" value="second"></div>
            <form><INPUT TYPE="HIDDEN" name="next" value="/a?b=c&amp;d"><input type="hidden" name="nameless"></form>"#,
        );
        assert_eq!(document.input_value("csrf_token").as_deref(), Some("t1"));
        assert_eq!(document.input_value("user").as_deref(), Some("alice"));
        assert_eq!(document.input_value("novalue").as_deref(), Some("second"));
        assert_eq!(document.input_value("missing"), None);
        assert_eq!(
            document.hidden_inputs(),
            [
                ("csrf_token".to_owned(), "t1".to_owned()),
                ("next".to_owned(), "/a?b=c&d".to_owned()),
            ]
        );
    }

    #[test]
    fn title_and_text_are_readable() {
        let document = Document::parse(
            "<html><head><title> Sign in </title></head><body><p>Hello\n  <b>there</b></p></body></html>",
        );
        assert_eq!(document.title().as_deref(), Some("Sign in"));
        assert_eq!(document.text(), "Hello there");
        assert_eq!(Document::parse("").title(), None);
    }
}
