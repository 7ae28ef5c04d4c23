//! [`Mock`]: the mock's state and its HTTP server (hyper HTTP/1.1, routed by axum).
//!
//! The accept loop is credpool's own rather than `axum::serve`, for two things Google's clients
//! meet and `axum::serve` cannot do: a **connection reset** (a handler marks its answer with
//! [`Reset`]; the service then fails, and hyper closes the connection without writing a byte),
//! and a **bounded shutdown** (stop accepting, let connections finish their answer for a grace
//! period, then drop the rest; their journal records are written as incomplete).
//!
//! Seeding: [`Mock::from_plan`] seeds the scenario's `[pool]` (each account's initial token
//! expiring where `pool.token_lifetime`, `expired` and `expire_all_at` put it; `pool.revoked`
//! accounts revoked) and returns the accounts, with the mock's tokens, for the target's accounts
//! file; [`Mock::seed_account`] seeds one account with a chosen expiry.

use super::answers::Answers;
use super::journal::Journal;
use super::tokens::{SeededAccount, TokenRegistry};
use super::{admin, api, token_endpoint};
use crate::clock::Clock;
use crate::model::{Account, EpochMs};
use crate::scenario::plan::Plan;
use crate::upstream::faults::UpstreamModel;
use axum::routing::post;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::ServiceExt as _;

/// Default journal capacity: a million records (32 MiB, touched only as it fills).
pub const DEFAULT_JOURNAL_CAPACITY: usize = 1_000_000;

/// How long connections may finish their answers after shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Everything a handler reads.
pub struct MockState {
    pub model: UpstreamModel,
    pub tokens: TokenRegistry,
    pub journal: Arc<Journal>,
    /// Epoch milliseconds for token expiry (the wall clock, as the target's accounts file has it).
    pub clock: Clock,
    /// Request numbers for requests that carry no `x-credpool-request` header.
    pub requests: AtomicU64,
    /// Success bodies, serialised once per model.
    pub answers: Answers,
}

/// A response extension: close the connection instead of answering.
#[derive(Clone, Copy, Debug)]
pub struct Reset;

/// The mock: state, seeding and the server. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Mock {
    state: Arc<MockState>,
}

impl Mock {
    /// A mock answering from `model`, with no account yet.
    pub fn new(model: UpstreamModel, journal_capacity: usize) -> Mock {
        Mock {
            state: Arc::new(MockState {
                model,
                tokens: TokenRegistry::new(),
                journal: Arc::new(Journal::new(journal_capacity)),
                clock: Clock::wall(),
                requests: AtomicU64::new(0),
                answers: Answers::default(),
            }),
        }
    }

    /// A mock for `plan`'s `[upstream]`, with its `[pool]` seeded. The accounts are returned as
    /// the target's accounts file should hold them (the mock's refresh and access tokens,
    /// `timestamp` and `expires_in` so that each expires where the plan says).
    pub fn from_plan(plan: &Plan, journal_capacity: usize) -> (Mock, Vec<Account>) {
        let mock = Mock::new(plan.upstream.clone(), journal_capacity);
        let mut accounts = plan.initial_accounts(mock.now_ms());
        for a in &mut accounts {
            let expires_at = a.expires_at().unwrap_or(mock.now_ms());
            let seeded = mock.seed_account(expires_at);
            a.access_token = seeded.access_token;
            a.refresh_token = seeded.refresh_token;
        }
        for &i in &plan.upstream.revoked {
            mock.revoke(i as u32);
        }
        (mock, accounts)
    }

    /// "Now" on the mock's clock, epoch ms (what token expiries are compared with).
    pub fn now_ms(&self) -> EpochMs {
        self.state.clock.now_ms()
    }

    /// Seeds one account whose initial access token expires at `expires_at_ms`.
    pub fn seed_account(&self, expires_at_ms: EpochMs) -> SeededAccount {
        self.state.tokens.seed(expires_at_ms)
    }

    /// Revokes `account`'s grant (refresh token and every access token). `false` if unknown.
    pub fn revoke(&self, account: u32) -> bool {
        self.state.tokens.revoke(account)
    }

    pub fn journal(&self) -> &Arc<Journal> {
        &self.state.journal
    }

    pub fn tokens(&self) -> &TokenRegistry {
        &self.state.tokens
    }

    pub fn model(&self) -> &UpstreamModel {
        &self.state.model
    }

    /// Google's surface and the admin surface.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/token", post(token_endpoint::token))
            .route("/v1beta/models/{target}", post(api::v1beta))
            .route("/v1internal:generateContent", post(api::code_assist_generate))
            .route("/v1internal:streamGenerateContent", post(api::code_assist_stream))
            .nest("/_mock", admin::router())
            .fallback(api::not_found)
            .with_state(self.state.clone())
    }

    /// Binds `addr` (loopback only) and serves in the background until [`Running::stop`].
    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<Running> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{addr}: the mock serves loopback only (expected 127.0.0.1:PORT)"),
            ));
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let router = self.router();
        let task = tokio::spawn(serve(router, listener, async move {
            let _ = rx.await;
        }));
        Ok(Running {
            addr,
            stop: Some(tx),
            task: Some(task),
        })
    }
}

/// A mock serving in the background.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets answers in progress finish (up to [`SHUTDOWN_GRACE`]), and returns
    /// when every connection is closed.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Why a connection was closed unanswered (never sent: hyper closes the connection on it).
#[derive(Debug)]
struct ResetError;

impl std::fmt::Display for ResetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected connection reset")
    }
}

impl std::error::Error for ResetError {}

/// Serves `router` on `listener` until `shutdown` completes, then drains (see the module doc).
pub async fn serve(router: Router, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let router = router.clone();
                let mut stop = stop_rx.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let router = router.clone();
                        async move {
                            let response = router.oneshot(req).await.unwrap_or_else(|e| match e {});
                            if response.extensions().get::<Reset>().is_some() {
                                Err(ResetError)
                            } else {
                                Ok(response)
                            }
                        }
                    });
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(tcp), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}
