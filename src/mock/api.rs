//! The model APIs: Gemini's `/v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent`, and Code Assist's `/v1internal:generateContent` and
//! `:streamGenerateContent` (model in the JSON body, answer wrapped in `{"response": ...}`).
//!
//! Every call is checked against the token registry first (401 `UNAUTHENTICATED` for an expired,
//! revoked, unknown or missing token, before any latency: Google rejects credentials at its
//! front door). A valid call then gets the upstream model's keyed draws: request number `n` (the
//! `x-credpool-request` header when the harness sends one, else the mock's own count), the
//! latency before the headers, the status, and the wire faults (reset, slow body).

use super::body::{self, Framing};
use super::google;
use super::journal::{Auth, Endpoint, Entry, FLAG_RESET, FLAG_SLOW_BODY};
use super::server::{MockState, Reset};
use super::tokens::TokenCheck;
use crate::model::Outcome;
use crate::upstream::http::REQUEST_HEADER;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const JSON: &str = "application/json; charset=UTF-8";

/// What was asked.
struct Call<'a> {
    model: &'a str,
    stream: bool,
    code_assist: bool,
    /// `alt=sse` in the query (else a stream is a JSON array).
    sse: bool,
}

impl Call<'_> {
    fn endpoint(&self) -> Endpoint {
        match (self.code_assist, self.stream) {
            (false, false) => Endpoint::GenerateContent,
            (false, true) => Endpoint::StreamGenerateContent,
            (true, false) => Endpoint::CodeAssistGenerate,
            (true, true) => Endpoint::CodeAssistStream,
        }
    }
}

fn is_sse(query: &Option<String>) -> bool {
    query.as_deref().is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"))
}

/// `POST /v1beta/models/{model}:{method}`.
pub async fn v1beta(
    State(s): State<Arc<MockState>>,
    Path(target): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    _body: Bytes,
) -> Response {
    let (model, stream) = match target.rsplit_once(':') {
        Some((m, "generateContent")) => (m, false),
        Some((m, "streamGenerateContent")) => (m, true),
        _ => return not_found(State(s)).await,
    };
    let call = Call {
        model,
        stream,
        code_assist: false,
        sse: is_sse(&query),
    };
    answer(&s, &call, &headers).await
}

/// `POST /v1internal:generateContent`.
pub async fn code_assist_generate(
    State(s): State<Arc<MockState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    code_assist(s, is_sse(&query), false, &headers, &body).await
}

/// `POST /v1internal:streamGenerateContent`.
pub async fn code_assist_stream(
    State(s): State<Arc<MockState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    code_assist(s, is_sse(&query), true, &headers, &body).await
}

async fn code_assist(s: Arc<MockState>, sse: bool, stream: bool, headers: &HeaderMap, body: &[u8]) -> Response {
    #[derive(serde::Deserialize)]
    struct CodeAssistRequest {
        model: String,
    }
    let Ok(req) = serde_json::from_slice::<CodeAssistRequest>(body) else {
        let mut entry = Entry::new(
            s.journal.clone(),
            if stream {
                Endpoint::CodeAssistStream
            } else {
                Endpoint::CodeAssistGenerate
            },
        );
        entry.record.status = 400;
        return json(
            StatusCode::BAD_REQUEST,
            google::invalid_argument(
                "Request contains an invalid argument: expected a JSON body with a \"model\" field.",
            ),
        );
    };
    let call = Call {
        model: &req.model,
        stream,
        code_assist: true,
        sse,
    };
    answer(&s, &call, headers).await
}

/// Any path the mock does not serve: 404, journaled as `other`.
pub async fn not_found(State(s): State<Arc<MockState>>) -> Response {
    let mut entry = Entry::new(s.journal.clone(), Endpoint::Other);
    entry.record.status = 404;
    json(StatusCode::NOT_FOUND, google::not_found())
}

fn json(status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(JSON))], body).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn answer(s: &Arc<MockState>, call: &Call<'_>, headers: &HeaderMap) -> Response {
    let mut entry = Entry::new(s.journal.clone(), call.endpoint());
    entry.record.model = s.journal.models.intern(call.model);
    let check = bearer(headers).map(|t| s.tokens.check(t, s.clock.now_ms()));
    let (auth, issued) = match check {
        Some(TokenCheck::Valid(i)) => (Auth::Valid, Some(i)),
        Some(TokenCheck::Expired(i)) => (Auth::Expired, Some(i)),
        Some(TokenCheck::Revoked(i)) => (Auth::Revoked, Some(i)),
        Some(TokenCheck::Unknown) => (Auth::Unknown, None),
        None => (Auth::Missing, None),
    };
    entry.record.auth = auth;
    if let Some(i) = issued {
        entry.record.account = i.account;
        entry.record.generation = i.generation;
    }
    let Some(issued) = issued.filter(|_| auth == Auth::Valid) else {
        entry.record.status = 401;
        return json(StatusCode::UNAUTHORIZED, google::unauthenticated(auth == Auth::Expired));
    };

    let n = headers
        .get(REQUEST_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| s.requests.fetch_add(1, Ordering::Relaxed));
    let at = s.journal.started().elapsed();
    let wire = s.model.wire_fault(n, at);
    let outcome = s.model.api(n, issued.account as usize, at).outcome;
    let latency = s.model.header_latency(n);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if wire.reset {
        entry.record.flags |= FLAG_RESET;
        let mut r = Response::new(Body::empty());
        r.extensions_mut().insert(Reset);
        return r;
    }
    let (status, body) = match outcome {
        Outcome::Success => return success(s, call, wire.body_delay, entry),
        Outcome::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            google::rate_limited(
                s.model.rate_limit_body(),
                s.model.retry_delay.unwrap_or_default(),
                s.clock.now_ms(),
                call.model,
            ),
        ),
        Outcome::Status(401) => (StatusCode::UNAUTHORIZED, google::unauthenticated(false)),
        Outcome::Status(403) => (StatusCode::FORBIDDEN, google::permission_denied()),
        Outcome::Status(_) => (StatusCode::SERVICE_UNAVAILABLE, google::unavailable()),
    };
    entry.record.status = status.as_u16();
    json(status, body)
}

fn success(s: &MockState, call: &Call<'_>, body_delay: std::time::Duration, mut entry: Entry) -> Response {
    entry.record.status = 200;
    if body_delay > std::time::Duration::ZERO {
        entry.record.flags |= FLAG_SLOW_BODY;
    }
    let wire = &s.model.wire;
    let chunks = call.stream.then_some(wire.sse_chunks.max(1));
    let pieces = s.answers.get(entry.record.model, call.model, call.code_assist, chunks);
    if !call.stream {
        let bytes = pieces[0].clone();
        let body = if body_delay.is_zero() {
            drop(entry);
            Body::from(bytes)
        } else {
            body::delayed(bytes, body_delay, entry)
        };
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(JSON))],
            body,
        )
            .into_response();
    }
    let (framing, content_type) = if call.sse {
        (Framing::Sse, "text/event-stream")
    } else {
        (Framing::JsonArray, JSON)
    };
    let body = body::stream(pieces.to_vec(), framing, body_delay, wire.sse_interval, entry);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}
