//! A sign-in in headless Chromium with the web app configured against the balancer: every
//! page of the provider the browser sees and every back-channel call of the web app goes
//! through haproxy, alternating between the replicas.

use anyhow::{Context, ensure};

use testkit::replicas::Backend;

use crate::webdriver::{self, Driver, Session};

use super::two_replicas;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_and_out_through_haproxy_in_front_of_two_replicas_on_postgres() {
    let (driver_path, chromium) = webdriver::locate().unwrap_or_else(|webdriver::Missing(why)| {
        panic!(
            "{why}: install Debian's chromium and chromium-driver with scripts/install-test-deps"
        )
    });
    let replicas = two_replicas(Backend::Postgres, &[]).await;
    let webapp = replicas.start_webapp().await.expect("the web app starts");
    let driver = Driver::start(&driver_path, chromium)
        .await
        .expect("chromedriver starts");
    let session = driver.session().await.expect("a Chromium session");
    let outcome = sign_in_and_out(&session, &replicas, &webapp).await;
    if outcome.is_err() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-artifacts");
        let saved = session.save_artifacts(&dir, "replicas_sign_in").await;
        eprintln!("saved {saved:?}");
    }
    session.close().await;
    driver.stop().await;
    outcome.expect("sign-in through haproxy");
}

async fn sign_in_and_out(
    session: &Session,
    replicas: &testkit::replicas::Replicas,
    webapp: &testkit::TestWebapp,
) -> anyhow::Result<()> {
    let user = &replicas.user;
    let balancer = replicas.balancer.addr.port();
    session.goto(&webapp.url("/?view=replicas")).await?;
    session.wait_for_path("/api/auth/signin").await?;
    session
        .click_button(&format!("Sign in with {}", webapp.provider_name))
        .await?;
    let login = session.wait_for_path("/login").await?;
    ensure!(
        login.port() == Some(balancer),
        "the login page is served through haproxy: {login}"
    );
    session.fill("username", &user.username).await?;
    session
        .fill("password", &format!("{}\u{E007}", user.password))
        .await
        .context("submitting the login form")?;
    session.wait_for_text("Authorize").await?;
    ensure!(
        session.url().await?.port() == Some(balancer),
        "consent through haproxy"
    );
    session.click_button("Authorize").await?;

    let home = session.wait_for_path("/").await?;
    ensure!(
        home.port() == Some(webapp.port) && home.query() == Some("view=replicas"),
        "back on the page first asked for, got {home}"
    );
    session.wait_for_text(&user.email).await?;
    let json: serde_json::Value =
        serde_json::from_str(&session.wait_for("pre#session").await?.text().await?)
            .context("the session block is JSON")?;
    ensure!(
        json["status"] == "authenticated" && json["data"]["user"]["email"] == user.email.as_str(),
        "the session names the user: {json}"
    );
    let api = session.wait_for("pre#api").await?.text().await?;
    ensure!(
        api.contains(&user.email),
        "the protected API answered: {api}"
    );

    // Signing out ends at the web app's sign-in page, through the provider's logout.
    session.click_button("Sign out").await?;
    let deadline = std::time::Instant::now() + webdriver::STEP_TIMEOUT;
    let mut confirmed = false;
    loop {
        let url = session.url().await?;
        if url.port() == Some(webapp.port) && url.path() == "/api/auth/signin" {
            break;
        }
        if url.port() == Some(balancer) && !confirmed {
            confirmed = session.click_button_if_present("Sign out").await?;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "sign-out did not end on the web app's sign-in page; at {url}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Signed out at the provider too: the next sign-in asks for the password again.
    session.goto(&webapp.url("/")).await?;
    session.wait_for_path("/api/auth/signin").await?;
    session
        .click_button(&format!("Sign in with {}", webapp.provider_name))
        .await?;
    session.wait_for_path("/login").await?;
    session.wait_for("input[name='password']").await?;
    Ok(())
}
