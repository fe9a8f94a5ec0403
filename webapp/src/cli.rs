//! The command line: `serve` (default), `secret`, `healthcheck`.

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::{ConfigError, SessionSecret, Settings};
use crate::startup::Application;

/// The relying-party web app.
#[derive(Debug, Parser)]
#[command(name = "webapp", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web app (configured by WEBAPP_* and OIDC_* variables and `.env`).
    Serve,
    /// Print a fresh random value for WEBAPP_SESSION_SECRET.
    Secret,
    /// Exit 0 if the running web app answers GET /healthz (for container health checks).
    Healthcheck,
}

/// Runs the command line; the process exit code is the result.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Secret => {
            println!("{}", SessionSecret::generate().secret());
            Ok(())
        }
        Command::Healthcheck => healthcheck().await,
    }
}

async fn serve() -> anyhow::Result<()> {
    let settings = Settings::from_env().map_err(|e: ConfigError| anyhow::anyhow!("{e}"))?;
    // Malformed requests of clients are counted, not logged as errors; no colours off a terminal.
    servicekit::logging::init_with_format(&settings.log, settings.log_format);
    tracing::info!(
        url = %settings.url.url(),
        addr = settings.addr,
        issuer = settings.issuer.as_str(),
        redirect_uri = settings.redirect_uri(),
        "starting"
    );
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}

/// The address to probe: WEBAPP_ADDR, with a wildcard host replaced by loopback.
pub fn healthcheck_url(addr: &str) -> String {
    let addr = addr
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    format!("http://{addr}/healthz")
}

async fn healthcheck() -> anyhow::Result<()> {
    let _ = dotenvy::dotenv();
    let addr = std::env::var("WEBAPP_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let url = healthcheck_url(&addr);
    let client = openidconnect::reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let response = client.get(&url).send().await?;
    if response.status().is_success() {
        Ok(())
    } else {
        anyhow::bail!("{url} answered {}", response.status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthcheck_probes_loopback_for_wildcard_addresses() {
        assert_eq!(
            healthcheck_url("0.0.0.0:3000"),
            "http://127.0.0.1:3000/healthz"
        );
        assert_eq!(healthcheck_url("[::]:3000"), "http://[::1]:3000/healthz");
        assert_eq!(
            healthcheck_url("127.0.0.1:4000"),
            "http://127.0.0.1:4000/healthz"
        );
    }

    #[test]
    fn cli_parses_subcommands() {
        assert!(Cli::try_parse_from(["webapp"]).unwrap().command.is_none());
        assert!(matches!(
            Cli::try_parse_from(["webapp", "secret"]).unwrap().command,
            Some(Command::Secret)
        ));
        assert!(Cli::try_parse_from(["webapp", "bogus"]).is_err());
    }
}
