//! Just enough HTML reading to fill in the provider's login and consent forms, as a browser does.

/// A submit button (`<button>` or `<input type="submit">`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub name: Option<String>,
    pub value: Option<String>,
    pub label: String,
}

/// A form: its action, method, the fields a browser would send, and its submit buttons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub action: Option<String>,
    pub method: String,
    /// Successful controls with their current values (hidden, text, checked boxes...).
    pub fields: Vec<(String, String)>,
    /// Names of the password inputs.
    pub password_fields: Vec<String>,
    /// Names of the text-like inputs (text, email), in document order.
    pub text_fields: Vec<String>,
    pub buttons: Vec<Button>,
}

impl Form {
    /// A login form is the one with a password field.
    pub fn is_login(&self) -> bool {
        !self.password_fields.is_empty()
    }

    /// Sets a field's value, adding it when absent.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = value.to_owned(),
            None => self.fields.push((name.to_owned(), value.to_owned())),
        }
    }

    /// The urlencoded body this form sends when submitted with `button`.
    pub fn encode(&self, button: Option<&Button>) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.fields {
            serializer.append_pair(name, value);
        }
        if let Some(Button {
            name: Some(name),
            value,
            ..
        }) = button
        {
            serializer.append_pair(name, value.as_deref().unwrap_or(""));
        }
        serializer.finish()
    }
}

const APPROVE_WORDS: &[&str] = &[
    "allow",
    "approve",
    "authorize",
    "authorise",
    "accept",
    "consent",
    "grant",
    "continue",
    "yes",
];
const DENY_WORDS: &[&str] = &[
    "deny", "cancel", "reject", "decline", "refuse", "sign out", "logout", "log out",
];

fn mentions(haystack: &str, words: &[&str]) -> bool {
    let haystack = haystack.to_ascii_lowercase();
    words.iter().any(|w| haystack.contains(w))
}

fn button_approves(button: &Button) -> bool {
    let text = format!(
        "{} {} {}",
        button.name.as_deref().unwrap_or(""),
        button.value.as_deref().unwrap_or(""),
        button.label
    );
    mentions(&text, APPROVE_WORDS) && !mentions(&text, DENY_WORDS)
}

/// Finds the consent form and the button that approves: the first POST form, not a login or
/// logout form, with an approving button (or, failing that, an approving hidden value).
pub fn consent_choice(forms: &[Form]) -> Option<(Form, Option<Button>)> {
    let candidates = forms.iter().filter(|f| {
        !f.is_login()
            && f.method.eq_ignore_ascii_case("post")
            && !f
                .action
                .as_deref()
                .is_some_and(|a| a.to_ascii_lowercase().contains("logout"))
    });
    for form in candidates.clone() {
        if let Some(button) = form.buttons.iter().find(|b| button_approves(b)) {
            return Some((form.clone(), Some(button.clone())));
        }
    }
    // Separate forms per decision, told apart by a hidden field and unnamed buttons.
    candidates
        .into_iter()
        .find(|f| {
            f.fields
                .iter()
                .any(|(_, v)| mentions(v, APPROVE_WORDS) && !mentions(v, DENY_WORDS))
                && !f.buttons.iter().any(|b| mentions(&b.label, DENY_WORDS))
        })
        .map(|f| (f.clone(), f.buttons.first().cloned()))
}

/// Every form of the page.
pub fn forms(html: &str) -> Vec<Form> {
    let lower = html.to_ascii_lowercase();
    let mut forms = Vec::new();
    let mut at = 0;
    while let Some(start) = find_tag(&lower, "form", at) {
        let Some((attrs, open_end)) = tag_attrs(html, start) else {
            break;
        };
        let end = lower[open_end..]
            .find("</form")
            .map_or(html.len(), |i| open_end + i);
        forms.push(parse_form(
            &attrs,
            &html[open_end..end],
            &lower[open_end..end],
        ));
        at = end;
    }
    forms
}

fn parse_form(attrs: &[(String, String)], inner: &str, inner_lower: &str) -> Form {
    let mut form = Form {
        action: attr(attrs, "action").map(str::to_owned),
        method: attr(attrs, "method").unwrap_or("get").to_owned(),
        fields: Vec::new(),
        password_fields: Vec::new(),
        text_fields: Vec::new(),
        buttons: Vec::new(),
    };
    let mut at = 0;
    loop {
        let input = find_tag(inner_lower, "input", at);
        let button = find_tag(inner_lower, "button", at);
        let Some(start) = [input, button].into_iter().flatten().min() else {
            break;
        };
        let Some((attrs, open_end)) = tag_attrs(inner, start) else {
            break;
        };
        at = open_end;
        let name = attr(&attrs, "name").map(str::to_owned);
        let value = attr(&attrs, "value").map(str::to_owned);
        let kind = attr(&attrs, "type").unwrap_or("").to_ascii_lowercase();
        if Some(start) == button {
            let close = inner_lower[open_end..]
                .find("</button")
                .map_or(open_end, |i| open_end + i);
            let label = decode_entities(strip_tags(&inner[open_end..close]).trim());
            at = close;
            if kind.is_empty() || kind == "submit" {
                form.buttons.push(Button { name, value, label });
            }
            continue;
        }
        match kind.as_str() {
            "submit" | "image" => form.buttons.push(Button {
                label: value.clone().unwrap_or_default(),
                name,
                value,
            }),
            "password" => {
                if let Some(name) = name {
                    form.password_fields.push(name.clone());
                    form.fields.push((name, value.unwrap_or_default()));
                }
            }
            "checkbox" | "radio" => {
                if let Some(name) = name
                    && has_attr(&attrs, "checked")
                {
                    form.fields
                        .push((name, value.unwrap_or_else(|| "on".to_owned())));
                }
            }
            "button" | "reset" | "file" => {}
            _ => {
                if let Some(name) = name {
                    if matches!(kind.as_str(), "" | "text" | "email") {
                        form.text_fields.push(name.clone());
                    }
                    form.fields.push((name, value.unwrap_or_default()));
                }
            }
        }
    }
    form
}

/// Position of the next `<name` tag (followed by whitespace, `>` or `/`) at or after `from`.
fn find_tag(lower: &str, name: &str, from: usize) -> Option<usize> {
    let pattern = format!("<{name}");
    let mut at = from;
    while let Some(i) = lower[at..].find(&pattern) {
        let pos = at + i;
        let next = lower.as_bytes().get(pos + pattern.len()).copied();
        if matches!(next, Some(b' ' | b'\t' | b'\n' | b'\r' | b'>' | b'/')) {
            return Some(pos);
        }
        at = pos + pattern.len();
    }
    None
}

/// Attributes of the tag starting at `start`, and the index just after its `>`.
fn tag_attrs(html: &str, start: usize) -> Option<(Vec<(String, String)>, usize)> {
    let bytes = html.as_bytes();
    let mut i = start + 1;
    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' && bytes[i] != b'/'
    {
        i += 1;
    }
    let mut attrs = Vec::new();
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return None;
        }
        if bytes[i] == b'>' {
            return Some((attrs, i + 1));
        }
        let name_start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
        {
            i += 1;
        }
        let name = html[name_start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                let value_start = i + 1;
                let value_end = html[value_start..]
                    .find(quote as char)
                    .map(|e| value_start + e)?;
                value = decode_entities(&html[value_start..value_end]);
                i = value_end + 1;
            } else {
                let value_start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                value = decode_entities(&html[value_start..i]);
            }
        }
        attrs.push((name, value));
    }
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn has_attr(attrs: &[(String, String)], name: &str) -> bool {
    attrs.iter().any(|(n, _)| n == name)
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Decodes the character references template engines emit (`&amp;`, `&#x2F;`, `&#39;`...).
pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
            form.action.as_deref(),
            Some("/login?next=/oauth/authorize%3Fa%3D1&x=y")
        );
        assert_eq!(form.method, "post");
        assert_eq!(form.text_fields, vec!["username".to_owned()]);
        assert_eq!(form.password_fields, vec!["password".to_owned()]);
        assert_eq!(
            form.fields[0],
            ("csrf_token".to_owned(), "abc/def".to_owned())
        );
        assert_eq!(form.buttons[0].label, "Sign in");
    }

    #[test]
    fn picks_the_approving_button_and_skips_logout_forms() {
        let html = r#"<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="t"><button>Sign out</button></form>
            <form method="post" action="/oauth/authorize"><input type="hidden" name="csrf_token" value="t2">
            <input type="checkbox" name="remember" value="1" checked>
            <button type="submit" name="decision" value="deny">Deny</button>
            <button type="submit" name="decision" value="allow">Authorize</button></form>"#;
        let (form, button) = consent_choice(&forms(html)).expect("consent form");
        assert_eq!(form.action.as_deref(), Some("/oauth/authorize"));
        let body = form.encode(button.as_ref());
        assert_eq!(body, "csrf_token=t2&remember=1&decision=allow");
    }

    #[test]
    fn picks_the_approving_form_when_each_decision_has_its_own() {
        let html = r#"<form method="post" action="/c"><input type="hidden" name="approve" value="false"><button>Deny</button></form>
            <form method="post" action="/c"><input type="hidden" name="decision" value="approve"><button>Continue</button></form>"#;
        let (form, _) = consent_choice(&forms(html)).expect("consent form");
        assert_eq!(
            form.fields,
            vec![("decision".to_owned(), "approve".to_owned())]
        );
    }

    #[test]
    fn decodes_numeric_and_named_entities() {
        assert_eq!(
            decode_entities("a&amp;b&#39;c&#x27;&lt;&unknown;"),
            "a&b'c'<&unknown;"
        );
    }
}
