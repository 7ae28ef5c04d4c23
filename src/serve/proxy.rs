//! The reverse proxy, for clients that speak the upstream API: `POST /v1beta/models/{model}:
//! generateContent` and `:streamGenerateContent`, and the Code Assist `/v1internal:*` paths.
//!
//! For each request: check the client key (`Authorization: Bearer` or `x-goog-api-key`), lease a
//! credential for the request's model (from the path, or the Code Assist body's `"model"`),
//! forward the request to `--api-url` with the leased token in place of the client's key, and
//! complete the lease from the upstream's answer. A 429 completes its lease as rate-limited (the
//! body's RetryInfo / ErrorInfo parsed, so the series is banned as the policy says) and the
//! request is retried on another credential, up to `proxy_attempts` attempts in all; the last
//! 429 goes back to the client as it came (also when no other credential can serve the model).
//!
//! Answers are streamed through as they arrive: the upstream's body (hyper's `Incoming`, from
//! the pooled client of [`super::upstream_client`]) becomes the answer's body as it is, wrapped
//! only to complete the lease when it ends, so SSE chunks reach the client before the upstream
//! has finished, with no task or buffer in between. The lease stays in the lease table while the
//! body streams (so a shutdown drains it, and its TTL bounds it) and is completed when the
//! stream ends or the client goes away. Only a 429's body is read (bounded) and parsed, for its
//! retry hints; any other answer's outcome is its status. The request body is read whole
//! (bounded) first, because a retry must send it again.

use super::api::{acquire, finish, record};
use super::body::read_limited;
use super::config::DEFAULT_PROXY_BODY_LIMIT;
use super::error::ApiError;
use super::keys;
use super::lease_id::LeaseId;
use super::service::Service;
use super::upstream_client::describe;
use crate::model::parse_error_body;
use crate::model::Outcome;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use std::sync::Arc;

/// Largest 429 body read to find its retry hints (they are a few hundred bytes).
const ERROR_BODY_LIMIT: usize = 64 * 1024;

pub fn is_proxy_path(path: &str) -> bool {
    path.starts_with("/v1beta/models/") || path.starts_with("/v1internal:")
}

/// The model a proxied request asks for: `/v1beta/models/{model}:{method}`, or the `"model"` of a
/// Code Assist body.
fn model_of(path: &str, body: &[u8]) -> Option<String> {
    if let Some(rest) = path.strip_prefix("/v1beta/models/") {
        let model = rest.split(':').next().unwrap_or_default();
        return (!model.is_empty()).then(|| model.to_string());
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("model")?
        .as_str()
        .map(str::to_string)
}

/// Headers not forwarded either way: hop-by-hop ones, the client's keys, and the lengths hyper
/// recomputes for a streamed body.
const NOT_FORWARDED: [HeaderName; 11] = [
    header::HOST,
    header::AUTHORIZATION,
    HeaderName::from_static("x-goog-api-key"),
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::CONTENT_LENGTH,
];

/// `headers` without the ones [`NOT_FORWARDED`] names.
fn forwarded(mut headers: HeaderMap) -> HeaderMap {
    for name in &NOT_FORWARDED {
        headers.remove(name);
    }
    headers
}

/// The query without a `key=` parameter (Gemini clients may send their API key there).
fn query_without_key(query: Option<&str>) -> String {
    let kept: Vec<&str> = query
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("key="))
        .collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    }
}

pub async fn handle(State(svc): State<Arc<Service>>, req: Request) -> Response {
    if !is_proxy_path(req.uri().path()) {
        return ApiError::not_found(format!(
            "no route {}: expected /v1/lease, /v1/accounts, /metrics, /healthz, /readyz, /v1beta/models/MODEL:METHOD or /v1internal:METHOD",
            req.uri().path()
        ))
        .into_response();
    }
    match proxy(svc, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn proxy(svc: Arc<Service>, req: Request) -> Result<Response, ApiError> {
    if let Some(refused) = super::refused(keys::check(svc.keys.as_ref(), req.headers()), "client") {
        return Err(refused);
    }
    // The client's key picks its shard (`sharded`); it is hashed, never logged.
    let user = keys::presented(req.headers()).unwrap_or_default().to_string();
    let (parts, body) = req.into_parts();
    let body = read_limited(body, DEFAULT_PROXY_BODY_LIMIT, "a request body for the upstream API").await?;
    let path = parts.uri.path();
    let model = model_of(path, &body).ok_or_else(|| {
        ApiError::bad_request("no model: expected /v1beta/models/MODEL:METHOD, or a JSON body with \"model\"")
    })?;
    let url = format!("{}{path}{}", svc.config.api_url, query_without_key(parts.uri.query()));
    let uri: Uri = url
        .parse()
        .map_err(|e| ApiError::bad_request(format!("{path} does not make an upstream URL: {e}")))?;
    let headers = forwarded(parts.headers);
    let attempts = svc.config.proxy_attempts;
    // The last 429, answered as it came when no attempt is left or no credential is.
    let mut limited: Option<(HeaderMap, Vec<u8>)> = None;
    for attempt in 1..=attempts {
        let request = svc.request(&model, &user);
        let (id, lease, _) = match (acquire(&svc, &request).await, limited.take()) {
            (Ok(leased), _) => leased,
            (Err(_), Some((headers, bytes))) => {
                return Ok(answer(StatusCode::TOO_MANY_REQUESTS, headers, Body::from(bytes)))
            }
            (Err(e), None) => return Err(e),
        };
        let mut upstream = axum::http::Request::new(Body::from(body.clone()));
        *upstream.method_mut() = parts.method.clone();
        *upstream.uri_mut() = uri.clone();
        *upstream.headers_mut() = headers.clone();
        let mut bearer = HeaderValue::try_from(format!("Bearer {}", lease.token.expose()))
            .map_err(|_| ApiError::internal("the leased token is not a valid header value"))?;
        bearer.set_sensitive(true);
        upstream.headers_mut().insert(header::AUTHORIZATION, bearer);
        let response = match svc.upstream.request(upstream).await {
            Ok(r) => r,
            Err(e) => {
                // Not the credential's fault, but the request failed on it: recorded as a 502.
                let _ = finish(&svc, lease, request, Outcome::Status(502)).await;
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    format!("the upstream API could not be reached: {}", describe(&e)),
                ));
            }
        };
        let (head, incoming) = response.into_parts();
        let status = head.status;
        if status == StatusCode::TOO_MANY_REQUESTS {
            let bytes = read_capped(incoming, ERROR_BODY_LIMIT).await;
            let outcome = parse_error_body(&bytes).into_outcome();
            finish(&svc, lease, request, outcome).await?;
            if attempt < attempts {
                svc.metrics.proxy_retries.inc();
                tracing::info!(attempt, model = %model, "429 upstream: retrying on another credential");
                limited = Some((head.headers, bytes));
                continue;
            }
            return Ok(answer(status, head.headers, Body::from(bytes)));
        }
        let outcome = if status.is_success() {
            Outcome::Success
        } else {
            Outcome::Status(status.as_u16())
        };
        svc.leases.insert(id, lease, request);
        let done = CompleteOnDrop {
            svc: svc.clone(),
            id,
            outcome: Some(outcome),
        };
        // The guard rides along with the body: dropped when the body ends or the client leaves.
        let body = incoming.map_frame(move |frame| {
            let _ = &done;
            frame
        });
        return Ok(answer(status, head.headers, Body::new(body)));
    }
    unreachable!("proxy_attempts is at least 1, and every attempt returns or continues")
}

/// The upstream's status and headers (those forwarded) over `body`.
fn answer(status: StatusCode, upstream: HeaderMap, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = forwarded(upstream);
    if !r.headers().contains_key(header::CONTENT_TYPE) {
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
    }
    r
}

/// Up to `limit` bytes of a response's body.
async fn read_capped(mut body: hyper::body::Incoming, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(chunk) = frame.into_data() else { continue };
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    out
}

/// Completes a proxied request's lease when dropped (its body streamed to the end, or the client
/// gone), unless the lease was reclaimed meanwhile. The lease id never left serve, so the table
/// forgets it at once (no late completion can come).
struct CompleteOnDrop {
    svc: Arc<Service>,
    id: LeaseId,
    outcome: Option<Outcome>,
}

impl Drop for CompleteOnDrop {
    fn drop(&mut self) {
        let (Some(live), Some(outcome)) = (self.svc.leases.release(self.id), self.outcome.take()) else {
            return;
        };
        let svc = self.svc.clone();
        // Dropped inside the runtime (hyper drops bodies on its tasks); outside one, the lease
        // is simply dropped, which gives the credential back.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = record(svc, live.lease, live.request, outcome).await {
                    tracing::error!(error = %e.message, "a proxied request's outcome was not recorded");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_from_paths_and_code_assist_bodies() {
        assert_eq!(
            model_of("/v1beta/models/gemini-2.5-pro:streamGenerateContent", b""),
            Some("gemini-2.5-pro".into())
        );
        assert_eq!(
            model_of(
                "/v1internal:generateContent",
                br#"{"model": "gemini-3-pro", "request": {}}"#
            ),
            Some("gemini-3-pro".into())
        );
        assert_eq!(model_of("/v1internal:generateContent", b"{}"), None);
        assert_eq!(query_without_key(Some("alt=sse&key=SECRET")), "?alt=sse");
        assert_eq!(query_without_key(Some("key=SECRET")), "");
        assert_eq!(query_without_key(None), "");
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer client-key"));
        h.insert("x-goog-api-key", HeaderValue::from_static("client-key"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let kept = forwarded(h);
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(kept.contains_key(header::CONTENT_TYPE));
    }
}
