//! Logging setup for the binary (tests stay silent: they never call this).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs a formatting subscriber filtered by `filter` (the `PROVIDER_LOG` setting, e.g.
/// `info` or `provider=debug,actix_web=info`); an invalid filter falls back to `info`.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // A second call (e.g. a CLI command that also serves) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal, not in container logs.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
