//! `POST /token`: Google's OAuth token endpoint, `grant_type=refresh_token` only.
//!
//! Form fields `client_id`, `client_secret`, `refresh_token`, `grant_type`. A malformed form
//! (wrong content type, bad encoding, a field missing) is `400 invalid_request`; another grant
//! type `400 unsupported_grant_type`; an unknown or revoked refresh token `400 invalid_grant`.
//! A known one gets the upstream model's keyed refresh draw (the n-th refresh of account i, as in
//! virtual time): its latency, `invalid_grant` (a failing refresh), `503` (an outage) or a hang
//! past the client's timeout; else `200 {"access_token", "expires_in", "token_type": "Bearer",
//! "scope"}` with the account's next generation, valid for `pool.token_lifetime`.

use super::google;
use super::journal::{Auth, Endpoint, Entry};
use super::server::MockState;
use super::tokens::RefreshCheck;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::sync::Arc;

#[derive(serde::Deserialize)]
pub struct TokenForm {
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
    grant_type: Option<String>,
}

fn answer(status: StatusCode, body: Bytes) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

fn bad(entry: &mut Entry, error: &str, description: &str) -> Response {
    entry.record.status = 400;
    answer(StatusCode::BAD_REQUEST, google::oauth_error(error, description))
}

pub async fn token(State(s): State<Arc<MockState>>, form: Result<Form<TokenForm>, FormRejection>) -> Response {
    let mut entry = Entry::new(s.journal.clone(), Endpoint::Token);
    let Ok(Form(form)) = form else {
        return bad(
            &mut entry,
            "invalid_request",
            "expected an application/x-www-form-urlencoded body",
        );
    };
    if form.grant_type.as_deref() != Some("refresh_token") {
        return bad(&mut entry, "unsupported_grant_type", "Invalid grant_type");
    }
    if form.client_id.as_deref().is_none_or(str::is_empty) || form.client_secret.is_none() {
        return bad(
            &mut entry,
            "invalid_request",
            "Could not determine client ID from request.",
        );
    }
    let Some(refresh_token) = form.refresh_token.filter(|t| !t.is_empty()) else {
        return bad(
            &mut entry,
            "invalid_request",
            "Missing required parameter: refresh_token",
        );
    };
    let (account, attempt) = match s.tokens.begin_refresh(&refresh_token) {
        RefreshCheck::Live { account, attempt } => (account, attempt),
        RefreshCheck::Revoked { account } => {
            entry.record.account = account;
            entry.record.auth = Auth::Revoked;
            return bad(&mut entry, "invalid_grant", "Token has been expired or revoked.");
        }
        RefreshCheck::Unknown => {
            entry.record.auth = Auth::Unknown;
            return bad(&mut entry, "invalid_grant", "Bad Request");
        }
    };
    entry.record.account = account;
    entry.record.auth = Auth::Valid;
    let draw = s
        .model
        .refresh(account as usize, attempt, s.journal.started().elapsed());
    // A hang: answered long after any client's timeout (the client gives up; a shutdown ends it).
    let delay = if draw.timed_out {
        s.model.refresh_timeout * 2
    } else {
        draw.latency
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if draw.server_error {
        entry.record.status = 503;
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            google::oauth_error("backend_error", "Backend Error"),
        );
    }
    if !draw.ok {
        return bad(&mut entry, "invalid_grant", "Token has been expired or revoked.");
    }
    let lifetime_s = s.model.token_lifetime_s;
    match s.tokens.issue(account, s.clock.now_ms() + lifetime_s * 1000) {
        Some((token, issued)) => {
            entry.record.generation = issued.generation;
            entry.record.status = 200;
            answer(StatusCode::OK, google::token_grant(&token, lifetime_s))
        }
        None => {
            entry.record.auth = Auth::Revoked;
            bad(&mut entry, "invalid_grant", "Token has been expired or revoked.")
        }
    }
}
