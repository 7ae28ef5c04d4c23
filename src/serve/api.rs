//! The lease API, for proxies in any language:
//!
//! - `POST /v1/lease` `{"model": "...", "user": "..."}` → `200 {"lease", "account",
//!   "access_token", "expires_at"}`, or `503` with `Retry-After` when no credential can serve the
//!   model (every account disabled, or banned for the model's series).
//! - `POST /v1/lease/{lease}/complete` `{"status": 200}` (or an error status, with an optional
//!   `"retry_delay": "1.5s"` or the upstream's error `"body"`) → `204` once the outcome is in the
//!   accounts file; `404` for a lease never issued (or reclaimed after its TTL), `409` for one
//!   completed already.

use super::body::read_json;
use super::config::LEASE_BODY_LIMIT;
use super::error::ApiError;
use super::lease_id::LeaseId;
use super::leases::TakeError;
use super::service::Service;
use super::watched_store::watch;
use crate::model::rate_limit::{parse_delay_ms, parse_error_value};
use crate::model::time::to_rfc3339;
use crate::model::{Outcome, RetryHint};
use crate::strategy::{AcquireError, CredentialManager, Lease, Request};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaseBody {
    model: String,
    #[serde(default)]
    user: String,
}

const LEASE_EXPECTED: &str = r#"{"model": string, "user": string}"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    status: u16,
    #[serde(default)]
    retry_delay: Option<String>,
    /// The upstream's error body: its JSON, or its text.
    #[serde(default)]
    body: Option<serde_json::Value>,
}

const COMPLETE_EXPECTED: &str = r#"{"status": HTTP status (integer), "retry_delay": optional duration such as "1.5s", "body": optional upstream error body}"#;

/// Leases a credential for `request`: the strategy's acquisition, timed, turned into an API
/// error when it fails. The caller decides what to do with the lease (the lease API records
/// it in the table; the proxy holds it for one upstream call).
pub async fn acquire(svc: &Service, request: &Request) -> Result<(LeaseId, Lease, Option<i64>), ApiError> {
    if svc.draining.load(Ordering::Relaxed) {
        return Err(ApiError::unavailable("shutting down: no new leases", 1));
    }
    if !svc.leases.has_room() {
        return Err(ApiError::unavailable(
            format!(
                "{} leases in flight, the most this server holds: complete leases when done",
                svc.leases.in_flight()
            ),
            1,
        ));
    }
    let started = tokio::time::Instant::now();
    let result = svc.strategy.acquire(request).await;
    svc.metrics.lease_seconds.observe(started.elapsed().as_secs_f64());
    match result {
        Ok(lease) => {
            let id = svc
                .ids
                .next()
                .map_err(|e| ApiError::internal(format!("cannot draw a lease id from /dev/urandom: {e}")))?;
            let expires_at = svc.expiry.expires_at(lease.index, &lease.token);
            Ok((id, lease, expires_at))
        }
        Err(AcquireError::Exhausted) => Err(exhausted(svc, &request.model).await),
        Err(AcquireError::Store(e)) => Err(ApiError::internal(format!("store: {e}"))),
    }
}

/// The `503` for a model no credential can serve now, with `Retry-After` at the earliest end of
/// a ban on an enabled account (1 s at least), or 60 s when every account is disabled (only an
/// operator can help then; the message says so).
async fn exhausted(svc: &Service, model: &str) -> ApiError {
    let now = svc.clock.now_ms();
    let accounts = svc.strategy.accounts().await;
    let series = svc.policy.series_of(model);
    let earliest = accounts
        .iter()
        .filter(|a| !a.disabled)
        .filter_map(|a| series.and_then(|s| a.ban_until(s)))
        .filter(|&until| until > now)
        .min();
    match earliest {
        Some(until) => {
            let seconds = ((until - now) as u64).div_ceil(1000).max(1);
            ApiError::unavailable(
                format!(
                    "no usable credential for model {model:?}: every enabled account is banned for {} until at least {}",
                    series.unwrap_or("its series"),
                    to_rfc3339(until)
                ),
                seconds,
            )
        }
        None => ApiError::unavailable(
            format!(
                "no usable credential for model {model:?}: every account is disabled (enable one with POST /v1/accounts/ID/enable)"
            ),
            60,
        ),
    }
}

pub async fn lease(State(svc): State<Arc<Service>>, body: Body) -> Result<Response, ApiError> {
    let body: LeaseBody = read_json(body, LEASE_BODY_LIMIT, LEASE_EXPECTED).await?;
    if body.model.trim().is_empty() {
        return Err(ApiError::bad_request(format!(
            "model is empty: expected {LEASE_EXPECTED}"
        )));
    }
    let request = svc.request(&body.model, &body.user);
    let (id, lease, expires_at) = acquire(&svc, &request).await?;
    let answer = serde_json::json!({
        "lease": id.to_string(),
        "account": lease.id.as_str(),
        "access_token": lease.token.expose(),
        "expires_at": expires_at.map(to_rfc3339),
    });
    tracing::debug!(lease = %id, account = %lease.id, "leased");
    svc.leases.insert(id, lease, request);
    Ok(Json(answer).into_response())
}

/// What a completion body says happened upstream.
fn outcome_of(body: &CompleteBody) -> Result<Outcome, ApiError> {
    match body.status {
        200..=299 => Ok(Outcome::Success),
        429 => {
            let mut hints = match &body.body {
                // A proxy may hand over the body as the text it received.
                Some(serde_json::Value::String(text)) => crate::model::parse_error_body(text.as_bytes()),
                Some(v) => parse_error_value(v),
                None => RetryHint::default(),
            };
            if let Some(delay) = &body.retry_delay {
                let ms = parse_delay_ms(delay).map_err(|_| {
                    ApiError::bad_request(format!(
                        "retry_delay {delay:?} is not a duration: expected e.g. \"1.5s\", \"479ms\" or \"1m30s\""
                    ))
                })?;
                hints.retry_delay_ms = Some(ms);
            }
            Ok(hints.into_outcome())
        }
        100..=599 => Ok(Outcome::Status(body.status)),
        other => Err(ApiError::bad_request(format!(
            "status {other} is not an HTTP status: expected {COMPLETE_EXPECTED}"
        ))),
    }
}

/// Completes a lease with `outcome` in a task of its own (so a client that hangs up mid-way
/// cannot cut a completion in half), counting a ban. `Ok` once the outcome is in the file.
pub async fn finish(svc: &Arc<Service>, lease: Lease, request: Request, outcome: Outcome) -> Result<(), ApiError> {
    tokio::spawn(record(svc.clone(), lease, request, outcome))
        .await
        .map_err(|e| ApiError::internal(format!("completion failed: {e}")))?
}

/// Completes a lease with `outcome` and counts a ban, in the caller's task (which must not be
/// cancelled half-way: [`finish`] spawns it; the proxy's completion on drop is a task already).
pub async fn record(svc: Arc<Service>, lease: Lease, request: Request, outcome: Outcome) -> Result<(), ApiError> {
    let bans = matches!(outcome, Outcome::RateLimited { .. }) && svc.policy.series_of(&request.model).is_some();
    let done = watch(svc.strategy.complete(lease, &request, outcome)).await;
    match done {
        (Err(e), _) => Err(ApiError::internal(format!("completion failed: {e}"))),
        (Ok(()), false) => Err(ApiError::internal(
            "the outcome could not be written to the accounts file (see the server's log); it is not recorded",
        )),
        (Ok(()), true) => {
            if bans {
                svc.metrics.bans.inc();
            }
            Ok(())
        }
    }
}

pub async fn complete(
    State(svc): State<Arc<Service>>,
    Path(lease): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let body: CompleteBody = read_json(body, LEASE_BODY_LIMIT, COMPLETE_EXPECTED).await?;
    let outcome = outcome_of(&body)?;
    let unknown = || {
        ApiError::not_found(format!(
            "no lease {lease:?}: expected an id that POST /v1/lease returned"
        ))
    };
    let id = LeaseId::parse(&lease).ok_or_else(unknown)?;
    let live = svc.leases.take(id).map_err(|e| match e {
        TakeError::Unknown => unknown(),
        TakeError::Completed => ApiError::new(StatusCode::CONFLICT, format!("lease {id} was completed already")),
        TakeError::Reclaimed => ApiError::not_found(format!(
            "lease {id} was not completed within the lease TTL ({:?}) and was reclaimed: its outcome is not recorded",
            svc.leases.ttl()
        )),
    })?;
    tracing::debug!(lease = %id, account = %live.lease.id, status = body.status, "completing");
    finish(&svc, live.lease, live.request, outcome).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> CompleteBody {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn outcomes_from_completion_bodies() {
        assert_eq!(outcome_of(&body(r#"{"status": 200}"#)).unwrap(), Outcome::Success);
        assert_eq!(outcome_of(&body(r#"{"status": 503}"#)).unwrap(), Outcome::Status(503));
        assert_eq!(
            outcome_of(&body(r#"{"status": 429, "retry_delay": "1.5s"}"#)).unwrap(),
            Outcome::RateLimited {
                reset_at: None,
                retry_delay_ms: Some(1500),
                quota_reset_delay: None,
            }
        );
        let text = r#"{"status": 429, "body": "{\"error\": {\"details\": [{\"retryDelay\": \"2s\"}]}}"}"#;
        assert_eq!(
            outcome_of(&body(text)).unwrap(),
            Outcome::RateLimited {
                reset_at: None,
                retry_delay_ms: Some(2000),
                quota_reset_delay: None,
            }
        );
        assert!(outcome_of(&body(r#"{"status": 700}"#)).is_err());
        assert!(outcome_of(&body(r#"{"status": 429, "retry_delay": "soon"}"#)).is_err());
    }
}
