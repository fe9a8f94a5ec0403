//! Building the application: database and migrations, keys, bootstrap, then the HTTP server on
//! a listener. Nothing listens before the database is ready.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::StatusCode;
use actix_web::middleware::{DefaultHeaders, Logger};
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;

use servicekit::body::{BodyDeadline, BodyLimits};
use servicekit::metrics::RecordRequests;

use crate::config::{CookieSecret, Settings};
use crate::identity::password::PasswordHasher;
use crate::identity::throttle::LoginThrottle;
use crate::key_ring::KeyStore;
use crate::metrics::Metrics;
use crate::pages::{Templates, error_page};
use crate::state::AppState;
use crate::storage::Db;

/// The security headers every response carries (handlers may set stricter ones). Scripts come
/// only from this origin (the passkey ceremonies; no inline script exists) and may only talk
/// back to it, styles are inline in the layout, and no page may be framed. There is no
/// `form-action`: browsers apply it to the redirect that follows a form post, which would
/// block the consent form's redirect back to the application.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

/// Largest request body read. Above the forms' own limits (64 KiB for pages, 16 KiB for the
/// OAuth endpoints), so that those keep answering their own errors; beyond it, 413.
const BODY_LIMIT_BYTES: usize = 256 * 1024;

/// A built, not yet running, provider.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    /// The metrics listener (`PROVIDER_METRICS_ADDR`) and its address, when metrics are served.
    metrics: Option<(Server, SocketAddr)>,
    /// The background sweeper of expired rows; stopped when the server stops.
    sweeper: tokio::task::JoinHandle<()>,
    backchannel: tokio::task::JoinHandle<()>,
}

impl Application {
    /// Binds `settings.addr` and builds the application.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.addr)
            .with_context(|| format!("cannot listen on PROVIDER_ADDR={}", settings.addr))?;
        Self::from_listener(settings, listener).await
    }

    /// Builds the application on an already bound listener (tests bind `127.0.0.1:0`).
    pub async fn from_listener(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        settings.validate()?;
        let port = listener.local_addr()?.port();
        let metrics_listener = settings
            .metrics_addr
            .map(|addr| {
                TcpListener::bind(addr)
                    .with_context(|| format!("cannot listen on PROVIDER_METRICS_ADDR={addr}"))
            })
            .transpose()?;
        let secret = cookie_secret(&settings)?;
        let state = prepare(settings).await?;
        state.keys.spawn_watcher(std::time::Duration::from_secs(
            state.settings.keys_reload_secs,
        ));
        let sweeper = crate::storage::sweep::spawn(
            state.db.clone(),
            std::time::Duration::from_secs(state.settings.sweep_interval_secs),
            state.settings.audit_retention_days,
        );
        let backchannel = crate::backchannel::spawn(state.clone());
        let server = serve(state.clone(), listener, secret)?;
        let metrics = match metrics_listener {
            Some(listener) => {
                let addr = listener.local_addr()?;
                let registry = state.metrics.registry();
                Some((servicekit::metrics::serve(listener, registry)?, addr))
            }
            None => None,
        };
        Ok(Self {
            port,
            server,
            state,
            metrics,
            sweeper,
            backchannel,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where metrics are served, when they are (`PROVIDER_METRICS_ADDR`, its port resolved).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, addr)| *addr)
    }

    /// The shared state (for tests and the CLI).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (signal or handle); the metrics listener stops
    /// with it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics = self.metrics.map(|(server, _)| server);
        let stopped = servicekit::metrics::run_with_metrics(self.server, metrics).await;
        self.sweeper.abort();
        self.backchannel.abort();
        stopped
    }
}

/// Opens the database and applies migrations, parses the templates, prepares the hasher and
/// applies the bootstrap settings: everything the HTTP server and the CLI share.
pub async fn prepare(settings: Settings) -> anyhow::Result<AppState> {
    let url = settings.database_url.clone();
    let shown = settings.database_target().redacted();
    let pool_size = settings.db_pool_size;
    let db = tokio::task::spawn_blocking(move || -> anyhow::Result<Db> {
        let db = Db::open(&url, pool_size)
            .with_context(|| format!("cannot open the database PROVIDER_DATABASE_URL={shown}"))?;
        db.migrate()
            .context("cannot apply the database migrations")?;
        Ok(db)
    })
    .await
    .context("database set-up task failed")??;
    let templates = Templates::load().context("cannot parse the page templates")?;
    let hasher = PasswordHasher::new(settings.bcrypt_cost).await?;
    let keys = KeyStore::open(db.clone())
        .await
        .context("cannot load the signing keys")?;
    let metrics = Metrics::new(&db);
    let state = AppState {
        keys,
        throttle: LoginThrottle::new(settings.login_throttle.clone(), db.clone()),
        settings: Arc::new(settings),
        db,
        templates,
        hasher,
        discovery: Arc::default(),
        metrics,
    };
    crate::bootstrap::run(&state).await?;
    Ok(state)
}

/// The cookie key: from the settings, else from the key file next to the database, else a new
/// one written there (readable by the owner only).
fn cookie_secret(settings: &Settings) -> anyhow::Result<CookieSecret> {
    if let Some(secret) = &settings.secret_key {
        return Ok(secret.clone());
    }
    let path = settings.secret_key_path();
    if path.exists() {
        return read_key_file(&path);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    }
    // Written to a private temporary file, then linked into place: the link fails if the key
    // file exists, so two processes starting together agree on one key, and a reader never
    // sees a half-written file.
    let secret = CookieSecret::generate();
    let temporary = path.with_extension(format!("tmp-{}", crate::storage::new_id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = options
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(secret.to_base64().as_bytes())?;
            file.sync_all()
        })
        .with_context(|| format!("cannot write the cookie key file {}", temporary.display()));
    let linked = written.and_then(|()| match std::fs::hard_link(&temporary, &path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => {
            Err(e).with_context(|| format!("cannot create the cookie key file {}", path.display()))
        }
    });
    let _ = std::fs::remove_file(&temporary);
    if linked? {
        tracing::info!(path = %path.display(), "generated a new cookie key (PROVIDER_SECRET_KEY)");
        return Ok(secret);
    }
    read_key_file(&path)
}

fn read_key_file(path: &std::path::Path) -> anyhow::Result<CookieSecret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the cookie key file {}", path.display()))?;
    CookieSecret::parse(&text).map_err(|m| {
        anyhow::anyhow!(
            "invalid setting PROVIDER_SECRET_KEY: the key file {} {m}",
            path.display()
        )
    })
}

fn serve(state: AppState, listener: TcpListener, secret: CookieSecret) -> anyhow::Result<Server> {
    let workers = state.settings.workers;
    // Requests are recorded only when someone can read the numbers.
    let http_metrics = state
        .settings
        .metrics_addr
        .map(|_| state.metrics.http.clone());
    let secure = state.settings.secure_cookies();
    let body_limits = BodyLimits {
        timeout: std::time::Duration::from_secs(state.settings.body_timeout_secs),
        max_bytes: BODY_LIMIT_BYTES,
    };
    let data = web::Data::new(state);
    let mut server = HttpServer::new(move || {
        App::new()
            // Innermost, so it sees the handler's own answer before the headers are added.
            .wrap(actix_web::middleware::from_fn(
                crate::unavailable::middleware,
            ))
            .wrap(BodyDeadline::new(body_limits))
            .wrap(crate::identity::session::middleware(&secret, secure))
            .wrap(security_headers())
            .wrap(request_log())
            .wrap(RecordRequests::new(http_metrics.clone()))
            .app_data(data.clone())
            .app_data(
                web::FormConfig::default()
                    .limit(64 * 1024)
                    .error_handler(|err, _req| {
                        let response = error_page(
                            StatusCode::BAD_REQUEST,
                            "Bad request",
                            "The form could not be read. Go back and try again.",
                        );
                        actix_web::error::InternalError::from_response(err, response).into()
                    }),
            )
            .app_data(web::QueryConfig::default().error_handler(|err, _req| {
                let response = error_page(
                    StatusCode::BAD_REQUEST,
                    "Bad request",
                    "The address has invalid parameters.",
                );
                actix_web::error::InternalError::from_response(err, response).into()
            }))
            .app_data(web::PathConfig::default().error_handler(|err, _req| {
                let response =
                    error_page(StatusCode::NOT_FOUND, "Not found", "There is no such page.");
                actix_web::error::InternalError::from_response(err, response).into()
            }))
            .configure(routes)
            .default_service(web::to(not_found))
    })
    .listen(listener)?;
    if let Some(workers) = workers {
        server = server.workers(workers);
    }
    Ok(server.run())
}

/// Every route of the provider.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::health::healthz)
        .route("/", web::get().to(crate::pages::home::home))
        .configure(crate::identity::login::configure)
        .configure(crate::identity::passkeys::configure)
        .configure(crate::identity::factor::configure)
        .configure(crate::identity::security::configure)
        .configure(crate::admin::configure)
        .configure(crate::account::configure)
        .configure(crate::oauth::configure);
}

/// One line per request: method, path (never the query, which can carry ID-token hints),
/// status and duration. Health checks are left out.
fn request_log() -> Logger {
    Logger::new("%{request}xi %s %Dms")
        .custom_request_replace("request", |req| format!("{} {}", req.method(), req.path()))
        .exclude("/healthz")
}

/// The headers of docs/security.md on every response.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Frame-Options", "DENY"))
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Cache-Control", "no-store"))
}

async fn not_found() -> HttpResponse {
    error_page(StatusCode::NOT_FOUND, "Not found", "There is no such page.")
}
