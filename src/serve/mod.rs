//! `credpool serve`: one strategy and the file store behind HTTP, the pool as a running service
//! (DESIGN.md §8, docs/serve.md).
//!
//! - [`config`]: flags, the TOML config file and defaults, validated into one `Config`.
//! - [`keys`]: client and admin keys (files of one key per line, mode 0600), kept as digests.
//! - [`served`]: the strategy hosted: a registry design, or a `fleet` instance over Redis.
//! - [`service`]: what every request shares: the strategy (from the registry, on the wall
//!   clock), the store, the token endpoint, the lease table, the metrics.
//! - [`lease_id`]: unguessable lease ids from the OS.
//! - [`request_id`]: request ids for the logs (a process prefix and a counter).
//! - [`leases`]: leases in flight, their TTL and reclamation.
//! - [`expiry`]: when each leased token expires (the token endpoint, watched).
//! - [`watched_store`]: the store, watched: a completion is acknowledged only once written.
//! - [`api`]: the lease API (`/v1/lease`, `/v1/lease/{lease}/complete`).
//! - [`admin`]: `/v1/accounts` and switching accounts off and on.
//! - [`proxy`]: the reverse proxy for Gemini and Code Assist clients.
//! - [`upstream_client`]: its pooled HTTP client to the upstream API.
//! - [`metrics`]: `/metrics` in Prometheus text exposition.
//! - [`body`], [`error`]: JSON bodies in, JSON errors out.
//! - [`shutdown`]: drain on SIGTERM/SIGINT, flush the store, exit 0.
//!
//! The HTTP stack is axum on hyper, with tower-http for request ids and tracing; the strategies
//! and the store are the library's own, unchanged but for one hook (`switch`, for live disables).

pub mod admin;
pub mod api;
pub mod body;
pub mod config;
pub mod error;
pub mod expiry;
pub mod keys;
pub mod lease_id;
pub mod leases;
pub mod metrics;
pub mod proxy;
pub mod request_id;
pub mod served;
pub mod service;
pub mod shutdown;
pub mod upstream_client;
pub mod watched_store;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use error::ApiError;
use keys::Access;
use service::Service;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the service and serves until SIGTERM or SIGINT, then drains and exits.
/// `ready` is told the address actually bound (for `--listen 127.0.0.1:0`).
pub async fn run(config: config::Config, ready: impl FnOnce(std::net::SocketAddr)) -> Result<(), String> {
    let svc = Arc::new(Service::build(config)?);
    let listener = tokio::net::TcpListener::bind(svc.config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", svc.config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut signals = shutdown::Signals::install();
    announce(&svc, addr);
    ready(addr);
    let reaper = tokio::spawn(svc.leases.clone().reap_forever());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router(svc.clone())).with_graceful_shutdown(async {
        let _ = stopped.await;
    });
    let mut server = tokio::spawn(async move { server.await });
    let why = tokio::select! {
        why = signals.received() => why,
        done = &mut server => {
            return Err(format!("the server stopped: {}", match done {
                Ok(Ok(())) => "no reason".to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            }));
        }
    };
    shutdown::drain(&svc, why).await;
    let _ = stop.send(());
    if tokio::time::timeout(svc.config.drain_timeout, &mut server)
        .await
        .is_err()
    {
        tracing::warn!("requests still in progress after the drain timeout are cut off");
        server.abort();
    }
    reaper.abort();
    shutdown::flush(&svc).await;
    Ok(())
}

fn announce(svc: &Service, addr: std::net::SocketAddr) {
    let c = &svc.config;
    tracing::info!(
        %addr,
        strategy = c.strategy.as_str(),
        store = c.store.name(),
        accounts = svc.index.len(),
        token_url = %c.token_url,
        api_url = %c.api_url,
        lease_ttl = ?c.lease_ttl,
        "credpool serve listening"
    );
    if let Some(f) = &c.fleet {
        // The URL's host and port only: a redis:// URL may carry a password.
        let redis = reqwest::Url::parse(&f.redis_url)
            .map(|u| format!("{}:{}", u.host_str().unwrap_or("?"), u.port().unwrap_or(6379)))
            .unwrap_or_default();
        tracing::info!(%redis, pool = %f.pool, refresh_lease_ttl = ?f.refresh_lease_ttl, "fleet: shared pool on Redis");
    }
    match &svc.keys {
        None => tracing::warn!(
            "no --keys file: every caller on this loopback address may lease tokens (serve refuses a \
             non-loopback --listen without keys)"
        ),
        Some(k) => tracing::info!(client_keys = k.len(), "client keys loaded"),
    }
    match (&svc.keys, &svc.admin_keys) {
        (_, Some(k)) => tracing::info!(admin_keys = k.len(), "admin keys loaded"),
        (None, None) => tracing::warn!("no --admin-keys file: the admin API and /metrics are open on loopback"),
        (Some(_), None) => tracing::warn!("no --admin-keys file: the admin API and /metrics answer 403"),
    }
}

/// Every route, with auth, metrics, request ids and tracing.
pub fn router(svc: Arc<Service>) -> Router {
    let client = Router::new()
        .route("/v1/lease", post(api::lease))
        .route("/v1/lease/{lease}/complete", post(api::complete))
        .route_layer(middleware::from_fn_with_state(svc.clone(), client_auth));
    let admin = Router::new()
        .route("/v1/accounts", get(admin::accounts))
        .route("/v1/accounts/{id}/disable", post(admin::disable))
        .route("/v1/accounts/{id}/enable", post(admin::enable))
        .route("/metrics", get(metrics_text))
        .route_layer(middleware::from_fn_with_state(svc.clone(), admin_auth));
    Router::new()
        .merge(client)
        .merge(admin)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(proxy::handle)
        .layer(middleware::from_fn_with_state(svc.clone(), count))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
                // A 5xx here is mostly serve's own answer (503 while draining or when every
                // credential is banned), already logged with its status: not an error of serve's.
                .on_failure(DefaultOnFailure::new().level(tracing::Level::WARN))
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    // The path only: a query may carry a client's API key (`?key=`), headers carry keys.
                    tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
                }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, request_id::MakeRequestNumber::new()))
        .with_state(svc)
}

/// Counts every answer by route (the matched pattern, so lease ids do not make new series) and
/// status.
async fn count(State(svc): State<Arc<Service>>, req: Request, next: Next) -> Response {
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str().to_string(),
        None if proxy::is_proxy_path(req.uri().path()) => "proxy".to_string(),
        None => "unmatched".to_string(),
    };
    let response = next.run(req).await;
    svc.metrics
        .requests
        .get_or_create(&metrics::RouteLabels {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// The `401`/`403` for a request whose key `access` does not let it in, if any.
pub fn refused(access: Access, what: &str) -> Option<ApiError> {
    match access {
        Access::Open | Access::Granted => None,
        Access::Missing => Some(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("no key: expected `Authorization: Bearer KEY` (or `x-goog-api-key: KEY`) with a {what} key"),
        )),
        Access::Wrong => Some(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("that key is not one of the {what} keys"),
        )),
    }
}

async fn client_auth(State(svc): State<Arc<Service>>, req: Request, next: Next) -> Response {
    match refused(keys::check(svc.keys.as_ref(), req.headers()), "client") {
        Some(e) => e.into_response(),
        None => next.run(req).await,
    }
}

async fn admin_auth(State(svc): State<Arc<Service>>, req: Request, next: Next) -> Response {
    if svc.keys.is_some() && svc.admin_keys.is_none() {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "the admin API is off: serve was started with --keys and without --admin-keys",
        )
        .into_response();
    }
    match refused(keys::check(svc.admin_keys.as_ref(), req.headers()), "admin") {
        Some(e) => e.into_response(),
        None => next.run(req).await,
    }
}

async fn metrics_text(State(svc): State<Arc<Service>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        svc.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(svc): State<Arc<Service>>) -> Result<Json<serde_json::Value>, ApiError> {
    if svc.draining.load(Ordering::Relaxed) {
        return Err(ApiError::unavailable("draining: shutting down", 1));
    }
    Ok(Json(
        serde_json::json!({"status": "ready", "leases_in_flight": svc.leases.in_flight()}),
    ))
}
