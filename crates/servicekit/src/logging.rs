//! Logging set-up shared by both binaries.
//!
//! actix-http logs every connection that ends in an error at `ERROR` (`stream error: …`),
//! including the ones a client caused: a malformed request line or header, a head too large, a
//! request that timed out, a connection reset. A fuzzer or a port scanner then fills the log
//! with errors an operator can do nothing about, and real faults drown. Those client mistakes
//! are counted ([`client_errors`]) and shown only when the filter enables `debug` for
//! `actix_http` (e.g. `PROVIDER_LOG=info,actix_http=debug`); every other error stays.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, fmt};

/// Where actix-http logs the end of a connection.
const DISPATCHER: &str = "actix_http::h1::dispatcher";

/// How actix-http's connection errors that a client causes begin (its `DispatchError`'s
/// messages). "service error", "body error", "upgrade error" and "internal error" are the
/// server's own and stay errors.
const CLIENT_CAUSED: [&str; 5] = [
    "stream error: request parse error",
    "stream error: request did not complete within the specified timeout",
    "stream error: connection shutdown timeout",
    "stream error: handler dropped payload before reading EOF",
    "stream error: I/O error",
];

static CLIENT_ERRORS: AtomicU64 = AtomicU64::new(0);

/// How many connections ended in a client's mistake since start (not logged as errors).
pub fn client_errors() -> u64 {
    CLIENT_ERRORS.load(Ordering::Relaxed)
}

/// Installs the subscriber for a binary: `filter` is an `EnvFilter` directive string (an
/// invalid one falls back to `info`); colours only on a terminal, so container logs and files
/// carry no escape codes. A second call keeps the first subscriber.
pub fn init(filter: &str) {
    let env_filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(QuietClientErrors::for_filter(filter))
        .with(env_filter)
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .try_init();
}

/// Drops (and counts) the connection errors a client caused, unless `debug` is on for them.
#[derive(Debug, Clone, Copy)]
pub struct QuietClientErrors {
    show: bool,
}

impl QuietClientErrors {
    /// Shows client errors only when `filter` enables `debug` for actix-http's dispatcher.
    pub fn for_filter(filter: &str) -> Self {
        // `Targets` reads the plain `target=level` form; a filter with span or field
        // directives is not understood by it, and then client errors stay quiet.
        let show = filter
            .parse::<Targets>()
            .is_ok_and(|targets| targets.would_enable(DISPATCHER, &Level::DEBUG));
        Self { show }
    }
}

impl<S: Subscriber> Layer<S> for QuietClientErrors {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if metadata.target() != DISPATCHER || *metadata.level() != Level::ERROR {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if !CLIENT_CAUSED
            .iter()
            .any(|start| message.0.starts_with(start))
        {
            return true;
        }
        CLIENT_ERRORS.fetch_add(1, Ordering::Relaxed);
        self.show
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Captures what a subscriber with `filter` writes while `emit` runs.
    fn captured(filter: &str, emit: impl FnOnce()) -> String {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let buffer = Arc::clone(&buffer);
            move || Writer(Arc::clone(&buffer))
        };
        let subscriber = tracing_subscriber::registry()
            .with(QuietClientErrors::for_filter(filter))
            .with(EnvFilter::new(filter))
            .with(fmt::layer().with_writer(writer).with_ansi(false));
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = buffer.lock().expect("buffer").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    struct Writer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Writer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn client_mistakes() {
        tracing::error!(target: "actix_http::h1::dispatcher", "stream error: {}", "request parse error: invalid Header provided");
        tracing::error!(target: "actix_http::h1::dispatcher", "stream error: {}", "I/O error: Connection reset by peer (os error 104)");
    }

    #[test]
    fn client_mistakes_are_counted_not_logged() {
        let before = client_errors();
        let output = captured("info", || {
            client_mistakes();
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: {}", "internal error");
            tracing::error!(target: "provider", "database unavailable");
        });
        assert!(!output.contains("request parse error"), "{output}");
        assert!(!output.contains("Connection reset"), "{output}");
        assert!(output.contains("internal error"), "{output}");
        assert!(output.contains("database unavailable"), "{output}");
        assert!(client_errors() >= before + 2);
    }

    #[test]
    fn debug_for_actix_http_shows_them() {
        for filter in ["info,actix_http=debug", "debug", "actix_http::h1=trace"] {
            let output = captured(filter, client_mistakes);
            assert!(output.contains("request parse error"), "{filter}: {output}");
        }
        for filter in ["info", "warn,actix_http=info", "info,provider=debug"] {
            let output = captured(filter, client_mistakes);
            assert!(
                !output.contains("request parse error"),
                "{filter}: {output}"
            );
        }
    }
}
