//! `as_shipped`: the proxy as it really shipped (commit a30aa35), defects included.
//!
//! `global_mutex` replays the *analysis'* model of the proxy. This replays the *code*: the paths
//! the shipped `AntigravityCredentialManager`, its router and its `FileStorageManager` really took,
//! each step charged where it happened, on a model of the single Python thread
//! ([`event_loop`]). Measured on the real code, those paths behave nothing like the analysis'
//! table (`../shared/reference-behaviour.md`, "Measured on the real code"); the `real-*` scenarios
//! set this replica's figures beside the real ones.
//!
//! **Locks.** `_operation_lock` (a non-reentrant `asyncio.Lock`, here a tokio mutex) around
//! `get_valid_credential`: the rotation check, the credential load and quota check (what the
//! scenario's selection costs say: 0.03 ms measured, not the analysis' 30 ms), the series-ban and
//! daily-quota checks, and a token refresh with its save. The storage lock of [`storage`] around
//! each state write, and nothing around the unlocked saves. And the event loop itself, which every
//! local step holds.
//!
//! **The request path**, as the router ran it:
//! 1. `get_valid_credential` under `_operation_lock` (the call is counted on return);
//! 2. the upstream call (outside every lock, off the loop);
//! 3. bookkeeping, with no `_operation_lock`: `mark_credential_success` or `mark_credential_error`
//!    read the account's state *outside* the storage lock and write the whole record back *under*
//!    it (the stale-read lost update; the call count, credpool's `total_calls`, travels in the
//!    same record: the shipped usage counters lived in memory and reached the file through the same
//!    whole-record writes); a 429 then bans the model series through `_set_series_ban`: load the
//!    file, set the ban, and save it with **no lock** through the shared temp name; an auto-ban
//!    code disables the account (`disable_credential`: state read, locked write, rediscovery).
//!
//! **Defects replayed**, each measurable in a run:
//! - the stale-read lost update (the audit's `lost_updates`, `resurrected`);
//! - the unlocked 429 save through one shared temp name (`file_unreadable`, an empty pool);
//! - a refreshed token overwritten by a stale state write (the audit's `stale_tokens`);
//! - recursion into `get_valid_credential` while holding `_operation_lock` after a failed
//!   refresh, a series ban (with more than one account) or an exhausted daily quota: the request
//!   awaits the lock it holds, every later request queues behind it, and the runner's watchdog
//!   reports the deadlock with the step it happened in ([`crate::metrics::steps`]);
//! - the HTTP client built synchronously on every refresh: 31 ms during which the whole process
//!   stands still ([`crate::costs::Step::EventLoopStall`] on the event loop).
//!
//! **Not replayed:** the stale "current account" pointer kept after a disable (a disabled account
//! at the cursor is skipped, as if rediscovery had removed it); the usage counters' once-a-minute
//! flush; a ban that expired being cleared by a save on every request. With
//! `record_outcomes = false` (scenarios that time `get_valid_credential` alone) the router's
//! success/error state writes are skipped; bans and disables still happen.
//!
//! **Trades away:** everything credpool's own strategies keep. It is a specimen, not a design; it
//! is outside the strategy contract suite and has its own tests (`tests/as_shipped.rs`).

pub mod event_loop;
pub mod storage;

use super::env::{Counters, Env, RefreshAttempts, StrategyStats};
use super::lease::{AcquireError, AcquireTiming, Lease, Pick, Request};
use super::CredentialManager;
use crate::costs::Step;
use crate::metrics::steps;
use crate::model::{Account, AccountId, AccountsFile, Change, Outcome, PoolState, Selection};
use crate::store::backend::{Backend, MemoryBackend};
use crate::store::BoxFuture;
use event_loop::EventLoop;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use storage::{ShippedStorage, ShippedStorageStats};
use tokio::time::Instant;

/// The steps a request can be stuck at, as the watchdog reports them.
pub mod step {
    pub const WAITING_FOR_OPERATION_LOCK: &str = "get_valid_credential: waiting for _operation_lock";
    pub const SELECTING: &str = "get_valid_credential: selecting, holding _operation_lock";
    pub const REFRESHING: &str = "get_valid_credential: refreshing the token, holding _operation_lock";
    pub const REENTERED_AFTER_FAILED_REFRESH: &str =
        "get_valid_credential re-entered after a failed refresh: awaits the _operation_lock it already holds";
    pub const REENTERED_AFTER_SERIES_BAN: &str =
        "get_valid_credential re-entered after a series ban: awaits the _operation_lock it already holds";
    pub const REENTERED_AFTER_DAILY_QUOTA: &str =
        "get_valid_credential re-entered after an exhausted daily quota: awaits the _operation_lock it already holds";
    pub const MARKING_OUTCOME: &str = "mark_credential_success/error: state read and write (no _operation_lock)";
    pub const SETTING_SERIES_BAN: &str = "_set_series_ban: load and unlocked save";
    pub const DISABLING: &str = "disable_credential: state write and rediscovery";
}

/// Why `get_valid_credential` calls itself (and so deadlocks).
#[derive(Clone, Copy, Debug)]
enum Reentry {
    FailedRefresh,
    SeriesBan,
    DailyQuota,
}

impl Reentry {
    fn step(self) -> &'static str {
        match self {
            Reentry::FailedRefresh => step::REENTERED_AFTER_FAILED_REFRESH,
            Reentry::SeriesBan => step::REENTERED_AFTER_SERIES_BAN,
            Reentry::DailyQuota => step::REENTERED_AFTER_DAILY_QUOTA,
        }
    }
}

/// What `get_valid_credential` decided at the cursor, under `_operation_lock`.
enum Decision {
    Ready(Pick),
    Exhausted,
    Reenter(Reentry),
    Refresh {
        index: usize,
        id: AccountId,
        refresh_token: crate::secret::Secret,
    },
}

/// Where an acquisition's time went, filled in as `get_valid_credential` goes.
#[derive(Default)]
struct Timing {
    /// When `_operation_lock` was first held (the end of the lock wait).
    locked_at: Option<Instant>,
    /// Time spent refreshing tokens (own refreshes: nobody else refreshes while the lock is held).
    refresh_wait: Duration,
}

/// The usage counters of `antigravity_usage_stats` (in memory): successful calls per account and
/// model series, against the daily quota.
#[derive(Debug, Default)]
struct Usage(HashMap<(usize, String), u64>);

pub struct AsShipped {
    env: Env,
    /// The process' one thread, shared with the storage replica.
    event_loop: Arc<EventLoop>,
    /// `_operation_lock`: an `asyncio.Lock`, so a tokio mutex; non-reentrant, like the original.
    operation_lock: tokio::sync::Mutex<()>,
    /// The manager's in-memory state (the accounts list, the cursor, the call count). The shipped
    /// code read and wrote it without `_operation_lock` from the bookkeeping paths (bans, disables);
    /// a short sync lock stands for the one thread's atomicity between awaits, never held across
    /// one.
    pool: crate::sync::Mutex<PoolState>,
    storage: ShippedStorage,
    usage: crate::sync::Mutex<Usage>,
    counters: Counters,
    attempts: RefreshAttempts,
}

impl AsShipped {
    /// The replica over `env`. It writes the file of `env.store` itself (through the store's
    /// backend), as the shipped code did, and reports what it wrote to the store for the audit.
    /// A store without a backend gets a private in-memory file.
    pub fn new(env: Env) -> Self {
        let backend: Arc<dyn Backend> = env.store.backend().unwrap_or_else(|| {
            let text = AccountsFile::from_accounts(env.accounts.clone()).to_toml_string();
            Arc::new(MemoryBackend::new(Some(text)))
        });
        let event_loop = Arc::new(EventLoop::new(env.costs.clone()));
        let pool = PoolState::new(env.policy.clone(), env.accounts.clone());
        let attempts = RefreshAttempts::new(env.accounts.len());
        AsShipped {
            storage: ShippedStorage::new(backend, event_loop.clone()),
            event_loop,
            operation_lock: tokio::sync::Mutex::new(()),
            pool: crate::sync::Mutex::new(pool),
            usage: crate::sync::Mutex::new(Usage::default()),
            counters: Counters::default(),
            attempts,
            env,
        }
    }

    /// What the storage replica did and what went wrong (missing temp files, unparsable reads).
    pub fn storage_stats(&self) -> ShippedStorageStats {
        self.storage.stats()
    }

    /// `get_valid_credential(model, _checked_count)`: takes `_operation_lock` and selects. Boxed
    /// because it calls itself, as the original did.
    fn get_valid_credential<'a>(
        &'a self,
        request: &'a Request,
        checked: usize,
        timing: &'a mut Timing,
    ) -> BoxFuture<'a, Result<Pick, AcquireError>> {
        Box::pin(async move {
            if checked == 0 {
                steps::enter(step::WAITING_FOR_OPERATION_LOCK);
            }
            // `async with self._operation_lock:` is code on the loop: a free lock is taken without
            // yielding; a held one is waited for off the loop (on a re-entry, held by the caller:
            // forever).
            let mut turn = self.event_loop.enter().await;
            let _held = match self.operation_lock.try_lock() {
                Ok(held) => held,
                Err(_) => {
                    drop(turn);
                    let held = self.operation_lock.lock().await;
                    turn = self.event_loop.enter().await;
                    held
                }
            };
            timing.locked_at.get_or_insert_with(Instant::now);
            steps::enter(step::SELECTING);
            // get_valid_credential's own work (0.03 ms measured), with no await in it.
            turn.spend(Step::CheckRotation).await;
            turn.spend(Step::LoadCredential).await;
            turn.spend(Step::CheckQuota).await;
            loop {
                match self.decide(request, checked) {
                    Decision::Ready(pick) => return Ok(pick),
                    Decision::Exhausted => {
                        Counters::bump(&self.counters.exhausted);
                        return Err(AcquireError::Exhausted);
                    }
                    Decision::Reenter(why) => {
                        steps::enter(why.step());
                        drop(turn);
                        return self.get_valid_credential(request, checked + 1, timing).await;
                    }
                    Decision::Refresh {
                        index,
                        id,
                        refresh_token,
                    } => {
                        steps::enter(step::REFRESHING);
                        let started = Instant::now();
                        // "Token expired", "Refreshing access token for account", then
                        // `httpx.AsyncClient(...)` built synchronously: the whole process stalls.
                        turn.repeat(Step::LogLine, 2).await;
                        turn.spend(Step::EventLoopStall).await;
                        drop(turn);
                        let refreshed = self.refresh(index, &id, &refresh_token).await;
                        timing.refresh_wait += started.elapsed();
                        if !refreshed {
                            // Disable, rediscover, and try the next account by calling itself.
                            self.disable_credential(index, &id).await;
                            if self.enabled_accounts() == 0 {
                                Counters::bump(&self.counters.exhausted);
                                return Err(AcquireError::Exhausted);
                            }
                            steps::enter(Reentry::FailedRefresh.step());
                            return self.get_valid_credential(request, checked + 1, timing).await;
                        }
                        turn = self.event_loop.enter().await;
                        steps::enter(step::SELECTING);
                    }
                }
            }
        })
    }

    fn enabled_accounts(&self) -> usize {
        self.pool.lock().accounts.iter().filter(|a| !a.disabled).count()
    }

    /// The checks of `get_valid_credential` at the cursor, in the shipped order: rotation, the
    /// series ban, the daily quota, the token's expiry.
    fn decide(&self, request: &Request, checked: usize) -> Decision {
        let now = self.env.clock.now_ms();
        let mut pool = self.pool.lock();
        // The shipped list held enabled accounts only (rediscovery dropped disabled ones).
        let enabled = pool.accounts.iter().filter(|a| !a.disabled).count();
        if enabled == 0 || checked >= enabled {
            return Decision::Exhausted;
        }
        pool.rotate_if_due();
        while pool.accounts[pool.current()].disabled {
            pool.rotate();
        }
        let i = pool.current();
        let series = self.env.policy.series_of(&request.model).map(str::to_string);
        if let Some(series) = &series {
            if pool.accounts[i].is_banned(series, now) {
                // "Rotating to next account due to series ban", then a recursive call.
                return if enabled > 1 {
                    pool.rotate();
                    Decision::Reenter(Reentry::SeriesBan)
                } else {
                    Decision::Exhausted
                };
            }
            if let Some(limit) = self.env.options.daily_limit {
                let used = self.usage.lock().0.get(&(i, series.clone())).copied().unwrap_or(0);
                if used >= limit {
                    return if enabled > 1 {
                        pool.rotate();
                        Decision::Reenter(Reentry::DailyQuota)
                    } else {
                        Decision::Exhausted
                    };
                }
            }
        }
        match pool.select(&request.model, now) {
            Selection::Ready(i) => {
                let a = &pool.accounts[i];
                Decision::Ready(Pick {
                    index: i,
                    id: a.id.clone(),
                    token: a.access_token.clone(),
                })
            }
            Selection::NeedsRefresh(i) => Decision::Refresh {
                index: i,
                id: pool.accounts[i].id.clone(),
                refresh_token: pool.accounts[i].refresh_token.clone(),
            },
            Selection::Exhausted => Decision::Exhausted,
        }
    }

    /// The rest of `_refresh_access_token`, once the HTTP client is built: the POST to the token
    /// endpoint (the loop is free meanwhile), and on success the account updated in memory and
    /// saved through `_save_account_to_storage` (a load, then the unlocked save). Returns whether
    /// the refresh succeeded.
    async fn refresh(&self, index: usize, id: &AccountId, refresh_token: &crate::secret::Secret) -> bool {
        let change = self
            .env
            .refresh(&self.counters, index, self.attempts.next(index), refresh_token)
            .await;
        if !matches!(change, Change::Refreshed { .. }) {
            return false;
        }
        self.pool.lock().apply(index, &change);
        let saved = match self.storage.load_accounts().await {
            Ok(mut file) => match file.find(id) {
                Some(i) => {
                    file.accounts[i].apply(&change);
                    self.storage.save_accounts(&mut file).await
                }
                None => Err(crate::store::StoreError::UnknownAccount(id.clone())),
            },
            Err(e) => Err(e),
        };
        self.settle(id, &change, saved.is_ok());
        // "Successfully refreshed token for account".
        self.event_loop.enter().await.repeat(Step::LogLine, 1).await;
        true
    }

    /// `disable_credential`: state read (no lock), `disabled = true`, locked state write, then
    /// `_discover_credentials` (a load); the account leaves the in-memory list.
    async fn disable_credential(&self, index: usize, id: &AccountId) {
        steps::enter(step::DISABLING);
        let written = self.write_state(id, &Change::Disabled).await;
        self.settle(id, &Change::Disabled, written);
        // "Disabled Antigravity credential".
        self.event_loop.enter().await.repeat(Step::LogLine, 1).await;
        let _ = self.storage.load_accounts().await;
        self.pool.lock().apply(index, &Change::Disabled);
    }

    /// The state methods' pattern: read the account's record outside the storage lock, change the
    /// copy, write the whole copy back under the lock. Returns whether the write reported success
    /// (a failed read writes nothing: the shipped method logged the error and returned).
    async fn write_state(&self, id: &AccountId, change: &Change) -> bool {
        let Ok(mut state) = self.storage.get_state(id).await else {
            return false;
        };
        state.apply(change);
        self.storage.update_state(&state).await.is_ok()
    }

    /// Reports a write to the audit when it succeeded, and counts it as a store error when not
    /// (the shipped code logged the error and carried on).
    fn settle(&self, id: &AccountId, change: &Change, written: bool) {
        if written {
            self.env.store.acknowledge(id, change);
        } else {
            Counters::bump(&self.counters.store_errors);
        }
    }

    /// `_handle_429_series_ban` / `_set_series_ban`: load the file, set the ban, save it with no
    /// lock, then ban the series in memory.
    async fn set_series_ban(&self, index: usize, id: &AccountId, series: &str, until: crate::model::EpochMs) {
        steps::enter(step::SETTING_SERIES_BAN);
        match self.storage.load_accounts().await {
            Ok(mut file) => {
                // The loop over the accounts finds nothing in a file caught empty; the file is
                // saved all the same.
                if let Some(i) = file.find(id) {
                    file.accounts[i].set_ban(series, until);
                }
                if self.storage.save_accounts(&mut file).await.is_err() {
                    Counters::bump(&self.counters.store_errors);
                }
            }
            // "Failed to load accounts.toml for series ban": nothing saved.
            Err(_) => Counters::bump(&self.counters.store_errors),
        }
        self.pool.lock().accounts[index].set_ban(series, until);
        // "[429 BAN] Account ... banned until ...", "Updated in-memory ban".
        self.event_loop.enter().await.repeat(Step::LogLine, 2).await;
    }
}

impl CredentialManager for AsShipped {
    const MARKS_STEPS: bool = true;

    fn name(&self) -> &'static str {
        "as_shipped"
    }

    async fn acquire(&self, request: &Request) -> Result<Lease, AcquireError> {
        let asked = Instant::now();
        let mut timing = Timing::default();
        let pick = self.get_valid_credential(request, 0, &mut timing).await?;
        let lock_wait = timing.locked_at.map(|at| at - asked).unwrap_or_default();
        Ok(pick.into_lease(AcquireTiming::since(asked, lock_wait, timing.refresh_wait)))
    }

    async fn complete(&self, lease: Lease, request: &Request, outcome: Outcome) -> Result<(), AcquireError> {
        steps::enter(step::MARKING_OUTCOME);
        let now = self.env.clock.now_ms();
        let change = self.env.policy.outcome_change(&request.model, now, &outcome);
        match &change {
            Change::Success { .. } => {
                if self.env.options.record_outcomes {
                    let written = self.write_state(&lease.id, &change).await;
                    self.settle(&lease.id, &change, written);
                }
                // `record_successful_call`: usage counters in memory.
                if let Some(series) = self.env.policy.series_of(&request.model) {
                    *self
                        .usage
                        .lock()
                        .0
                        .entry((lease.index, series.to_string()))
                        .or_default() += 1;
                }
            }
            Change::Error { code, ban, disable } => {
                if self.env.options.record_outcomes {
                    // mark_credential_error: the code is recorded through the state write.
                    let recorded = Change::Error {
                        code: *code,
                        ban: None,
                        disable: false,
                    };
                    let written = self.write_state(&lease.id, &recorded).await;
                    self.settle(&lease.id, &recorded, written);
                    // "Marked Antigravity credential error".
                    self.event_loop.enter().await.repeat(Step::LogLine, 1).await;
                }
                if let Some((series, until)) = ban {
                    self.set_series_ban(lease.index, &lease.id, series, *until).await;
                }
                if *disable {
                    Counters::bump(&self.counters.disables);
                    self.disable_credential(lease.index, &lease.id).await;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn stats(&self) -> StrategyStats {
        self.counters.snapshot()
    }

    async fn accounts(&self) -> Vec<Account> {
        self.pool.lock().accounts.clone()
    }

    /// In the manager's in-memory state, as the shipped `disable_credential` did (no
    /// `_operation_lock`).
    async fn switch(&self, index: usize, change: &Change) -> bool {
        self.pool.lock().switch(index, change)
    }
}
