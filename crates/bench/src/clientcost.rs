//! What the HTTP client costs the generator: the same requests through reqwest and through the
//! bare hyper connection this generator uses, with the generator's CPU time per request.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use crate::http::Conn;
use crate::procfs;

#[derive(Debug, Clone, Serialize)]
pub struct ClientCost {
    pub client: &'static str,
    pub path: String,
    pub concurrency: usize,
    pub requests: u64,
    pub errors: u64,
    pub per_sec: f64,
    /// The generator's CPU time per request (user + system), in microseconds.
    pub generator_cpu_us_per_request: f64,
    /// CPU cores the generator used meanwhile.
    pub generator_cpu: f64,
}

/// Runs `GET path` with each client in turn; must be called inside a `LocalSet`.
pub async fn compare(
    addr: SocketAddr,
    path: &str,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Vec<ClientCost>> {
    let url = format!("http://{addr}{path}");
    let reqwest_client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let mut results = Vec::new();
    for client in ["hyper", "reqwest"] {
        let ok = Rc::new(Cell::new(0u64));
        let errors = Rc::new(Cell::new(0u64));
        let me = std::process::id();
        let cpu_before = procfs::cpu_seconds(me).unwrap_or(0.0);
        let started = Instant::now();
        let deadline = started + duration;
        let mut set = JoinSet::new();
        for _ in 0..concurrency {
            let (ok, errors) = (Rc::clone(&ok), Rc::clone(&errors));
            let (url, path) = (url.clone(), path.to_owned());
            let reqwest_client = reqwest_client.clone();
            set.spawn_local(async move {
                let mut conn = Conn::new(addr);
                while Instant::now() < deadline {
                    let success = if client == "hyper" {
                        matches!(conn.get(&path, &[]).await, Ok(r) if r.status.is_success())
                    } else {
                        match reqwest_client.get(&url).send().await {
                            Ok(response) => {
                                let success = response.status().is_success();
                                response.bytes().await.is_ok() && success
                            }
                            Err(_) => false,
                        }
                    };
                    let counter = if success { &ok } else { &errors };
                    counter.set(counter.get() + 1);
                }
            });
        }
        while let Some(joined) = set.join_next().await {
            joined?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let cpu = procfs::cpu_seconds(me).unwrap_or(0.0) - cpu_before;
        let requests = ok.get();
        results.push(ClientCost {
            client,
            path: path.to_owned(),
            concurrency,
            requests,
            errors: errors.get(),
            per_sec: requests as f64 / seconds,
            generator_cpu_us_per_request: cpu * 1e6 / (requests.max(1)) as f64,
            generator_cpu: cpu / seconds,
        });
    }
    Ok(results)
}
