//! Building and running the server: state, cookie session, security headers, the gate, routes.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession, TtlExtensionPolicy};
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::SameSite;
use actix_web::dev::Server;
use actix_web::error::InternalError;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};

use servicekit::body::{BodyDeadline, BodyLimits};
use servicekit::metrics::RecordRequests;

use crate::config::Settings;
use crate::flow::{FlowCookie, UsedStates};
use crate::gate;
use crate::metrics::Metrics;
use crate::oidc::Oidc;
use crate::pages::{self, ErrorKind};
use crate::refresh::RefreshCoordinator;
use crate::routes;
use crate::session_check;
use crate::state::{AppState, KeyPurpose, derive_key};
use crate::store::Store;

/// Largest form body accepted (the forms have two short fields).
const FORM_LIMIT_BYTES: usize = 16 * 1024;
/// How often ended and expired sessions and spent logout-token ids are deleted.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(10 * 60);
/// Largest request body read at all (the forms' own limit answers below it; 413 above).
const BODY_LIMIT_BYTES: usize = 4 * FORM_LIMIT_BYTES;

/// A bound, ready-to-run web app.
pub struct Application {
    port: u16,
    server: Server,
    /// The metrics listener (`WEBAPP_METRICS_ADDR`) and its address, when metrics are served.
    metrics: Option<(Server, SocketAddr)>,
}

impl Application {
    /// Binds `settings.addr` and builds the app.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.addr)
            .map_err(|e| anyhow::anyhow!("WEBAPP_ADDR: cannot listen on {}: {e}", settings.addr))?;
        Self::from_listener(settings, listener).await
    }

    /// Builds the app on an already bound listener (tests bind `127.0.0.1:0` first). Discovery
    /// starts in the background: pages are served while the provider is still coming up.
    pub async fn from_listener(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        pages::check_templates()?;
        let port = listener.local_addr()?.port();
        let metrics_listener = settings
            .metrics_addr
            .map(|addr| {
                TcpListener::bind(addr).map_err(|e| {
                    anyhow::anyhow!("WEBAPP_METRICS_ADDR: cannot listen on {addr}: {e}")
                })
            })
            .transpose()?;
        let secure = settings.url.is_https();
        let session_key = derive_key(&settings.session_secret, KeyPurpose::Session)?;
        let flow_key = derive_key(&settings.session_secret, KeyPurpose::Flow)?;
        let session_ttl = actix_web::cookie::time::Duration::seconds(
            i64::try_from(settings.session_max_age.as_secs()).unwrap_or(i64::MAX / 4),
        );
        let store = Store::open(&settings.database_path).map_err(|e| {
            anyhow::anyhow!(
                "WEBAPP_DATABASE_URL: {}: {e}",
                settings.database_path.display()
            )
        })?;
        store.spawn_sweeper(SWEEP_EVERY);
        let metrics = Metrics::new(&store);
        // Requests are recorded only when someone can read the numbers.
        let http_metrics = settings.metrics_addr.map(|_| metrics.http.clone());
        let registry = metrics.registry();
        let oidc = Arc::new(Oidc::new(settings.clone())?);
        oidc.spawn_discovery();
        let state = web::Data::new(AppState {
            flow: FlowCookie::new(flow_key, secure),
            oidc,
            used_states: UsedStates::default(),
            refresh: RefreshCoordinator::default(),
            store,
            metrics,
            settings,
        });
        let body_limits = BodyLimits {
            timeout: state.settings.body_timeout,
            max_bytes: BODY_LIMIT_BYTES,
        };
        let session_cookie_name = if secure {
            // `__Host-`: only ever set by this origin over https, for the whole site.
            "__Host-webapp.session"
        } else {
            "webapp.session"
        };

        let server = HttpServer::new(move || {
            let sessions =
                SessionMiddleware::builder(CookieSessionStore::default(), session_key.clone())
                    .cookie_name(session_cookie_name.to_owned())
                    .cookie_path("/".to_owned())
                    .cookie_http_only(true)
                    .cookie_secure(secure)
                    .cookie_same_site(SameSite::Lax)
                    // Encrypted and authenticated: the cookie carries tokens.
                    .cookie_content_security(CookieContentSecurity::Private)
                    .session_lifecycle(
                        PersistentSession::default()
                            .session_ttl(session_ttl)
                            .session_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
                    )
                    .build();
            App::new()
                .app_data(state.clone())
                .app_data(
                    web::FormConfig::default()
                        .limit(FORM_LIMIT_BYTES)
                        .error_handler(|error, _request| {
                            InternalError::from_response(
                                error,
                                pages::error_page(ErrorKind::Default),
                            )
                            .into()
                        }),
                )
                .app_data(web::PathConfig::default().error_handler(|error, _request| {
                    InternalError::from_response(error, pages::error_page(ErrorKind::NotFound))
                        .into()
                }))
                .configure(routes::configure)
                // Middleware runs outside-in from the last `wrap`: the arrival stamp (refreshes
                // are shared by when requests arrived), headers, session, the body's deadline
                // (before any route or the gate can wait on a body), the session's row, the gate.
                .wrap(from_fn(gate::gate))
                .wrap(from_fn(session_check::check_session))
                .wrap(BodyDeadline::new(body_limits))
                .wrap(sessions)
                .wrap(security_headers())
                .wrap(from_fn(crate::refresh::stamp_arrival))
                .wrap(RecordRequests::new(http_metrics.clone()))
        })
        .listen(listener)?
        .run();
        let metrics = match metrics_listener {
            Some(listener) => {
                let addr = listener.local_addr()?;
                Some((servicekit::metrics::serve(listener, registry)?, addr))
            }
            None => None,
        };
        Ok(Self {
            port,
            server,
            metrics,
        })
    }

    /// The port the app listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where metrics are served, when they are (`WEBAPP_METRICS_ADDR`, its port resolved).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, addr)| *addr)
    }

    /// Serves until the server is stopped; the metrics listener stops with it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics = self.metrics.map(|(server, _)| server);
        servicekit::metrics::run_with_metrics(self.server, metrics).await
    }
}

fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        // Callback URLs carry codes: never leak them through the Referer header.
        .add(("Referrer-Policy", "no-referrer"))
        .add((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        // Pages and JSON are per-user.
        .add(("Cache-Control", "no-store"))
}
