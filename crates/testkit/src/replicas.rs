//! Several `provider serve` processes on one database behind haproxy, as a deployment with
//! replicas runs: one issuer (the balancer's URL), one `PROVIDER_SECRET_KEY`, one database.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use testkit::replicas::{Backend, Replicas};
//! let replicas = Replicas::start(Backend::Sqlite, 2).await?;
//! let jwks = reqwest::get(replicas.url("/oauth/jwks")).await?; // through haproxy
//! let first = reqwest::get(replicas.processes[0].url("/healthz")).await?; // one replica
//! # let _ = (jwks, first); Ok(()) }
//! ```

use std::net::TcpListener;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use tempfile::TempDir;

use crate::haproxy::{Haproxy, HaproxyOptions};
use crate::process::{ProviderProcess, provider_binary};
use crate::provider::{
    ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_USERNAME, CLIENT_ID, USER_EMAIL, USER_FAMILY_NAME,
    USER_GIVEN_NAME, USER_PASSWORD, USER_USERNAME, backchannel_logout_uri_for,
    post_logout_redirect_uris_for, redirect_uri_for,
};
use crate::webapp::Registration;
use crate::{Credentials, TestUser, TestWebapp, bind_loopback, random_secret};

/// The database the replicas share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file.
    Sqlite,
    /// One PostgreSQL database of a throwaway cluster.
    Postgres,
}

/// A fresh database for the replicas, removed when dropped.
pub struct SharedDatabase {
    /// Which backend it is.
    pub backend: Backend,
    /// What `PROVIDER_DATABASE_URL` is set to.
    pub url: String,
    _dir: Option<TempDir>,
}

impl SharedDatabase {
    /// A fresh, empty database on `backend`.
    pub async fn fresh(backend: Backend) -> anyhow::Result<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("testkit-shared-db-")
                    .tempdir()
                    .context("creating the database's folder")?;
                let url = dir.path().join("provider.db").display().to_string();
                Ok(Self {
                    backend,
                    url,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => Ok(Self {
                backend,
                url: crate::postgres::fresh_database().await?,
                _dir: None,
            }),
        }
    }
}

/// How the replicas are started.
#[derive(Debug, Clone)]
pub struct ReplicasOptions {
    /// The database they share.
    pub backend: Backend,
    /// How many `provider serve` processes.
    pub count: usize,
    /// Extra environment of every process (and of [`Replicas::cli`]), after the defaults.
    pub env: Vec<(String, String)>,
    /// haproxy checks `/healthz` of each replica and skips one that is down.
    pub health_checks: bool,
}

impl ReplicasOptions {
    /// `count` replicas on `backend`, no extra settings, no health checks.
    pub fn new(backend: Backend, count: usize) -> Self {
        Self {
            backend,
            count,
            env: Vec::new(),
            health_checks: false,
        }
    }

    /// Adds `name=value` to every process's environment.
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_owned(), value.into()));
        self
    }
}

/// Provider processes on one database behind haproxy; all stopped when dropped.
pub struct Replicas {
    /// The balancer; its URL is the issuer (dropped first).
    pub balancer: Haproxy,
    /// The `provider serve` processes, `replica{i}` in haproxy's `X-Served-By`.
    pub processes: Vec<ProviderProcess>,
    /// The issuer: the balancer's URL.
    pub issuer: String,
    /// The web app's client id.
    pub client_id: String,
    /// The web app's client secret.
    pub client_secret: String,
    /// The web app base URL the client is registered for.
    pub webapp_url: String,
    /// The registered redirect URI.
    pub redirect_uri: String,
    /// The seeded administrator.
    pub admin: Credentials,
    /// The seeded user.
    pub user: TestUser,
    /// The shared database.
    pub database: SharedDatabase,
    /// The environment every process got (without `PROVIDER_ADDR`).
    env: Vec<(String, String)>,
    reserved_webapp_listener: Mutex<Option<TcpListener>>,
    dir: TempDir,
}

impl Replicas {
    /// `count` replicas on a fresh database of `backend`.
    pub async fn start(backend: Backend, count: usize) -> anyhow::Result<Self> {
        Self::start_with(ReplicasOptions::new(backend, count)).await
    }

    /// Replicas as `options` say. The first process creates the schema, keys and seeded
    /// accounts alone; the others then start at once.
    pub async fn start_with(options: ReplicasOptions) -> anyhow::Result<Self> {
        anyhow::ensure!(options.count >= 1, "at least one replica");
        crate::init_test_logging();
        let binary = tokio::task::spawn_blocking(provider_binary)
            .await
            .context("looking for the provider binary")??;
        let database = SharedDatabase::fresh(options.backend).await?;
        let dir = tempfile::Builder::new()
            .prefix("testkit-replicas-")
            .tempdir()
            .context("creating the replicas' folder")?;
        let webapp_listener = bind_loopback()?;
        let webapp_url = format!("http://127.0.0.1:{}", webapp_listener.local_addr()?.port());
        // The issuer must be known before the processes start, and haproxy needs their ports:
        // the issuer's port is held while they start, then handed to haproxy.
        let issuer_listener = TcpListener::bind("127.0.0.1:0")?;
        let issuer_port = issuer_listener.local_addr()?.port();
        let issuer = format!("http://127.0.0.1:{issuer_port}");
        let client_secret = random_secret();
        let env = replica_env(&issuer, &database.url, &webapp_url, &client_secret)
            .into_iter()
            .chain(options.env.iter().cloned())
            .collect::<Vec<_>>();

        let mut processes = vec![ProviderProcess::start(&binary, dir.path(), &env).await?];
        let rest: Vec<_> = (1..options.count)
            .map(|_| {
                let (binary, folder, env) = (binary.clone(), dir.path().to_owned(), env.clone());
                tokio::spawn(async move { ProviderProcess::start(&binary, &folder, &env).await })
            })
            .collect();
        for started in rest {
            processes.push(started.await.context("starting a replica")??);
        }
        let backends: Vec<_> = processes.iter().map(|p| p.addr).collect();
        let haproxy_options = HaproxyOptions {
            health_check: options.health_checks.then(|| "/healthz".to_owned()),
            threads: Some(1),
        };
        drop(issuer_listener);
        let balancer = Haproxy::start_on(issuer_port, &backends, &haproxy_options)
            .await
            .context("starting haproxy on the issuer's port")?;

        Ok(Self {
            balancer,
            processes,
            issuer,
            client_id: CLIENT_ID.to_owned(),
            client_secret,
            redirect_uri: redirect_uri_for(&webapp_url),
            webapp_url,
            admin: Credentials {
                username: ADMIN_USERNAME.to_owned(),
                password: ADMIN_PASSWORD.to_owned(),
            },
            user: TestUser {
                username: USER_USERNAME.to_owned(),
                password: USER_PASSWORD.to_owned(),
                email: USER_EMAIL.to_owned(),
                given_name: USER_GIVEN_NAME.to_owned(),
                family_name: USER_FAMILY_NAME.to_owned(),
            },
            database,
            env,
            reserved_webapp_listener: Mutex::new(Some(webapp_listener)),
            dir,
        })
    }

    /// `{issuer}{path}`: through the balancer; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Runs the provider's command line (`provider keys rotate`, …) on the shared database
    /// with the replicas' settings; returns its standard output, or an error with its output.
    pub async fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let binary = tokio::task::spawn_blocking(provider_binary).await??;
        let output = tokio::process::Command::new(&binary)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("PROVIDER_LOG", "off")
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .with_context(|| format!("running provider {}", args.join(" ")))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        anyhow::ensure!(
            output.status.success(),
            "provider {} failed with {}:\n{stdout}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(stdout)
    }

    /// The issuer and client for a web app signing in through the balancer.
    pub fn registration(&self) -> Registration {
        Registration {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            webapp_url: self.webapp_url.clone(),
        }
    }

    /// Starts the web app the client was registered for, signing in through the balancer.
    pub async fn start_webapp(&self) -> anyhow::Result<TestWebapp> {
        let listener = self
            .reserved_webapp_listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        TestWebapp::start_registered(&self.registration(), listener, |_| {}).await
    }

    /// The folder the processes run in (their logs are there).
    pub fn folder(&self) -> &Path {
        self.dir.path()
    }
}

/// The settings every replica gets: the balancer as issuer, one cookie key, the shared
/// database, the seeded accounts and the web app's client.
fn replica_env(
    issuer: &str,
    database_url: &str,
    webapp_url: &str,
    client_secret: &str,
) -> Vec<(String, String)> {
    let secret_key = provider::config::CookieSecret::generate().to_base64();
    let post_logout = post_logout_redirect_uris_for(webapp_url).join(" ");
    [
        ("PROVIDER_ISSUER", issuer.to_owned()),
        ("PROVIDER_DATABASE_URL", database_url.to_owned()),
        ("PROVIDER_SECRET_KEY", secret_key),
        ("PROVIDER_BCRYPT_COST", "4".to_owned()),
        ("PROVIDER_LOG", "warn".to_owned()),
        ("PROVIDER_WORKERS", "2".to_owned()),
        // haproxy appends the client's address to X-Forwarded-For (`option forwardfor`).
        ("PROVIDER_TRUST_FORWARDED_FOR", "true".to_owned()),
        (
            "PROVIDER_BOOTSTRAP_ADMIN_USERNAME",
            ADMIN_USERNAME.to_owned(),
        ),
        (
            "PROVIDER_BOOTSTRAP_ADMIN_PASSWORD",
            ADMIN_PASSWORD.to_owned(),
        ),
        ("PROVIDER_BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL.to_owned()),
        ("PROVIDER_BOOTSTRAP_USER_USERNAME", USER_USERNAME.to_owned()),
        ("PROVIDER_BOOTSTRAP_USER_PASSWORD", USER_PASSWORD.to_owned()),
        ("PROVIDER_BOOTSTRAP_USER_EMAIL", USER_EMAIL.to_owned()),
        (
            "PROVIDER_BOOTSTRAP_USER_GIVEN_NAME",
            USER_GIVEN_NAME.to_owned(),
        ),
        (
            "PROVIDER_BOOTSTRAP_USER_FAMILY_NAME",
            USER_FAMILY_NAME.to_owned(),
        ),
        ("PROVIDER_BOOTSTRAP_CLIENT_ID", CLIENT_ID.to_owned()),
        ("PROVIDER_BOOTSTRAP_CLIENT_SECRET", client_secret.to_owned()),
        ("PROVIDER_BOOTSTRAP_CLIENT_NAME", "Web app".to_owned()),
        (
            "PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS",
            redirect_uri_for(webapp_url),
        ),
        (
            "PROVIDER_BOOTSTRAP_CLIENT_POST_LOGOUT_REDIRECT_URIS",
            post_logout,
        ),
        (
            "PROVIDER_BOOTSTRAP_CLIENT_BACKCHANNEL_LOGOUT_URI",
            backchannel_logout_uri_for(webapp_url),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
