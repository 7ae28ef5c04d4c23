//! Stopping cleanly on SIGTERM or SIGINT, so that nothing acknowledged is lost:
//!
//! 1. stop handing out leases (`POST /v1/lease` and new proxied requests answer `503`, `/readyz`
//!    turns `503` so a load balancer moves away), while completions are still taken;
//! 2. wait for the leases in flight to be completed, at most `--drain-timeout`;
//! 3. stop accepting connections and let the requests in progress finish (bounded by the same
//!    timeout again);
//! 4. wait for the store's writes in flight (with `group_commit`, the last batch's fsyncs);
//! 5. exit 0.
//!
//! Every `204` was sent after its outcome's durable write returned, so step 4 only concerns
//! writes nobody was told about yet (a refresh persisted behind the scenes).

use super::service::Service;
use crate::store::AccountStore;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// SIGTERM and SIGINT, caught from the moment this is built. It is built before serve says it
/// is listening: a supervisor that signals right after readiness must get a drain, not the
/// default action (death, with leases and writes in flight).
pub struct Signals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl Signals {
    pub fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(term), Ok(int)) => Signals(Some((term, int))),
            // Without signal handlers serve can only be killed; it still never acknowledges early.
            _ => Signals(None),
        }
    }

    /// Waits for SIGTERM or SIGINT; returns its name.
    pub async fn received(&mut self) -> &'static str {
        let Some((term, int)) = &mut self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
}

/// Steps 1 and 2: returns once no lease is in flight or the drain timeout passed.
pub async fn drain(svc: &Arc<Service>, why: &str) {
    svc.draining.store(true, Ordering::SeqCst);
    let timeout = svc.config.drain_timeout;
    tracing::info!(
        signal = why,
        in_flight = svc.leases.in_flight(),
        ?timeout,
        "draining: no new leases; waiting for the leases in flight"
    );
    let left = svc.leases.drained(timeout).await;
    if left > 0 {
        tracing::warn!(
            left,
            "drain timeout: leases still in flight are abandoned (their outcomes are not recorded)"
        );
    }
}

/// Step 4.
pub async fn flush(svc: &Service) {
    let left = svc.store.flushed(svc.config.drain_timeout).await;
    if left > 0 {
        tracing::error!(left, "store writes still in flight at exit");
    } else {
        tracing::info!(writes = svc.store.stats().writes, "store flushed; exiting");
    }
}
