//! Which form of a provider's page the generator submits, as a user would: the login form
//! filled in with the account, or the consent form with the button that approves. Forms are
//! told apart by what they hold and say, not by the names this provider gives them, so the
//! generator also drives other providers' pages.

use anyhow::anyhow;
use htmlform::{Form, Method};
use url::Position;

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

fn approves(text: &str) -> bool {
    mentions(text, APPROVE_WORDS) && !mentions(text, DENY_WORDS)
}

/// The page's login form (the one with a password field), if it has one.
pub fn login_form(forms: &[Form]) -> Option<&Form> {
    forms.iter().find(|form| form.is_login())
}

/// `form` with the account typed in: the username goes to the text field named like a user,
/// login or e-mail (or the first text field), the password to the first password field.
pub fn fill_login(form: &Form, username: &str, password: &str) -> anyhow::Result<Form> {
    let user_field = form
        .text_fields
        .iter()
        .find(|n| {
            let n = n.to_ascii_lowercase();
            n.contains("user") || n.contains("login") || n.contains("email")
        })
        .or(form.text_fields.first())
        .ok_or_else(|| anyhow!("login form without a username field"))?;
    let password_field = form
        .password_fields
        .first()
        .ok_or_else(|| anyhow!("login form without a password field"))?;
    let mut filled = form.clone();
    filled
        .set(user_field, username)
        .set(password_field, password);
    Ok(filled)
}

/// The consent form as sent by approving: the first POST form, not a login or logout form,
/// with an approving button pressed (or, failing that, the form whose hidden value approves).
pub fn consent_choice(forms: &[Form]) -> Option<Form> {
    let candidates = forms.iter().filter(|f| {
        !f.is_login()
            && f.method == Method::Post
            && !mentions(&f.action[Position::BeforePath..], &["logout"])
    });
    for form in candidates.clone() {
        let approving = form.buttons.iter().find(|b| {
            let text = format!(
                "{} {} {}",
                b.name.as_deref().unwrap_or(""),
                b.value,
                b.label
            );
            approves(&text)
        });
        if let Some(button) = approving {
            return Some(form.press(button));
        }
    }
    // Separate forms per decision, told apart by a hidden field and unnamed buttons.
    candidates
        .into_iter()
        .find(|f| {
            f.fields.iter().any(|(_, v)| approves(v))
                && !f.buttons.iter().any(|b| mentions(&b.label, DENY_WORDS))
        })
        .map(|f| match f.buttons.first() {
            Some(button) => f.press(button),
            None => f.clone(),
        })
}

#[cfg(test)]
mod tests {
    use htmlform::Document;
    use url::Url;

    use super::*;

    fn forms(html: &str) -> Vec<Form> {
        let page = Url::parse("http://127.0.0.1:8000/oauth/authorize?client_id=x").unwrap();
        Document::parse(html).forms(&page).unwrap()
    }

    #[test]
    fn picks_the_approving_button_and_skips_logout_forms() {
        let html = r#"<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="t"><button>Sign out</button></form>
            <form method="post" action="/oauth/authorize"><input type="hidden" name="csrf_token" value="t2">
            <input type="checkbox" name="remember" value="1" checked>
            <button type="submit" name="decision" value="deny">Deny</button>
            <button type="submit" name="decision" value="allow">Authorize</button></form>"#;
        let form = consent_choice(&forms(html)).expect("consent form");
        assert_eq!(form.action.path(), "/oauth/authorize");
        let body = form.encode();
        assert_eq!(body, "csrf_token=t2&remember=1&decision=allow");
    }

    #[test]
    fn picks_the_approving_form_when_each_decision_has_its_own() {
        let html = r#"<form method="post" action="/c"><input type="hidden" name="approve" value="false"><button>Deny</button></form>
            <form method="post" action="/c"><input type="hidden" name="decision" value="approve"><button>Continue</button></form>"#;
        let form = consent_choice(&forms(html)).expect("consent form");
        assert_eq!(
            form.fields,
            vec![("decision".to_owned(), "approve".to_owned())]
        );
    }

    #[test]
    fn fills_the_login_form_as_a_user_types() {
        let html = r#"<form method="post" action="/login"><input type="hidden" name="csrf_token" value="t">
            <input type="text" name="remember_me_label"><input type="email" name="login_email">
            <input type="password" name="pw"><button>Sign in</button></form>"#;
        let forms = forms(html);
        let form = login_form(&forms).expect("a login form");
        let filled = fill_login(form, "alice", "secret").unwrap();
        assert_eq!(
            filled.encode(),
            "csrf_token=t&remember_me_label=&login_email=alice&pw=secret"
        );
        assert!(
            consent_choice(&forms).is_none(),
            "a login form is no consent"
        );
        assert!(login_form(&self::forms("<form><input name=q></form>")).is_none());
    }
}
