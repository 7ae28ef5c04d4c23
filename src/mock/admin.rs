//! `/_mock/*`: the harness's surface, apart from Google's (no Google client ever calls it, and
//! its requests are not journaled).
//!
//! - `GET /_mock/stats`: counters as JSON (journaled, dropped, capacity, accounts, tokens issued).
//! - `GET /_mock/journal[?format=csv]`: the journal so far, JSONL (default) or CSV.
//! - `POST /_mock/accounts/{index}/revoke`: revoke an account's grant (204; 404 if unknown).
//!
//! Never a token: tokens reach the target only through the accounts file the harness writes.

use super::journal::JournalFormat;
use super::server::MockState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;

pub fn router() -> Router<Arc<MockState>> {
    Router::new()
        .route("/stats", get(stats))
        .route("/journal", get(journal))
        .route("/accounts/{index}/revoke", post(revoke))
}

/// The counters `/_mock/stats` reports.
pub fn stats_json(s: &MockState) -> serde_json::Value {
    serde_json::json!({
        "journaled": s.journal.len(),
        "dropped": s.journal.dropped(),
        "capacity": s.journal.capacity(),
        "models_overflowed": s.journal.models.overflowed(),
        "accounts": s.tokens.accounts(),
        "tokens_issued": s.tokens.issued(),
    })
}

async fn stats(State(s): State<Arc<MockState>>) -> Json<serde_json::Value> {
    Json(stats_json(&s))
}

async fn journal(State(s): State<Arc<MockState>>, RawQuery(q): RawQuery) -> Response {
    let format = if q.as_deref() == Some("format=csv") {
        JournalFormat::Csv
    } else {
        JournalFormat::Jsonl
    };
    let mut out = Vec::new();
    let (written, content_type) = match format {
        JournalFormat::Csv => (s.journal.write_csv(&mut out), "text/csv"),
        JournalFormat::Jsonl => (s.journal.write_jsonl(&mut out), "application/x-ndjson"),
    };
    match written {
        Ok(()) => ([(header::CONTENT_TYPE, content_type)], out).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn revoke(State(s): State<Arc<MockState>>, Path(index): Path<u32>) -> StatusCode {
    if s.tokens.revoke(index) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}
