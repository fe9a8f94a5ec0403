//! The command line of the `provider` binary: serving, and what an operator scripts.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Settings;

/// An OpenID Connect provider.
#[derive(Debug, Parser)]
#[command(name = "provider", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Exit 0 when the server at PROVIDER_ADDR answers GET /healthz with 200.
    Healthcheck,
}

/// Runs the command line; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Healthcheck => healthcheck(&settings.addr),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    crate::telemetry::init(&settings.log);
    let issuer = settings.issuer.clone();
    let app = crate::startup::Application::build(settings).await?;
    tracing::info!(port = app.port(), issuer = %issuer, "provider listening");
    app.run_until_stopped().await?;
    Ok(())
}

/// GETs `/healthz` on the listen address (a wildcard address is reached on loopback), without
/// an HTTP client library: the runtime image has no curl.
pub fn healthcheck(addr: &str) -> anyhow::Result<()> {
    let port = addr
        .rsplit_once(':')
        .map(|(_, p)| p)
        .context("PROVIDER_ADDR has no port")?;
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = match host {
        "0.0.0.0" | "" | "[::]" | "::" => "127.0.0.1",
        other => other,
    };
    let target = format!("{host}:{port}");
    let socket = target
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {target}"))?
        .next()
        .with_context(|| format!("cannot resolve {target}"))?;
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&socket, timeout)
        .with_context(|| format!("cannot connect to {target}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let status = response.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        anyhow::bail!("unhealthy: {target} answered {status:?}")
    }
}
