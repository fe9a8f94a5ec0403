//! Logging setup for the binary (tests stay silent: they never call this).

use servicekit::logging::LogFormat;

/// Installs the subscriber filtered by `filter` (the `PROVIDER_LOG` setting, e.g. `info` or
/// `provider=debug,actix_web=info`; an invalid filter falls back to `info`), writing lines in
/// `format` (`PROVIDER_LOG_FORMAT`). Malformed requests of clients are counted, not logged as
/// errors (see `servicekit::logging`).
pub fn init(filter: &str, format: LogFormat) {
    servicekit::logging::init_with_format(filter, format);
}
