//! Passkeys in a real headless Chromium with a virtual authenticator: a user signs in with a
//! password, registers a passkey on `/account/passkeys`, signs out, and signs in again with the
//! passkey alone, then with the password and the passkey as second factor; each session's
//! `amr` says how. Once with a roaming security key (`hwk`)
//! and once with the device's own authenticator (`swk`).
//!
//! WebAuthn needs a secure context and a domain name as relying-party id: the provider's issuer
//! is `http://localhost:{port}` here.

use std::io::Write as _;

use anyhow::{Context, ensure};
use provider::storage::StorageError;
use provider::storage::{sessions, users};
use testkit::TestProvider;

use crate::browser::{artifacts_dir, in_ci};
use crate::virtual_authenticator::{Transport, VirtualAuthenticator};
use crate::webdriver::{self, Driver, Session};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_registration_and_passwordless_sign_in() {
    let (driver_path, chromium) = match webdriver::locate() {
        Ok(found) => found,
        Err(webdriver::Missing(why)) => {
            if in_ci() {
                panic!("browser tests cannot run: {why}. CI must run them.");
            }
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: passkey browser tests (e2e::passkeys): {why}. ***\n"
            );
            return;
        }
    };
    let driver = Driver::start(&driver_path, chromium)
        .await
        .expect("chromedriver starts");
    let provider = TestProvider::start_with(|settings| {
        settings.issuer = settings.issuer.replace("127.0.0.1", "localhost");
    })
    .await
    .expect("provider starts");

    let mut failures = Vec::new();
    for (transport, expected_amr) in [
        (Transport::Usb, "hwk mfa"),
        (Transport::Internal, "swk mfa"),
    ] {
        let name = format!("passkey_{transport:?}").to_lowercase();
        let session = driver.session().await.expect("a browser session");
        let outcome =
            register_and_sign_in(&driver, &session, &provider, transport, expected_amr).await;
        if let Err(error) = outcome {
            let saved = session.save_artifacts(&artifacts_dir(), &name).await;
            failures.push(format!("{name}: {error:#}\n    artifacts: {saved:?}"));
        }
        session.close().await;
    }
    driver.stop().await;
    assert!(
        failures.is_empty(),
        "passkey scenarios failed:\n{}",
        failures.join("\n")
    );
}

fn localhost(provider: &TestProvider, path: &str) -> String {
    format!("http://localhost:{}{path}", provider.port)
}

async fn register_and_sign_in(
    driver: &Driver,
    session: &Session,
    provider: &TestProvider,
    transport: Transport,
    expected_amr: &str,
) -> anyhow::Result<()> {
    let authenticator = VirtualAuthenticator::add(driver, session, transport).await?;
    let user = &provider.user;

    // Signed out, the page sends the user to log in first and back afterwards.
    session
        .goto(&localhost(provider, "/account/passkeys"))
        .await?;
    session.wait_for_path("/login").await?;
    session.fill("username", &user.username).await?;
    session
        .fill("password", &format!("{}\u{E007}", user.password))
        .await?;
    session.wait_for_path("/account/passkeys").await?;
    session.wait_for_text("Add a passkey").await?;

    let name = format!("Key {transport:?}");
    session.fill("passkey-name", &name).await?;
    session.click_button("Add a passkey").await?;
    session.wait_for_text("Your passkey was added.").await?;
    let named = format!("input[name='name'][value={name:?}]");
    session.wait_for(&named).await?;
    let credentials = authenticator.credentials().await?;
    ensure!(
        credentials.len() == 1 && credentials[0]["isResidentCredential"] == true,
        "the authenticator holds one discoverable credential: {credentials:?}"
    );

    session.goto(&localhost(provider, "/logout")).await?;
    session.click_button("Sign out").await?;
    session.wait_for_path("/login").await?;

    // No username, no password: the passkey names the user.
    session.click_button("Sign in with a passkey").await?;
    session.wait_for_path("/").await?;
    session
        .wait_for_text(&format!("You are signed in as {}", user.username))
        .await
        .context("signed in with the passkey")?;
    let amr = newest_amr(provider).await?;
    ensure!(
        amr == expected_amr,
        "the passkey login's amr is {amr:?}, expected {expected_amr:?}"
    );

    // With a passkey registered, a password login asks for it as the second factor.
    session.goto(&localhost(provider, "/logout")).await?;
    session.click_button("Sign out").await?;
    session.wait_for_path("/login").await?;
    session.fill("username", &user.username).await?;
    session
        .fill("password", &format!("{}\u{E007}", user.password))
        .await?;
    session.wait_for_path("/login/factor").await?;
    session.wait_for("#use-passkey").await?.click().await?;
    session.wait_for_path("/login/passkey").await?;
    session.click_button("Use a passkey").await?;
    session.wait_for_path("/").await?;
    session
        .wait_for_text(&format!("You are signed in as {}", user.username))
        .await
        .context("signed in with a password and the passkey")?;
    let amr = newest_amr(provider).await?;
    let both = format!("pwd {expected_amr}");
    ensure!(
        amr == both,
        "the password and passkey login's amr is {amr:?}, expected {both:?}"
    );

    session
        .goto(&localhost(provider, "/account/passkeys"))
        .await?;
    session.wait_for(&named).await?;
    ensure!(
        !session.text().await?.contains("never"),
        "the passkey's last use is shown"
    );
    // Removed again, so that the next round's password login asks for no second factor.
    session.click_button("Remove").await?;
    session.wait_for_text("The passkey was removed.").await?;
    session.wait_for_text("You have no passkeys yet.").await?;
    Ok(())
}

/// The `amr` of the seeded user's most recent session.
async fn newest_amr(provider: &TestProvider) -> anyhow::Result<String> {
    let username = provider.user.username.clone();
    let rows = provider
        .state()
        .db
        .run(move |conn| {
            let user = users::find_by_username(conn, &username)?
                .ok_or_else(|| StorageError::Corrupt("no such user".into()))?;
            sessions::for_user(conn, &user.id).map_err(StorageError::from)
        })
        .await?;
    rows.into_iter()
        .max_by_key(|row| (row.created_at, row.last_seen_at))
        .map(|row| row.amr)
        .context("the user has a session")
}
