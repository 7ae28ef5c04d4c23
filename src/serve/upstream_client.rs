//! The reverse proxy's client to `--api-url`: hyper's pooled client (hyper-util's `legacy`
//! client, the one reqwest wraps) over plain TCP for `http://` and rustls for `https://`
//! (Mozilla's roots, as reqwest's `rustls-tls`).
//!
//! Why not reqwest, which the token endpoint uses: a proxied request is one upstream call on the
//! hot path, and reqwest adds per request a URL parse, a second header map, a boxed body with
//! its timeout wrapper and a stream adapter on the answer. Here the client's body goes out as
//! `Bytes`, and the upstream's body (`Incoming`) is handed to axum as it is, so SSE frames pass
//! through as hyper reads them, with no task or buffer in between. No overall timeout (streams
//! last as long as the upstream sends), a connect timeout, no proxy from the environment,
//! `TCP_NODELAY` (small SSE frames must not wait for an ACK).

use axum::body::Body;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

/// How long a new connection to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle pooled connections are closed after this (reqwest's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Body>;

pub fn upstream_client() -> UpstreamClient {
    let mut tcp = HttpConnector::new();
    // The TLS layer above decides the scheme: `https_or_http` below.
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let connector = HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .build(connector)
}

/// What a failed upstream call says, down to its cause (`client error (Connect)` alone says
/// nothing), without the URL (it may carry a query).
pub fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
