//! The admin API (admin keys): the accounts' state, and switching an account off and on.
//!
//! - `GET /v1/accounts` → each account's id, whether it is disabled, its active bans, its
//!   token's expiry and the two instants the policy refreshes it at (refresh ahead from, due
//!   from: [`crate::model::refresh_window`], bounded by the token's own lifetime; all from the
//!   strategy's memory: what selection sees), and its bookkeeping
//!   (calls, error codes, last success: from the accounts file, where every strategy keeps it).
//!   Never a token.
//! - `POST /v1/accounts/{id}/disable` and `.../enable` → written through the store first (as
//!   `credpool accounts disable` does, every other key of the file kept), then applied to the
//!   strategy's memory ([`crate::strategy::CredentialManager::switch`]), so the next lease sees it.

use super::error::ApiError;
use super::service::Service;
use crate::model::time::to_rfc3339;
use crate::model::{AccountId, Change};
use crate::store::AccountStore;
use crate::strategy::CredentialManager;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

pub async fn accounts(State(svc): State<Arc<Service>>) -> Result<Json<Value>, ApiError> {
    let now = svc.clock.now_ms();
    let memory = svc.strategy.accounts().await;
    let file = svc
        .store
        .load()
        .await
        .map_err(|e| ApiError::internal(format!("cannot read the accounts file: {e}")))?;
    let on_file: HashMap<&AccountId, &crate::model::Account> = file.accounts.iter().map(|a| (&a.id, a)).collect();
    let list: Vec<Value> = memory
        .iter()
        .map(|a| {
            let bans: serde_json::Map<String, Value> = a
                .bans
                .iter()
                .filter_map(|(series, until)| {
                    until
                        .filter(|u| *u > now)
                        .map(|u| (series.clone(), Value::from(to_rfc3339(u))))
                })
                .collect();
            let recorded = on_file.get(&a.id);
            let points = svc
                .policy
                .refresh_points(a.timestamp, a.expires_in.map(|s| s.saturating_mul(1000)));
            json!({
                "id": a.id.as_str(),
                "disabled": a.disabled,
                "bans": bans,
                "token_expires_at": a.expires_at().map(to_rfc3339),
                "token_refresh_ahead_at": points.map(|p| to_rfc3339(p.ahead_at)),
                "token_refresh_due_at": points.map(|p| to_rfc3339(p.due_at)),
                "total_calls": recorded.map(|r| r.total_calls),
                "error_codes": recorded.map(|r| r.error_codes.clone()),
                "last_success": recorded.and_then(|r| r.last_success.clone()),
            })
        })
        .collect();
    Ok(Json(json!({
        "strategy": svc.config.strategy.as_str(),
        "store": svc.config.store.name(),
        "accounts": list,
    })))
}

pub async fn disable(state: State<Arc<Service>>, id: Path<String>) -> Result<Json<Value>, ApiError> {
    switch(state, id, Change::Disabled).await
}

pub async fn enable(state: State<Arc<Service>>, id: Path<String>) -> Result<Json<Value>, ApiError> {
    switch(state, id, Change::Enabled).await
}

async fn switch(
    State(svc): State<Arc<Service>>,
    Path(id): Path<String>,
    change: Change,
) -> Result<Json<Value>, ApiError> {
    let id = AccountId::from(id);
    let Some(&index) = svc.index.get(&id) else {
        let mut known: Vec<&str> = svc.index.keys().map(AccountId::as_str).collect();
        known.sort_unstable();
        return Err(ApiError::not_found(format!(
            "no account {:?}: expected one of {}",
            id.as_str(),
            known.join(", ")
        )));
    };
    let disable = change == Change::Disabled;
    svc.store
        .update(&id, change.clone())
        .await
        .map_err(|e| ApiError::internal(format!("not switched: the accounts file could not be written: {e}")))?;
    let changed = svc.strategy.switch(index, &change).await;
    if disable && changed {
        svc.metrics.operator_disables.inc();
    }
    tracing::info!(account = %id, disabled = disable, changed, "account switched by an operator");
    Ok(Json(
        json!({ "account": id.as_str(), "disabled": disable, "changed": changed }),
    ))
}
