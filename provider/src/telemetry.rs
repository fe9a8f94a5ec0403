//! Logging setup for the binary (tests stay silent: they never call this).

/// Installs the subscriber filtered by `filter` (the `PROVIDER_LOG` setting, e.g. `info` or
/// `provider=debug,actix_web=info`); an invalid filter falls back to `info`. Malformed requests
/// of clients are counted, not logged as errors (see `servicekit::logging`).
pub fn init(filter: &str) {
    servicekit::logging::init(filter);
}
