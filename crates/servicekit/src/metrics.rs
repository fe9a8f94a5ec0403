//! Prometheus metrics for both services: a registry, request counts and latencies recorded by a
//! middleware, the gauges and histogram of a connection pool, counters of outcomes, and the
//! separate HTTP listener that serves `GET /metrics` in the text exposition format (0.0.4).
//!
//! Label values come from closed sets only: the route is the matched pattern
//! (`/oauth/authorize`, `/api/auth/callback/{provider_id}`), never the path, and the method is
//! one of the standard ones or `other`, so requests cannot create new series at will.

use std::future::{Future, Ready, ready};
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::{Method, StatusCode, header};
use actix_web::{App, HttpResponse, HttpServer, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

pub use prometheus_client;
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
pub use prometheus_client::registry::Registry;

/// The route label of requests that matched no route (unknown paths).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Request latency buckets, in seconds (the Prometheus client libraries' defaults).
const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of the wait for a database connection, in seconds: mostly none at all.
const WAIT_BUCKETS: [f64; 12] = [
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0,
];

/// A counter with one label whose values are fixed in code (`outcome="succeeded"`).
#[derive(Clone, Debug)]
pub struct OutcomeCounter {
    label: &'static str,
    family: Family<[(&'static str, &'static str); 1], Counter>,
}

impl OutcomeCounter {
    /// Registers `name` (exported as `{prefix}_{name}_total`) with its `label`; each of
    /// `values` is exported from the start, at 0, so rates are defined before the first event.
    pub fn register(
        registry: &mut Registry,
        name: &str,
        help: &str,
        label: &'static str,
        values: &[&'static str],
    ) -> Self {
        let counter = Self {
            label,
            family: Family::default(),
        };
        for value in values {
            drop(counter.family.get_or_create(&[(label, value)]));
        }
        registry.register(name, help, counter.family.clone());
        counter
    }

    /// Counts one event with label value `value`.
    pub fn inc(&self, value: &'static str) {
        self.family.get_or_create(&[(self.label, value)]).inc();
    }

    /// The count of `value` so far.
    pub fn get(&self, value: &'static str) -> u64 {
        self.family
            .get(&[(self.label, value)])
            .map_or(0, |counter| counter.get())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Requests by method, route pattern and status, and their latency by route.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
}

impl HttpMetrics {
    /// Registers `http_requests` (`_total`) and `http_request_duration_seconds`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, matched route pattern and status code",
            metrics.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time until the response head was ready, by matched route pattern",
            metrics.latency.clone(),
        );
        metrics
    }

    fn record(&self, method: &'static str, route: String, status: StatusCode, took: Duration) {
        self.latency
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(took.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status: status.as_u16(),
            })
            .inc();
    }

    /// The middleware that records into these metrics; wrap it outermost.
    pub fn middleware(&self) -> RecordRequests {
        RecordRequests {
            metrics: Some(self.clone()),
        }
    }
}

/// The label of a method: the standard ones by name, any other as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Middleware recording every request into [`HttpMetrics`]; without metrics it only passes
/// requests on.
#[derive(Clone, Debug, Default)]
pub struct RecordRequests {
    metrics: Option<HttpMetrics>,
}

impl RecordRequests {
    /// Records into `metrics`, or nothing when `None` (metrics not served).
    pub fn new(metrics: Option<HttpMetrics>) -> Self {
        Self { metrics }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RecordRequests
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = RecordRequestsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RecordRequestsService {
            service,
            metrics: self.metrics.clone(),
        }))
    }
}

/// The service of [`RecordRequests`].
#[derive(Debug)]
pub struct RecordRequestsService<S> {
    service: S,
    metrics: Option<HttpMetrics>,
}

type BoxedResponse<B> = Pin<Box<dyn Future<Output = Result<ServiceResponse<B>, actix_web::Error>>>>;

impl<S, B> Service<ServiceRequest> for RecordRequestsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = BoxedResponse<B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let Some(metrics) = self.metrics.clone() else {
            return Box::pin(self.service.call(req));
        };
        let started = Instant::now();
        let method = method_label(req.method());
        let route = req
            .match_pattern()
            .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
        let response = self.service.call(req);
        Box::pin(async move {
            let result = response.await;
            let status = match &result {
                Ok(response) => response.status(),
                Err(error) => error.as_response_error().status_code(),
            };
            metrics.record(method, route, status, started.elapsed());
            result
        })
    }
}

/// A connection pool's connections in use, its size, and how long callers waited for one.
#[derive(Clone, Debug)]
pub struct PoolMetrics {
    in_use: Gauge,
    max: Gauge,
    wait: Histogram,
}

impl PoolMetrics {
    /// The metrics of a pool of `max` connections (registered by [`PoolMetrics::register`]).
    pub fn new(max: u32) -> Self {
        let metrics = Self {
            in_use: Gauge::default(),
            max: Gauge::default(),
            wait: Histogram::new(WAIT_BUCKETS),
        };
        metrics.max.set(i64::from(max));
        metrics
    }

    /// Registers `db_pool_connections_in_use`, `db_pool_connections_max` and
    /// `db_pool_wait_seconds`; `wait_help` says what the wait is for.
    pub fn register(&self, registry: &mut Registry, wait_help: &str) {
        registry.register(
            "db_pool_connections_in_use",
            "Database connections taken from the pool now",
            self.in_use.clone(),
        );
        registry.register(
            "db_pool_connections_max",
            "Database connections the pool holds at most",
            self.max.clone(),
        );
        registry.register("db_pool_wait_seconds", wait_help, self.wait.clone());
    }

    /// Records a wait that started at `since` and has just ended.
    pub fn waited(&self, since: Instant) {
        self.wait.observe(since.elapsed().as_secs_f64());
    }

    /// Counts a connection in use until the guard is dropped.
    pub fn in_use(&self) -> InUse {
        self.in_use.inc();
        InUse(self.in_use.clone())
    }

    /// Connections in use now.
    pub fn connections_in_use(&self) -> i64 {
        self.in_use.get()
    }
}

/// A connection counted in use; uncounted when dropped.
#[derive(Debug)]
pub struct InUse(Gauge);

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The metrics listener: `GET /metrics` answers the registry in the text format; other
/// methods there are 405 and other paths 404. One worker, and no signal handling of its own:
/// the service stops it when it stops ([`run_with_metrics`]).
pub fn serve(listener: TcpListener, registry: Arc<Registry>) -> std::io::Result<Server> {
    let registry = web::Data::from(registry);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(registry.clone())
            .service(
                web::resource("/metrics")
                    .route(web::get().to(exposition))
                    .default_service(web::to(method_not_allowed)),
            )
            .default_service(web::to(not_found))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}

async fn exposition(registry: web::Data<Registry>) -> HttpResponse {
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
        tracing::error!(%error, "cannot encode the metrics");
        return HttpResponse::InternalServerError().finish();
    }
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, CONTENT_TYPE))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(text)
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "GET"))
        .finish()
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().finish()
}

/// Runs the service's `main` server, and the metrics server beside it when there is one,
/// until `main` stops; then stops the metrics server too. Dropping the future drops both.
pub async fn run_with_metrics(main: Server, metrics: Option<Server>) -> std::io::Result<()> {
    let Some(metrics) = metrics else {
        return main.await;
    };
    let handle = metrics.handle();
    let mut main = std::pin::pin!(main);
    let mut metrics = std::pin::pin!(metrics);
    let mut metrics_running = true;
    let stopped = loop {
        tokio::select! {
            stopped = &mut main => break stopped,
            ended = &mut metrics, if metrics_running => {
                // Not expected (it has no signals); the service itself goes on.
                metrics_running = false;
                if let Err(error) = ended {
                    tracing::error!(%error, "the metrics listener stopped");
                }
            }
        }
    };
    if metrics_running {
        tokio::join!(handle.stop(true), metrics).1?;
    }
    stopped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_ones_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }

    #[test]
    fn outcome_counters_start_at_zero_and_count() {
        let mut registry = Registry::with_prefix("svc");
        let counter =
            OutcomeCounter::register(&mut registry, "logins", "Logins", "outcome", &["ok", "no"]);
        counter.inc("ok");
        counter.inc("ok");
        assert_eq!(counter.get("ok"), 2);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("svc_logins_total{outcome=\"ok\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("svc_logins_total{outcome=\"no\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn connections_in_use_are_counted_while_held() {
        let pool = PoolMetrics::new(4);
        let first = pool.in_use();
        let second = pool.in_use();
        assert_eq!(pool.connections_in_use(), 2);
        drop(first);
        drop(second);
        assert_eq!(pool.connections_in_use(), 0);
        pool.waited(Instant::now());
        let mut registry = Registry::with_prefix("svc");
        pool.register(&mut registry, "Waits");
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("svc_db_pool_wait_seconds_count 1\n"),
            "{text}"
        );
        assert!(text.contains("svc_db_pool_connections_max 4\n"), "{text}");
    }
}
