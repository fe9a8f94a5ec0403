//! The flow in a real headless Chromium: sign in through login and consent, sign out at both
//! ends, cancel on consent, wrong password, and single logout: a logout at the provider (its
//! own page, or RP-initiated by another application) ends the web app's session through
//! back-channel logout. One chromedriver and one stack serve every
//! scenario; each scenario gets a fresh browser profile.
//!
//! Without Chromium and chromedriver the test says it was skipped and why, unless `CI` is set,
//! where that is a failure. `SAVE_SCREENSHOTS=1` writes the README's screenshots to
//! `docs/screenshots/`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use testkit::Stack;

use crate::webdriver::{self, Driver, Session};

/// The workspace root (two levels above this crate).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the crate sits two levels below the workspace root")
        .to_path_buf()
}

/// Where failure screenshots and page sources go: `target/e2e-artifacts/`.
pub(crate) fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("e2e-artifacts")
}

/// Where the README's screenshots go when `SAVE_SCREENSHOTS=1`.
fn screenshots_dir() -> Option<PathBuf> {
    let wanted = std::env::var("SAVE_SCREENSHOTS").is_ok_and(|v| v == "1" || v == "true");
    wanted.then(|| workspace_root().join("docs").join("screenshots"))
}

pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_scenarios() {
    let (driver_path, chromium) = match webdriver::locate() {
        Ok(found) => found,
        Err(webdriver::Missing(why)) => {
            if in_ci() {
                panic!(
                    "browser tests cannot run: {why}. CI must run them: install Debian's \
                     chromium and chromium-driver (scripts/install-test-deps)"
                );
            }
            // Written to the stderr handle, not with eprintln!, which the test harness
            // captures and shows only for failing tests: a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: browser tests (e2e::browser): {why}. Install Debian's chromium \
                 and chromium-driver with scripts/install-test-deps to run them. ***\n"
            );
            return;
        }
    };
    let driver = Driver::start(&driver_path, chromium)
        .await
        .expect("chromedriver starts");
    let stack = Stack::start().await.expect("stack starts");

    let mut failures = Vec::new();
    for scenario in [
        Scenario::SignInAndSignOut,
        Scenario::CancelOnConsent,
        Scenario::WrongPassword,
        Scenario::LogoutAtProvider,
        Scenario::LogoutByAnotherApp,
    ] {
        if let Err(failure) = run(&driver, &stack, scenario).await {
            failures.push(failure);
        }
    }
    driver.stop().await;

    assert!(
        failures.is_empty(),
        "browser scenarios failed:\n{}",
        failures.join("\n")
    );
}

/// The scenarios, run one after the other against the same stack.
#[derive(Debug, Clone, Copy)]
enum Scenario {
    SignInAndSignOut,
    CancelOnConsent,
    WrongPassword,
    LogoutAtProvider,
    LogoutByAnotherApp,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::SignInAndSignOut => "sign_in_and_sign_out",
            Self::CancelOnConsent => "cancel_on_consent",
            Self::WrongPassword => "wrong_password",
            Self::LogoutAtProvider => "logout_at_provider",
            Self::LogoutByAnotherApp => "logout_by_another_app",
        }
    }

    async fn play(self, session: &Session, stack: &Stack) -> anyhow::Result<()> {
        match self {
            Self::SignInAndSignOut => sign_in_and_sign_out(session, stack).await,
            Self::CancelOnConsent => cancel_on_consent(session, stack).await,
            Self::WrongPassword => wrong_password(session, stack).await,
            Self::LogoutAtProvider => logout_at_provider(session, stack).await,
            Self::LogoutByAnotherApp => logout_by_another_app(session, stack).await,
        }
    }
}

/// Runs one scenario in a fresh browser; on failure saves a screenshot and the page source
/// under `target/e2e-artifacts/` and returns the error with their paths.
async fn run(driver: &Driver, stack: &Stack, scenario: Scenario) -> Result<(), String> {
    let name = scenario.name();
    let session = driver
        .session()
        .await
        .map_err(|error| format!("{name}: no browser session: {error:#}"))?;
    let outcome = scenario.play(&session, stack).await;
    let result = match outcome {
        Ok(()) => Ok(()),
        Err(error) => {
            let saved = session.save_artifacts(&artifacts_dir(), name).await;
            let paths: Vec<String> = saved.iter().map(|p| p.display().to_string()).collect();
            eprintln!(
                "browser scenario {name} failed; saved: {}",
                paths.join(", ")
            );
            Err(format!(
                "{name}: {error:#}\n    artifacts: {}",
                paths.join(", ")
            ))
        }
    };
    session.close().await;
    result
}

async fn screenshot(session: &Session, name: &str) -> anyhow::Result<()> {
    if let Some(dir) = screenshots_dir() {
        let path = dir.join(format!("{name}.png"));
        session.screenshot(&path).await?;
        eprintln!("saved {}", path.display());
    }
    Ok(())
}

/// From a gated page to the provider's login page through "Sign in with …".
async fn to_login_page(
    session: &Session,
    stack: &Stack,
    path: &str,
    shoot: bool,
) -> anyhow::Result<()> {
    session.goto(&stack.webapp.url(path)).await?;
    session.wait_for_path("/api/auth/signin").await?;
    session.wait_for_text("Sign in with").await?;
    if shoot {
        screenshot(session, "signin").await?;
    }
    session
        .click_button(&format!("Sign in with {}", stack.webapp.provider_name))
        .await?;
    let url = session.wait_for_path("/login").await?;
    ensure!(
        url.port() == Some(stack.provider.port),
        "the login page is the provider's: {url}"
    );
    session.wait_for("input[name='password']").await?;
    Ok(())
}

/// Types the credentials into the provider's login form and submits it with Enter.
async fn log_in(session: &Session, username: &str, password: &str) -> anyhow::Result<()> {
    session.fill("username", username).await?;
    session
        .fill("password", &format!("{password}\u{E007}"))
        .await
        .context("submitting the login form")
}

async fn sign_in_and_sign_out(session: &Session, stack: &Stack) -> anyhow::Result<()> {
    let user = &stack.provider.user;
    to_login_page(session, stack, "/?view=browser", true).await?;
    screenshot(session, "login").await?;
    log_in(session, &user.username, &user.password).await?;

    session.wait_for_text("Authorize").await?;
    screenshot(session, "consent").await?;
    session.click_button("Authorize").await?;

    let url = session.wait_for_path("/").await?;
    ensure!(
        url.port() == Some(stack.webapp.port) && url.query() == Some("view=browser"),
        "back on the page first asked for, got {url}"
    );
    session.wait_for_text(&user.email).await?;
    let session_json = session.wait_for("pre#session").await?.text().await?;
    let json: serde_json::Value =
        serde_json::from_str(&session_json).context("the session block is JSON")?;
    // What `useSession()` returns: `{ data: { user, expires }, status }`.
    ensure!(
        json["status"] == "authenticated"
            && json["data"]["user"]["name"] == user.name()
            && json["data"]["user"]["email"] == user.email.as_str(),
        "the session names the user: {json}"
    );
    let api = session.wait_for("pre#api").await?.text().await?;
    ensure!(
        api.contains(&user.email),
        "the protected API's data is shown: {api}"
    );
    screenshot(session, "home").await?;

    // Sign out: the web app's button, then the provider's confirmation if it asks for one
    // (it does not when the web app sends a valid id_token_hint).
    session.click_button("Sign out").await?;
    let deadline = std::time::Instant::now() + webdriver::STEP_TIMEOUT;
    let mut confirmed = false;
    loop {
        let url = session.url().await?;
        if url.port() == Some(stack.webapp.port) && url.path() == "/api/auth/signin" {
            break;
        }
        if url.port() == Some(stack.provider.port) && !confirmed {
            confirmed = session.click_button_if_present("Sign out").await?;
        }
        if std::time::Instant::now() > deadline {
            bail!("sign-out did not end on the web app's sign-in page; at {url}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    session.wait_for_text("Sign in with").await?;

    // Gated again, and the provider asks for the password again.
    session.goto(&stack.webapp.url("/")).await?;
    session.wait_for_path("/api/auth/signin").await?;
    to_login_page(session, stack, "/", false).await?;
    let text = session.text().await?;
    if text.contains(&user.email) {
        bail!("the provider still shows the user as signed in: {text}");
    }
    Ok(())
}

async fn cancel_on_consent(session: &Session, stack: &Stack) -> anyhow::Result<()> {
    // Consent given by the user in the first scenario is remembered, so this scenario signs
    // in as the administrator, who has never consented.
    to_login_page(session, stack, "/", false).await?;
    log_in(
        session,
        &stack.provider.admin.username,
        &stack.provider.admin.password,
    )
    .await?;
    session.wait_for_text("Authorize").await?;
    session.click_button("Cancel").await?;
    let url = session.wait_for_path("/api/auth/signin").await?;
    ensure!(
        url.port() == Some(stack.webapp.port),
        "back at the web app's sign-in page: {url}"
    );
    let message = session.wait_for("#signin-error").await?.text().await?;
    let lower = message.to_lowercase();
    ensure!(
        ["denied", "refused", "cancelled"]
            .iter()
            .any(|word| lower.contains(word)),
        "the sign-in page says access was denied: {message:?}"
    );
    Ok(())
}

async fn wrong_password(session: &Session, stack: &Stack) -> anyhow::Result<()> {
    let user = &stack.provider.user;
    to_login_page(session, stack, "/", false).await?;
    log_in(session, &user.username, "not-the-password").await?;
    let deadline = std::time::Instant::now() + webdriver::STEP_TIMEOUT;
    loop {
        let text = session.text().await?.to_lowercase();
        if text.contains("invalid") || text.contains("incorrect") || text.contains("wrong") {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!("no error message on the login page: {text}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let url = session.url().await?;
    ensure!(
        url.port() == Some(stack.provider.port) && url.path() == "/login",
        "still on the provider's login page: {url}"
    );
    session.wait_for("input[name='password']").await?;
    Ok(())
}

/// How long the web app may take to learn of a logout at the provider: the provider posts the
/// logout token in the background after answering the browser.
const BACKCHANNEL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Signs the seeded user in at the web app's home page, through consent if the provider asks
/// for it (it does not once an earlier scenario consented).
async fn sign_in_home(session: &Session, stack: &Stack) -> anyhow::Result<()> {
    let user = &stack.provider.user;
    to_login_page(session, stack, "/", false).await?;
    log_in(session, &user.username, &user.password).await?;
    let deadline = std::time::Instant::now() + webdriver::STEP_TIMEOUT;
    loop {
        let url = session.url().await?;
        if url.port() == Some(stack.webapp.port) && url.path() == "/" {
            break;
        }
        if url.port() == Some(stack.provider.port) {
            session.click_button_if_present("Authorize").await?;
        }
        if std::time::Instant::now() > deadline {
            bail!("sign-in did not end on the web app's home page; at {url}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    session.wait_for_text(&user.email).await
}

/// Reloads the web app's home page until it is gated (lands on the sign-in page), for up to
/// [`BACKCHANNEL_TIMEOUT`].
async fn wait_until_gated(session: &Session, stack: &Stack) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + BACKCHANNEL_TIMEOUT;
    loop {
        session.goto(&stack.webapp.url("/")).await?;
        let url = session.url().await?;
        if url.port() == Some(stack.webapp.port) && url.path() == "/api/auth/signin" {
            return session.wait_for_text("Sign in with").await;
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "the web app's home page was still open {BACKCHANNEL_TIMEOUT:?} after the \
                 logout at the provider; at {url}"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn logout_at_provider(session: &Session, stack: &Stack) -> anyhow::Result<()> {
    sign_in_home(session, stack).await?;
    // The provider's own logout page, in the same browser: the web app is not involved.
    session.goto(&stack.provider.url("/logout")).await?;
    session.click_button("Sign out").await?;
    let url = session.wait_for_path("/login").await?;
    ensure!(
        url.port() == Some(stack.provider.port),
        "the provider's logout ends on its login page: {url}"
    );
    wait_until_gated(session, stack).await
}

async fn logout_by_another_app(session: &Session, stack: &Stack) -> anyhow::Result<()> {
    // A second application at the same provider; the web app never hears from it.
    let client_id = "second-app";
    let return_to = stack.provider.url("/");
    stack
        .provider
        .register_client(
            client_id,
            vec![format!("{}/callback", stack.provider.issuer)],
            vec![return_to.clone()],
        )
        .await?;
    sign_in_home(session, stack).await?;

    let mut logout = url::Url::parse(&stack.provider.url("/oauth/logout"))?;
    logout
        .query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("post_logout_redirect_uri", &return_to)
        .append_pair("state", "bye");
    session.goto(logout.as_str()).await?;
    // Without an id_token_hint the provider asks the user to confirm.
    session.wait_for_text("asks to sign you out").await?;
    session.click_button("Sign out").await?;
    let deadline = std::time::Instant::now() + webdriver::STEP_TIMEOUT;
    loop {
        let url = session.url().await?;
        if url.port() == Some(stack.provider.port)
            && url.path() == "/"
            && url.query() == Some("state=bye")
        {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!("the logout did not return to the second application's address; at {url}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    wait_until_gated(session, stack).await
}
