//! The `provider` binary end to end: operator commands, health check, bad configuration.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use oidc_core::jose::Algorithm;

use crate::helpers::{
    Browser, Consent, Pkce, USER_PASSWORD, USER_USERNAME, authorize_url, spawn_app,
};

pub fn provider(db: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    provider_with_env(db, args, stdin, &[])
}

/// Runs the binary on a blocking thread, so a server in this test's runtime keeps serving.
pub async fn provider_async(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let db = db.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        provider_with_env(&db, &args, None, &env)
    })
    .await
    .expect("command thread")
}

pub fn provider_with_env(
    db: &Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provider"));
    command
        .args(args)
        .env_clear()
        .env("PROVIDER_DATABASE_URL", db)
        .env("PROVIDER_BCRYPT_COST", "4")
        .env("PROVIDER_LOG", "off")
        // No .env file of the developer's is read from here.
        .current_dir(db.parent().expect("folder"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("run the provider binary");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
    }
    child.wait_with_output().expect("wait")
}

pub fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn one_line_error(output: &Output) -> String {
    assert!(!output.status.success(), "should fail");
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[tokio::test]
async fn operator_commands_work_end_to_end() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("cli.db");

    let out = provider(
        &db,
        &[
            "createsuperuser",
            "--username",
            "root",
            "--email",
            "root@example.com",
            "--password-stdin",
        ],
        Some("root-password-123\n"),
    );
    assert!(stdout(&out).contains("root"));
    let out = provider(
        &db,
        &[
            "user",
            "create",
            "--username",
            "dave",
            "--email",
            "dave@example.com",
            "--given-name",
            "Dave",
            "--password-stdin",
        ],
        Some("dave-password-123\n"),
    );
    stdout(&out);
    let err = one_line_error(&provider(
        &db,
        &["user", "create", "--username", "dave", "--password-stdin"],
        Some("dave-password-123\n"),
    ));
    assert!(
        err.contains("a user with this username already exists"),
        "{err}"
    );
    // Unique whatever the case or Unicode form (NFKC: fullwidth letters are letters).
    for username in ["DAVE", "Dave", "\u{ff24}\u{ff41}\u{ff56}\u{ff45}"] {
        let err = one_line_error(&provider(
            &db,
            &["user", "create", "--username", username, "--password-stdin"],
            Some("dave-password-123\n"),
        ));
        assert!(
            err.contains("a user with this username already exists"),
            "{username}: {err}"
        );
    }
    let err = one_line_error(&provider(
        &db,
        &[
            "user",
            "create",
            "--username",
            "david",
            "--email",
            "DAVE@example.com",
            "--password-stdin",
        ],
        Some("dave-password-123\n"),
    ));
    assert!(
        err.contains("a user with this e-mail address already exists"),
        "{err}"
    );
    let err = one_line_error(&provider(
        &db,
        &["user", "create", "--username", "eve", "--password-stdin"],
        Some("short\n"),
    ));
    assert!(err.contains("8"), "{err}");
    let users = stdout(&provider(&db, &["user", "list"], None));
    assert!(users.contains("root") && users.contains("(admin)") && users.contains("dave"));

    let out = provider(
        &db,
        &[
            "client",
            "create",
            "--name",
            "Tutorial",
            "--redirect-uri",
            "http://localhost:3000/api/auth/callback/provider",
            "--json",
        ],
        None,
    );
    let created: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let client_id = created["client_id"].as_str().expect("id").to_owned();
    let secret = created["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert!(secret.len() >= 43);
    let out = provider(
        &db,
        &[
            "client",
            "create",
            "--name",
            "SPA",
            "--public",
            "--client-id",
            "spa",
            "--redirect-uri",
            "https://spa.example/cb",
        ],
        None,
    );
    let text = stdout(&out);
    assert!(text.contains("client_id: spa") && !text.contains("client_secret"));
    let err = one_line_error(&provider(
        &db,
        &[
            "client",
            "create",
            "--name",
            "Bad",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
        None,
    ));
    assert!(err.contains("https"), "{err}");
    let list = stdout(&provider(&db, &["client", "list"], None));
    assert!(list.contains(&client_id) && list.contains("spa") && !list.contains(&secret));
    assert_eq!(created["can_introspect"], false);
    let out = provider(
        &db,
        &[
            "client",
            "create",
            "--name",
            "Profile API",
            "--client-id",
            "api",
            "--redirect-uri",
            "https://api.example/cb",
            "--introspect",
            "--json",
        ],
        None,
    );
    let api: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(api["can_introspect"], true);
    let listed: serde_json::Value =
        serde_json::from_str(&stdout(&provider(&db, &["client", "list", "--json"], None)))
            .expect("json");
    let flags: Vec<(&str, bool)> = listed
        .as_array()
        .expect("array")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().expect("id"),
                c["can_introspect"].as_bool().expect("flag"),
            )
        })
        .collect();
    assert!(
        flags.contains(&("api", true)) && flags.contains(&("spa", false)),
        "{flags:?}"
    );

    // Keys: generated on first use, rotated, retired.
    let keys = stdout(&provider(&db, &["keys", "list"], None));
    assert_eq!(
        keys.lines().filter(|l| l.contains("active")).count(),
        2,
        "{keys}"
    );
    let old_rs = keys
        .lines()
        .find(|l| l.contains("RS256"))
        .and_then(|l| l.split('\t').next())
        .expect("rs256 kid")
        .to_owned();
    let err = one_line_error(&provider(&db, &["keys", "retire", "--", &old_rs], None));
    assert!(err.contains("rotate first"), "{err}");
    stdout(&provider(
        &db,
        &["keys", "rotate", "--algorithm", "RS256"],
        None,
    ));
    let keys = stdout(&provider(&db, &["keys", "list"], None));
    assert!(
        keys.contains(&format!("{old_rs}\tRS256\tpublished")),
        "{keys}"
    );
    stdout(&provider(&db, &["keys", "retire", "--", &old_rs], None));
    let keys = stdout(&provider(&db, &["keys", "list"], None));
    assert!(
        keys.contains(&format!("{old_rs}\tRS256\tretired")),
        "{keys}"
    );
    let err = one_line_error(&provider(&db, &["keys", "retire", "no-such-kid"], None));
    assert!(err.contains("no-such-kid"), "{err}");
}

#[tokio::test]
async fn a_running_server_picks_up_keys_rotated_by_the_cli() {
    let app = spawn_app().await;
    let db = app.dir.path().join("provider.db");
    let database = crate::helpers::database_env(&app.settings);
    let database: Vec<(&str, &str)> = database.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let before = app
        .state
        .keys
        .active(Algorithm::ES256)
        .expect("key")
        .kid()
        .to_owned();
    stdout(&provider_async(&db, &["keys", "rotate", "--algorithm", "ES256"], &database).await);
    let mut changed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if app.state.keys.active(Algorithm::ES256).expect("key").kid() != before {
            changed = true;
            break;
        }
    }
    assert!(changed, "the server still signs with the old key");
    assert!(
        app.state.keys.jwks().find(&before).is_some(),
        "old key still published"
    );
}

#[tokio::test]
async fn healthcheck_reports_the_server_state() {
    let app = spawn_app().await;
    let db = app.dir.path().join("provider.db");
    let addr = format!("127.0.0.1:{}", app.port);
    let mut database = crate::helpers::database_env(&app.settings);
    database.push(("PROVIDER_ADDR", addr));
    let env: Vec<(&str, &str)> = database.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = provider_async(&db, &["healthcheck"], &env).await;
    stdout(&out);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_addr = closed.local_addr().expect("addr").to_string();
    drop(closed);
    one_line_error(&provider_with_env(
        &db,
        &["healthcheck"],
        None,
        &[("PROVIDER_ADDR", &closed_addr)],
    ));
}

#[tokio::test]
async fn bad_configuration_refuses_to_start_naming_the_setting() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("bad.db");
    for (name, value) in [
        ("PROVIDER_BCRYPT_COST", "twelve"),
        ("PROVIDER_ISSUER", "localhost:8000"),
        ("PROVIDER_SECRET_KEY", "short"),
        ("PROVIDER_ACCESS_TOKEN_TTL_SECS", "-1"),
    ] {
        let out = provider_with_env(&db, &["serve"], None, &[(name, value)]);
        let err = one_line_error(&out);
        assert!(err.contains(name), "{err}");
    }
    let out = provider_with_env(
        &db,
        &["serve"],
        None,
        &[("PROVIDER_ADDR", "256.0.0.1:99999")],
    );
    assert!(one_line_error(&out).contains("PROVIDER_ADDR"));
}

#[tokio::test]
async fn a_database_url_of_another_kind_refuses_to_start_and_creates_no_file() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("unused.db");
    for (url, setting, expected) in [
        (
            "mysql://user@127.0.0.1:3306/provider",
            "PROVIDER_DATABASE_URL",
            "not supported",
        ),
        (
            "sqlite3://provider.db",
            "PROVIDER_DATABASE_URL",
            "not supported",
        ),
        // PostgreSQL is supported, but only with the cookie key every replica shares.
        (
            "postgres://user@127.0.0.1:9/provider",
            "PROVIDER_SECRET_KEY",
            "PostgreSQL",
        ),
        (
            "postgresql://user@127.0.0.1:9/provider",
            "PROVIDER_SECRET_KEY",
            "PostgreSQL",
        ),
    ] {
        for args in [&["serve"][..], &["user", "list"][..]] {
            // An unusable address as well: should the URL pass, `serve` still stops at once.
            let env = [
                ("PROVIDER_DATABASE_URL", url),
                ("PROVIDER_ADDR", "256.0.0.1:99999"),
            ];
            let out = provider_with_env(&db, args, None, &env);
            let err = one_line_error(&out);
            assert!(err.contains(setting), "{err}");
            assert!(err.contains(expected), "{err}");
        }
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "nothing is created: {left:?}");
}

#[tokio::test]
async fn an_unreachable_postgres_database_refuses_to_start_naming_the_url_without_its_password() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("unused.db");
    // A loopback port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let url = format!("postgres://provider:hunter2@127.0.0.1:{port}/provider");
    let key = provider::config::CookieSecret::generate().to_base64();
    for args in [&["serve"][..], &["user", "list"][..]] {
        let env = [
            ("PROVIDER_DATABASE_URL", url.as_str()),
            ("PROVIDER_SECRET_KEY", key.as_str()),
            ("PROVIDER_ADDR", "127.0.0.1:0"),
        ];
        let out = provider_with_env(&db, args, None, &env);
        let err = one_line_error(&out);
        assert!(
            err.contains(&format!(
                "PROVIDER_DATABASE_URL=postgres://provider:***@127.0.0.1:{port}/provider"
            )),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("Connection refused"), "{err}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "nothing is created: {left:?}");
}

/// A `provider serve` child process; killed with SIGKILL when dropped.
struct ServeProcess {
    child: std::process::Child,
    base: String,
}

impl ServeProcess {
    /// Starts `provider serve` on `db` and waits until it answers `/healthz`.
    ///
    /// The port is found by binding port 0 and releasing it, so another test (or an outgoing
    /// connection) may take it before the child binds it: the child then exits with
    /// `cannot listen`, and the start is tried again on a new port. Any other early exit fails
    /// the test with what the child printed.
    async fn start(db: &Path) -> Self {
        for _ in 0..5 {
            match Self::try_start(db).await {
                Ok(process) => return process,
                Err(printed) if printed.contains("cannot listen on PROVIDER_ADDR") => continue,
                Err(printed) => panic!("provider serve did not become healthy:\n{printed}"),
            }
        }
        panic!("provider serve found no free port in five tries");
    }

    async fn try_start(db: &Path) -> Result<Self, String> {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            probe.local_addr().expect("addr").port()
        };
        let base = format!("http://127.0.0.1:{port}");
        let folder = db.parent().expect("folder");
        let log = folder.join(format!("serve-{port}.log"));
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_provider"))
            .arg("serve")
            .env_clear()
            .env("PROVIDER_DATABASE_URL", db)
            .env("PROVIDER_BCRYPT_COST", "4")
            .env("PROVIDER_LOG", "warn")
            .env("PROVIDER_ADDR", format!("127.0.0.1:{port}"))
            .env("PROVIDER_ISSUER", &base)
            .env(
                "PROVIDER_BOOTSTRAP_ADMIN_USERNAME",
                crate::helpers::ADMIN_USERNAME,
            )
            .env(
                "PROVIDER_BOOTSTRAP_ADMIN_PASSWORD",
                crate::helpers::ADMIN_PASSWORD,
            )
            .env(
                "PROVIDER_BOOTSTRAP_USER_USERNAME",
                crate::helpers::USER_USERNAME,
            )
            .env(
                "PROVIDER_BOOTSTRAP_USER_PASSWORD",
                crate::helpers::USER_PASSWORD,
            )
            .env("PROVIDER_BOOTSTRAP_USER_EMAIL", "alice@example.com")
            .env("PROVIDER_BOOTSTRAP_CLIENT_ID", crate::helpers::CLIENT_ID)
            .env(
                "PROVIDER_BOOTSTRAP_CLIENT_SECRET",
                crate::helpers::CLIENT_SECRET,
            )
            .env(
                "PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS",
                crate::helpers::REDIRECT_URI,
            )
            .current_dir(folder)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start provider serve");
        let mut process = Self { child, base };
        let printed = || std::fs::read_to_string(&log).unwrap_or_default();
        let client = reqwest::Client::new();
        // Up to a minute: two debug builds starting together on a loaded machine are slow.
        for _ in 0..1200 {
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(format!("exited with {status}:\n{}", printed()));
            }
            let healthy = client
                .get(format!("{}/healthz", process.base))
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if healthy {
                return Ok(process);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("no answer within a minute:\n{}", printed()))
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        // SIGKILL: no graceful shutdown, nothing flushed on the way out.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn data_survives_sigkill_of_the_server() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("killed.db");
    let server = ServeProcess::start(&db).await;
    let admin = Browser::new(&server.base);
    let login = admin
        .login(
            crate::helpers::ADMIN_USERNAME,
            crate::helpers::ADMIN_PASSWORD,
        )
        .await;
    assert_eq!(login.status(), reqwest::StatusCode::SEE_OTHER);
    let response = admin
        .submit(
            "/admin/applications/new",
            "/admin/applications",
            &[
                ("client_id", "survivor"),
                ("name", "Survivor"),
                ("client_type", "confidential"),
                ("redirect_uris", "https://app.example/cb"),
                ("algorithm", "RS256"),
            ],
        )
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER);
    let (_, html) = admin
        .get_html("/admin/applications/survivor/credentials")
        .await;
    assert!(html.contains("client-secret"));
    let keys_before = stdout(&provider_async(&db, &["keys", "list"], &[]).await);
    drop(server);

    let server = ServeProcess::start(&db).await;
    let list = stdout(&provider_async(&db, &["client", "list"], &[]).await);
    assert!(list.contains("survivor"), "{list}");
    let keys_after = stdout(&provider_async(&db, &["keys", "list"], &[]).await);
    assert_eq!(keys_before, keys_after);
    let again = Browser::new(&server.base);
    let login = again
        .login(
            crate::helpers::ADMIN_USERNAME,
            crate::helpers::ADMIN_PASSWORD,
        )
        .await;
    assert_eq!(login.status(), reqwest::StatusCode::SEE_OTHER);
}

/// Walks an authorization request of the `webapp` client at the browser's provider as alice
/// with the browser's cookies: logs in when the provider asks, clicks "Authorize" on a consent
/// page when `consent_allowed` (a consent page fails the test otherwise). Returns the code.
async fn code_at(browser: &Browser, pkce: &Pkce, consent_allowed: bool) -> String {
    let consent = if consent_allowed {
        Consent::Authorize
    } else {
        Consent::Unexpected
    };
    browser
        .drive(
            &authorize_url(&browser.base, pkce, &[]),
            Some((USER_USERNAME, USER_PASSWORD)),
            consent,
        )
        .await
        .code()
}

/// A token request of the `webapp` client at `base` with HTTP Basic authentication.
async fn token_at(base: &str, form: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .basic_auth(
            crate::helpers::CLIENT_ID,
            Some(crate::helpers::CLIENT_SECRET),
        )
        .form(form)
        .send()
        .await
        .expect("token request")
}

/// Redeems `code` at `base`; returns the status and the JSON body.
async fn redeem_at(
    base: &str,
    code: &str,
    pkce: &Pkce,
) -> (reqwest::StatusCode, serde_json::Value) {
    let response = token_at(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", crate::helpers::REDIRECT_URI),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await;
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

/// Refreshes at `base`; returns the status and the JSON body.
async fn refresh_at(base: &str, refresh_token: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let response = token_at(
        base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

/// The status of a userinfo request at `base` with `access_token`.
async fn userinfo_at(base: &str, access_token: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .get(format!("{base}/oauth/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo request")
        .status()
}

#[tokio::test]
async fn consents_and_issued_tokens_survive_sigkill_mid_flow() {
    use reqwest::StatusCode;
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("killed.db");
    let server = ServeProcess::start(&db).await;
    let browser = Browser::new(&server.base);
    let first = Pkce::new();
    let code = code_at(&browser, &first, true).await;
    let (status, tokens) = redeem_at(&server.base, &code, &first).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().expect("access token");
    let refresh = tokens["refresh_token"].as_str().expect("refresh token");
    assert_eq!(userinfo_at(&server.base, access).await, StatusCode::OK);
    // Mid-flow: a second code is issued and not yet redeemed when the process dies.
    let pending = Pkce::new();
    let pending_code = code_at(&browser, &pending, false).await;
    drop(server);

    let server = ServeProcess::start(&db).await;
    // Issued tokens still work, and the code issued before the kill can be redeemed.
    assert_eq!(userinfo_at(&server.base, access).await, StatusCode::OK);
    let (status, body) = redeem_at(&server.base, &pending_code, &pending).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = refresh_at(&server.base, refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        userinfo_at(&server.base, body["access_token"].as_str().expect("access")).await,
        StatusCode::OK
    );
    // The used mark of the first code survived too.
    let (status, body) = redeem_at(&server.base, &code, &first).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    // The consent survived: a fresh browser logs in and gets a code without a consent page.
    let fresh = Browser::new(&server.base);
    let pkce = Pkce::new();
    let code = code_at(&fresh, &pkce, false).await;
    assert_eq!(
        redeem_at(&server.base, &code, &pkce).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn two_server_processes_on_one_database_serve_one_flow_between_them() {
    use reqwest::StatusCode;
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("shared.db");
    // Both start at once on a fresh database: one set of keys, accounts and cookie key.
    let (a, b) = tokio::join!(ServeProcess::start(&db), ServeProcess::start(&db));
    let jwks = |base: String| async move {
        reqwest::get(format!("{base}/oauth/jwks"))
            .await
            .expect("jwks")
            .text()
            .await
            .expect("body")
    };
    assert_eq!(jwks(a.base.clone()).await, jwks(b.base.clone()).await);

    // A code issued by one process is redeemed at the other; tokens work at both.
    let browser = Browser::new(&a.base);
    let pkce = Pkce::new();
    let code = code_at(&browser, &pkce, true).await;
    let (status, tokens) = redeem_at(&b.base, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().expect("access");
    assert_eq!(userinfo_at(&a.base, access).await, StatusCode::OK);
    assert_eq!(userinfo_at(&b.base, access).await, StatusCode::OK);
    // The code is spent for both.
    assert_eq!(
        redeem_at(&a.base, &code, &pkce).await.0,
        StatusCode::BAD_REQUEST
    );

    // Consent given at one is honoured at the other.
    let other = Browser::new(&b.base);
    let pkce = Pkce::new();
    let code = code_at(&other, &pkce, false).await;
    let (status, tokens) = redeem_at(&a.base, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");

    // Rotation at one, reuse detection at the other.
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let (status, rotated) = refresh_at(&a.base, &refresh).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let (status, body) = refresh_at(&b.base, &refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let newest = rotated["access_token"].as_str().expect("access");
    assert_eq!(userinfo_at(&a.base, newest).await, StatusCode::UNAUTHORIZED);

    // Both serve at once: flows alternate between the processes, each step at the other one.
    let mut flows = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (here, there) = if i % 2 == 0 {
            (a.base.clone(), b.base.clone())
        } else {
            (b.base.clone(), a.base.clone())
        };
        let browser = other.at(&here);
        flows.spawn(async move {
            let pkce = Pkce::new();
            let code = code_at(&browser, &pkce, false).await;
            let (status, tokens) = redeem_at(&there, &code, &pkce).await;
            assert_eq!(status, StatusCode::OK, "{tokens}");
            let refresh = tokens["refresh_token"].as_str().expect("refresh");
            let (status, refreshed) = refresh_at(&here, refresh).await;
            assert_eq!(status, StatusCode::OK, "{refreshed}");
            let access = refreshed["access_token"].as_str().expect("access");
            assert_eq!(userinfo_at(&there, access).await, StatusCode::OK);
        });
    }
    while let Some(flow) = flows.join_next().await {
        flow.expect("a flow across the two processes failed");
    }
}

#[tokio::test]
async fn corrupt_files_and_a_code_lifetime_over_ten_minutes_refuse_to_start() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("bad.db");
    // Authorization codes live at most ten minutes.
    let err = one_line_error(&provider_with_env(
        &db,
        &["serve"],
        None,
        &[("PROVIDER_CODE_TTL_SECS", "601")],
    ));
    assert!(err.contains("PROVIDER_CODE_TTL_SECS"), "{err}");
    // A generated cookie key file that was damaged is not silently replaced.
    let key_file = dir.path().join("provider.secret_key");
    std::fs::write(&key_file, "not a key").expect("write key file");
    let err = one_line_error(&provider(&db, &["serve"], None));
    assert!(err.contains("PROVIDER_SECRET_KEY"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&key_file).expect("key file"),
        "not a key"
    );
    std::fs::remove_file(&key_file).expect("remove key file");
    // A `.env` that does not parse.
    std::fs::write(dir.path().join(".env"), "PROVIDER_ISSUER=\"unterminated\n").expect("write");
    let out = provider(&db, &["serve"], None);
    assert!(!out.status.success(), "should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: ") && err.contains(".env"), "{err}");
}
