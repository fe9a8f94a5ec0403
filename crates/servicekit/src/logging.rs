//! Logging set-up shared by both binaries.
//!
//! actix-http logs every connection that ends in an error at `ERROR` (`stream error: …`),
//! including the ones a client caused: a malformed request line or header, a head too large, a
//! request that timed out, a connection reset. A fuzzer or a port scanner then fills the log
//! with errors an operator can do nothing about, and real faults drown. Those client mistakes
//! are counted ([`client_errors`]) and shown only when the filter enables `debug` for
//! `actix_http` (e.g. `PROVIDER_LOG=info,actix_http=debug`); every other error stays.
//!
//! Lines are text ([`LogFormat::Text`], coloured only on a terminal, so `docker logs`, files and
//! CI get no escape codes) or one JSON object per line ([`LogFormat::Json`], for log collectors),
//! as the services' `*_LOG_FORMAT` setting says.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
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

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal only).
    #[default]
    Text,
    /// One JSON object per line, the event's fields at the top level, never coloured.
    Json,
}

impl LogFormat {
    /// `text` or `json` (any case), as the `*_LOG_FORMAT` settings take it.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("must be text or json (got {value:?})")),
        }
    }
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::parse(value)
    }
}

/// Installs the subscriber for a binary, writing text lines: see [`init_with_format`].
pub fn init(filter: &str) {
    init_with_format(filter, LogFormat::Text);
}

/// Installs the subscriber for a binary: `filter` is an `EnvFilter` directive string (an invalid
/// one falls back to `info`), lines go to stderr in `format`, with colours only when stderr is a
/// terminal. A second call keeps the first subscriber.
pub fn init_with_format(filter: &str, format: LogFormat) {
    let env_filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(QuietClientErrors::for_filter(filter))
        .with(env_filter)
        .with(output_layer(
            format,
            std::io::stderr,
            std::io::stderr().is_terminal(),
        ))
        .try_init();
}

/// The layer that writes lines to `writer`; `colour` only matters for text.
fn output_layer<S, W>(format: LogFormat, writer: W, colour: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => fmt::layer().with_writer(writer).with_ansi(colour).boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(writer)
            .with_ansi(false)
            .boxed(),
    }
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
        captured_as(filter, LogFormat::Text, false, emit)
    }

    /// Captures what the binaries' subscriber writes in `format` while `emit` runs.
    fn captured_as(filter: &str, format: LogFormat, colour: bool, emit: impl FnOnce()) -> String {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let buffer = Arc::clone(&buffer);
            move || Writer(Arc::clone(&buffer))
        };
        let subscriber = tracing_subscriber::registry()
            .with(QuietClientErrors::for_filter(filter))
            .with(EnvFilter::new(filter))
            .with(output_layer(format, writer, colour));
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

    fn some_events() {
        tracing::info!(user = "alice", "signed in");
        tracing::warn!(
            retry_in = 5,
            "provider discovery failed:\nconnection refused"
        );
        let span = tracing::info_span!("request", path = "/");
        span.in_scope(|| tracing::error!(target: "webapp::routes", "a \"quoted\" error"));
    }

    #[test]
    fn json_lines_are_one_object_each() {
        let output = captured_as("info", LogFormat::Json, false, some_events);
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), 3, "{output}");
        for line in &lines {
            let value: serde_json::Value = serde_json::from_str(line).expect(line);
            assert!(value.is_object(), "{line}");
            for field in ["timestamp", "level", "target", "message"] {
                assert!(value.get(field).is_some(), "{field} in {line}");
            }
        }
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["message"], "signed in");
        assert_eq!(first["user"], "alice");
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(
            second["message"],
            "provider discovery failed:\nconnection refused"
        );
        let third: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(third["level"], "ERROR");
        assert_eq!(third["span"]["path"], "/");
        // Colour is never asked of JSON.
        let coloured = captured_as("info", LogFormat::Json, true, some_events);
        assert!(!coloured.contains('\u{1b}'), "{coloured}");
    }

    #[test]
    fn text_has_colour_codes_only_when_asked() {
        // `init_with_format` asks for colour only when stderr is a terminal.
        let plain = captured_as("info", LogFormat::Text, false, some_events);
        assert!(plain.contains("signed in"), "{plain}");
        assert!(!plain.contains('\u{1b}'), "{plain}");
        let coloured = captured_as("info", LogFormat::Text, true, some_events);
        assert!(coloured.contains('\u{1b}'), "{coloured}");
    }

    #[test]
    fn log_formats_parse() {
        assert_eq!(LogFormat::parse("text"), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(" JSON "), Ok(LogFormat::Json));
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!(LogFormat::default(), LogFormat::Text);
        assert_eq!(
            LogFormat::parse("xml"),
            Err("must be text or json (got \"xml\")".to_owned())
        );
    }
}
