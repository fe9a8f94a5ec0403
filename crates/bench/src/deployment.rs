//! The provider as measured: one process, or several on one database behind Debian's haproxy
//! (`balance roundrobin`), on SQLite or on a throwaway PostgreSQL cluster.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use testkit::haproxy::{Haproxy, HaproxyOptions};

use crate::flows::random_token;
use crate::process::{Service, free_port};

/// The provider's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Database {
    /// A SQLite file in the run's temporary folder.
    Sqlite,
    /// A database in a PostgreSQL cluster started for the run (initdb, pg_ctl).
    Postgres,
}

impl Database {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }

    /// A fresh database: its `PROVIDER_DATABASE_URL`.
    pub async fn fresh(self, dir: &Path) -> anyhow::Result<String> {
        match self {
            Self::Sqlite => Ok(dir.join("provider.db").display().to_string()),
            Self::Postgres => testkit::postgres::fresh_database()
                .await
                .context("--database postgres"),
        }
    }
}

/// How many provider processes, on which database, behind a balancer or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub database: Database,
    pub replicas: usize,
    /// haproxy in front (always with more than one replica).
    pub balanced: bool,
}

impl Layout {
    /// One process on SQLite, no balancer: the default.
    pub const SQLITE: Self = Self {
        database: Database::Sqlite,
        replicas: 1,
        balanced: false,
    };

    /// "SQLite ×1", "PostgreSQL ×2 behind haproxy", …
    pub fn describe(&self) -> String {
        let mut text = format!("{} ×{}", self.database.name(), self.replicas);
        if self.balanced {
            text.push_str(" behind haproxy (roundrobin, 1 thread)");
        }
        text
    }
}

/// The credentials and settings the provider is bootstrapped with.
pub struct Seed {
    pub username: String,
    pub password: String,
    pub client_id: String,
    pub client_secret: String,
}

/// What every provider process of a run is started with.
pub struct Setup<'a> {
    pub bcrypt_cost: u32,
    pub database_url: &'a str,
    /// One cookie key for every process (PostgreSQL has no folder to keep a generated one in).
    pub secret_key: &'a str,
    pub seed: &'a Seed,
    pub redirect_uri: &'a str,
    pub webapp_url: &'a str,
}

impl Setup<'_> {
    /// The environment of a process listening on `port` for `issuer`.
    pub fn env(&self, issuer: &str, port: u16) -> Vec<(String, String)> {
        // Everything else (PROVIDER_LOG included) is the provider's default or the caller's
        // environment.
        [
            ("PROVIDER_ISSUER", issuer.to_owned()),
            ("PROVIDER_ADDR", format!("127.0.0.1:{port}")),
            ("PROVIDER_DATABASE_URL", self.database_url.to_owned()),
            ("PROVIDER_SECRET_KEY", self.secret_key.to_owned()),
            ("PROVIDER_BCRYPT_COST", self.bcrypt_cost.to_string()),
            // Virtual users sign in as one account at once, and in-flight logins count against
            // the throttle: it is not what is measured.
            ("PROVIDER_LOGIN_MAX_FAILURES_PER_ACCOUNT", "1000000".into()),
            ("PROVIDER_LOGIN_MAX_FAILURES_PER_ADDRESS", "1000000".into()),
            // Every virtual user signs in as the same account, each with its own session.
            ("PROVIDER_SESSIONS_PER_USER", "100000".into()),
            ("PROVIDER_BOOTSTRAP_ADMIN_USERNAME", "admin".into()),
            ("PROVIDER_BOOTSTRAP_ADMIN_PASSWORD", random_token(18)),
            ("PROVIDER_BOOTSTRAP_ADMIN_EMAIL", "admin@example.com".into()),
            (
                "PROVIDER_BOOTSTRAP_USER_USERNAME",
                self.seed.username.clone(),
            ),
            (
                "PROVIDER_BOOTSTRAP_USER_PASSWORD",
                self.seed.password.clone(),
            ),
            ("PROVIDER_BOOTSTRAP_USER_EMAIL", "alice@example.com".into()),
            ("PROVIDER_BOOTSTRAP_USER_GIVEN_NAME", "Alice".into()),
            ("PROVIDER_BOOTSTRAP_USER_FAMILY_NAME", "Example".into()),
            ("PROVIDER_BOOTSTRAP_CLIENT_ID", self.seed.client_id.clone()),
            (
                "PROVIDER_BOOTSTRAP_CLIENT_SECRET",
                self.seed.client_secret.clone(),
            ),
            ("PROVIDER_BOOTSTRAP_CLIENT_NAME", "Bench".into()),
            (
                "PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS",
                self.redirect_uri.to_owned(),
            ),
            (
                "PROVIDER_BOOTSTRAP_CLIENT_POST_LOGOUT_REDIRECT_URIS",
                format!("{}/api/auth/signin", self.webapp_url),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// The running provider processes and the balancer in front of them; stopped when dropped.
pub struct Deployment {
    /// haproxy, when balanced (dropped first).
    pub balancer: Option<Haproxy>,
    pub providers: Vec<Service>,
    /// The issuer, `http://{addr}`.
    pub issuer: String,
    /// Where clients connect: the balancer, or the one process.
    pub addr: SocketAddr,
    /// The environment of the first process, to start it again alone on the same database.
    pub first_env: Vec<(String, String)>,
}

impl Deployment {
    /// Starts `layout.replicas` processes of `binary` in `dir`, logs under `out`: the first one
    /// alone (it creates the schema, keys and accounts), then the others, then haproxy on the
    /// issuer's port.
    pub async fn start(
        layout: &Layout,
        setup: &Setup<'_>,
        binary: &Path,
        dir: &Path,
        out: &Path,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        // Held while the processes start, so none of them is given it; then haproxy's.
        let issuer_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let issuer_port = issuer_listener.local_addr()?.port();
        // Without a balancer the one process binds it itself.
        let issuer_listener = layout.balanced.then_some(issuer_listener);
        let issuer = format!("http://127.0.0.1:{issuer_port}");
        let mut providers = Vec::with_capacity(layout.replicas);
        let mut first_env = Vec::new();
        for i in 0..layout.replicas {
            let port = if layout.balanced {
                free_port()?
            } else {
                issuer_port
            };
            let env = setup.env(&issuer, port);
            let log = if i == 0 {
                out.join("provider.log")
            } else {
                out.join(format!("provider-{i}.log"))
            };
            let _ = std::fs::remove_file(&log);
            let addr = ([127, 0, 0, 1], port).into();
            providers
                .push(Service::start("provider", binary, dir, &env, addr, &log, timeout).await?);
            if i == 0 {
                first_env = env;
            }
        }
        drop(issuer_listener);
        let balancer = if layout.balanced {
            let backends: Vec<SocketAddr> = providers.iter().map(|p| p.addr).collect();
            // One thread: it shares the cores with the providers and the generator.
            let options = HaproxyOptions {
                health_check: None,
                threads: Some(1),
            };
            Some(Haproxy::start_on(issuer_port, &backends, &options).await?)
        } else {
            None
        };
        Ok(Self {
            balancer,
            providers,
            addr: ([127, 0, 0, 1], issuer_port).into(),
            issuer,
            first_env,
        })
    }

    /// The provider processes' ids.
    pub fn pids(&self) -> Vec<u32> {
        self.providers.iter().map(Service::pid).collect()
    }

    /// From spawning the first process to its `/healthz` answering 200.
    pub fn first_ready_after(&self) -> Duration {
        self.providers
            .first()
            .map_or(Duration::ZERO, |p| p.ready_after)
    }

    /// Stops the balancer, then every process gracefully.
    pub fn stop(self) -> anyhow::Result<()> {
        drop(self.balancer);
        for provider in self.providers {
            provider.stop()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_describe_themselves() {
        let layout = |database, replicas, balanced| Layout {
            database,
            replicas,
            balanced,
        };
        assert_eq!(layout(Database::Sqlite, 1, false).describe(), "SQLite ×1");
        assert_eq!(
            layout(Database::Postgres, 2, true).describe(),
            "PostgreSQL ×2 behind haproxy (roundrobin, 1 thread)"
        );
    }
}
