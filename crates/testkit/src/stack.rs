//! Both services wired together, and the steps of a sign-in as a user takes them.

use anyhow::{Context, bail};

use crate::browser::{Browser, Form, Page};
use crate::{TestProvider, TestWebapp};

/// A provider and a web app registered with it, each on its own random port.
pub struct Stack {
    /// The web app (dropped first).
    pub webapp: TestWebapp,
    /// The provider.
    pub provider: TestProvider,
}

impl Stack {
    /// Starts the provider, then the web app on the port its client was registered for.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}, |_| {}).await
    }

    /// Like [`Stack::start`] with changes to either side's settings.
    pub async fn start_with(
        customize_provider: impl FnOnce(&mut provider::config::Settings),
        customize_webapp: impl FnOnce(&mut webapp::config::Settings),
    ) -> anyhow::Result<Self> {
        let provider = TestProvider::start_with(customize_provider).await?;
        let webapp = TestWebapp::start_with(&provider, customize_webapp).await?;
        Ok(Self { webapp, provider })
    }

    /// Signs the seeded user in from the web app's home page: sign-in page, "Sign in with …",
    /// provider login, consent "Authorize", back home. Returns the page the web app shows then.
    pub async fn sign_in(&self, browser: &Browser) -> anyhow::Result<Page> {
        self.sign_in_at(browser, "/").await
    }

    /// Like [`Stack::sign_in`], starting from the gated page `path`.
    pub async fn sign_in_at(&self, browser: &Browser, path: &str) -> anyhow::Result<Page> {
        let login = start_sign_in(browser, &self.webapp, path).await?;
        let user = &self.provider.user;
        let consent = log_in(browser, &login, &user.username, &user.password).await?;
        if !is_consent_page(&consent) {
            // Consent given before: the provider sent the browser straight back.
            return Ok(consent);
        }
        decide_consent(browser, &consent, "Authorize").await
    }
}

/// Visits the gated page `path` of `webapp`, expects the sign-in page, clicks "Sign in with …"
/// and returns the page the provider shows (its login page, unless already signed in there).
pub async fn start_sign_in(
    browser: &Browser,
    webapp: &TestWebapp,
    path: &str,
) -> anyhow::Result<Page> {
    let signin = browser.visit(webapp.url(path)).await?;
    let form = sign_in_form(&signin)?;
    browser.submit(&form).await
}

/// The form of the web app's sign-in page whose button reads "Sign in with …".
pub fn sign_in_form(page: &Page) -> anyhow::Result<Form> {
    for form in page.forms("form")? {
        if let Some(button) = form
            .buttons
            .iter()
            .find(|button| button.label.starts_with("Sign in with"))
        {
            let label = button.label.clone();
            return form.click(&label);
        }
    }
    bail!(
        "no \"Sign in with …\" button on {} ({}):\n{}",
        page.url,
        page.status,
        page.body
    )
}

/// The provider's login form: the one with a `password` field.
pub fn login_form(page: &Page) -> anyhow::Result<Form> {
    page.forms("form")?
        .into_iter()
        .find(|form| form.get("password").is_some())
        .with_context(|| {
            format!(
                "expected the provider's login page at {} ({}):\n{}",
                page.url, page.status, page.body
            )
        })
}

/// Fills the provider's login form on `page` and submits it; returns the page after the
/// redirects (the consent page, or the web app when consent was given before).
pub async fn log_in(
    browser: &Browser,
    page: &Page,
    username: &str,
    password: &str,
) -> anyhow::Result<Page> {
    let mut form = login_form(page)?;
    form.set("username", username).set("password", password);
    let submit = match form.buttons.first() {
        Some(button) => form.click(&button.label.clone())?,
        None => form,
    };
    browser.submit(&submit).await
}

/// Whether `page` is the provider's consent page (it has an "Authorize" button).
pub fn is_consent_page(page: &Page) -> bool {
    page.form_with_button("Authorize").is_ok()
}

/// Clicks `button` ("Authorize" or "Cancel") on the consent page and follows the redirects.
pub async fn decide_consent(browser: &Browser, page: &Page, button: &str) -> anyhow::Result<Page> {
    let form = page.form_with_button(button)?.click(button)?;
    browser.submit(&form).await
}
