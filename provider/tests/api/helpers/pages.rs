//! What the tests read in the provider's pages, parsed as a browser parses them (htmlform).

use htmlform::Document;

/// The value of the hidden `csrf_token` field in `html`.
pub fn csrf_token(html: &str) -> Option<String> {
    input_value(html, "csrf_token")
}

/// The `value` of the first `<input>` named `name` in `html`, entities decoded.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    Document::parse(html).input_value(name)
}

/// The text of the first element of `html` matching the CSS `selector`, entities decoded.
pub fn element_text(html: &str, selector: &str) -> Option<String> {
    Document::parse(html)
        .select_text(selector)
        .unwrap_or_else(|error| panic!("{error}"))
}

/// The hidden inputs of `html` (name and decoded value), in document order.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    Document::parse(html).hidden_inputs()
}

/// The text a reader sees in `html`: entities decoded, tags and runs of white space gone.
pub fn page_text(html: &str) -> String {
    Document::parse(html).text()
}

/// Pages differ only in their CSRF token: remove it to compare two renderings.
pub fn without_csrf(html: &str) -> String {
    match csrf_token(html) {
        Some(token) => html.replace(&token, "TOKEN"),
        None => html.to_owned(),
    }
}
