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
//!    same record, which is what the audit counts lost updates by); `record_successful_call`
//!    counts the call in the usage counters, in memory, flushed once a minute (`usage.rs`); a 429
//!    (its body's delay read by the shipped parser, [`retry_delay`]) then bans the model series
//!    through `_set_series_ban`: load the file, set the ban, and save it with **no lock** through
//!    the shared temp name; an auto-ban code disables the account (`disable_credential`: state
//!    read, locked write, rediscovery).
//!
//! **Defects replayed**, each measurable in a run:
//! - the stale-read lost update (the audit's `lost_updates`), and the same stale read in a
//!   success report re-enabling an account another request disabled meanwhile (`resurrected`;
//!   `defect-resurrected-account`);
//! - the stale "current account" pointer ([`rotation`]): the account loaded at the last rotation
//!   is handed out until the next one, disabled or not (`served_disabled`), and the cursor keeps
//!   its position when a disable shrinks the list, so the next rotation passes over the account
//!   that slid into it (`rotation_skips`; both `defect-stale-current-account`, measured outside
//!   the strategy by [`crate::metrics::served`]). The list is rebuilt from the file, so a
//!   resurrected account comes back into rotation at the next discovery;
//! - the unlocked 429 save through one shared temp name (`file_unreadable`, an empty pool);
//! - a refreshed token overwritten by a stale state write (the audit's `stale_tokens`);
//! - recursion into `get_valid_credential` while holding `_operation_lock` after a failed
//!   refresh, a series ban (with more than one account) or an exhausted daily quota: the request
//!   awaits the lock it holds, every later request queues behind it, and the runner's watchdog
//!   reports the deadlock with the step it happened in ([`crate::metrics::steps`]);
//! - the HTTP client built synchronously on every refresh: 31 ms during which the whole process
//!   stands still ([`crate::costs::Step::EventLoopStall`] on the event loop);
//! - an expired series ban cleared in the file but never in memory: a whole-file write on every
//!   request after it (`expired_ban.rs`; `store_writes`, which counts this replica's writes too);
//! - usage counters flushed once a minute: a crash loses up to a minute of them (`usage.rs`;
//!   `usage_unflushed`, the increments not on disk at the run's end);
//! - `quotaResetDelay` read by patterns that take `479.417207ms` for 417,207 minutes when the 429
//!   body has no reset timestamp: a ban of about 580 days (twice the misread delay) instead of
//!   about a second ([`retry_delay`]; `longest_ban_hours`).
//!
//! **Not replayed:** the router's retries (up to 5 attempts for an auto-ban code, with a
//! forced rotation between them: here the skip shows at the next due rotation instead); the
//! `virtual_filename` the shipped `get_valid_credential` returned beside a stale account, taken
//! from the list at the cursor and so naming another account (or raising `IndexError` past the
//! end of a shrunk list): here a lease's bookkeeping goes to the account it was served with. With
//! `record_outcomes = false` (scenarios that time `get_valid_credential` alone) the router's
//! success/error state writes are skipped; bans and disables still happen. Nor the backed-off
//! refresh ban credpool's policy offers (`pool.refresh_backoff`): the shipped code disables on
//! every failed refresh.
//!
//! **Trades away:** everything credpool's own strategies keep. It is a specimen, not a design; it
//! is outside the strategy contract suite and has its own tests (`tests/as_shipped.rs`).

pub mod event_loop;
mod expired_ban;
pub mod retry_delay;
pub mod rotation;
pub mod storage;
mod usage;

use super::env::{Counters, Env, RefreshAttempts, StrategyStats};
use super::lease::{AcquireError, AcquireTiming, Lease, Pick, Request};
use super::CredentialManager;
use crate::costs::Step;
use crate::future::BoxFuture;
use crate::metrics::steps;
use crate::model::{Account, AccountId, AccountsFile, Change, Outcome, PoolState};
use crate::store::backend::{Backend, MemoryBackend};
use event_loop::EventLoop;
use rotation::ShippedRotation;
use std::sync::Arc;
use std::time::Duration;
use storage::{ShippedStorage, ShippedStorageStats};
use tokio::time::Instant;
use usage::Usage;

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
    pub const CLEARING_EXPIRED_BAN: &str =
        "get_valid_credential: clearing an expired series ban (load and unlocked save), holding _operation_lock";
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
    /// The account's ban on the request's series has expired: clear it in the file (and, as
    /// shipped, not in memory), then decide again.
    ClearExpiredBan {
        id: AccountId,
        series: String,
    },
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
    /// The discovered list, the cursor and the cached current account ([`rotation`]): the
    /// manager's selection state (`pool`'s own cursor is not used). Always locked after `pool`.
    /// Boxed, so that the replica, already the largest variant of [`super::AnyStrategy`] (which
    /// holds every strategy by value), stays within clippy's `large_enum_variant` bound.
    rotation: Box<crate::sync::Mutex<ShippedRotation>>,
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
        let rotation = ShippedRotation::discovered(enabled(&env.accounts));
        let usage = Usage::new(env.clock.now_ms());
        let attempts = RefreshAttempts::new(env.accounts.len());
        AsShipped {
            storage: ShippedStorage::new(backend, event_loop.clone()).reporting_writes_to(env.store.clone()),
            event_loop,
            operation_lock: tokio::sync::Mutex::new(()),
            pool: crate::sync::Mutex::new(pool),
            rotation: Box::new(crate::sync::Mutex::new(rotation)),
            usage: crate::sync::Mutex::new(usage),
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
            // "If the list is empty, discover": a file read, the loop free meanwhile.
            if self.rotation.lock().listed() == 0 {
                drop(turn);
                self.discover().await;
                turn = self.event_loop.enter().await;
            }
            // The expired-ban clear runs once per call: the check sees the same stale in-memory
            // value again right after it.
            let mut cleared = false;
            loop {
                match self.decide(request, checked, cleared) {
                    Decision::Ready(pick) => return Ok(pick),
                    Decision::Exhausted => {
                        Counters::bump(&self.counters.exhausted);
                        return Err(AcquireError::Exhausted);
                    }
                    Decision::ClearExpiredBan { id, series } => {
                        steps::enter(step::CLEARING_EXPIRED_BAN);
                        drop(turn);
                        self.clear_expired_ban(&id, &series).await;
                        cleared = true;
                        turn = self.event_loop.enter().await;
                        steps::enter(step::SELECTING);
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
                            // "Reload the list", then "try the next account": the one path that
                            // reloads the current account after a disable.
                            self.discover().await;
                            if self.rotation.lock().listed() == 0 {
                                Counters::bump(&self.counters.exhausted);
                                return Err(AcquireError::Exhausted);
                            }
                            self.rotation.lock().load_current();
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

    /// `_discover_credentials`: the list rebuilt from the accounts the file says are enabled (one
    /// load). A file that cannot be read keeps the list as it was (the shipped "[CRITICAL FIX]");
    /// the cursor and the cached current account are never touched.
    async fn discover(&self) {
        let Ok(file) = self.storage.load_accounts().await else {
            return;
        };
        let pool = self.pool.lock();
        let enabled = pool.accounts.iter().enumerate().filter_map(|(i, a)| {
            file.find(&a.id)
                .is_some_and(|f| !file.accounts[f].disabled)
                .then_some(i)
        });
        self.rotation.lock().rediscover(enabled);
    }

    /// The checks of `get_valid_credential`, in the shipped order: rotation, the cached current
    /// account loaded if none is, its series ban (and the clear of an expired one, unless `cleared`
    /// already in this call), the daily quota, its token's expiry. Nothing checks whether the
    /// cached account is still enabled (the stale pointer).
    fn decide(&self, request: &Request, checked: usize, cleared: bool) -> Decision {
        let now = self.env.clock.now_ms();
        let pool = self.pool.lock();
        let mut rotation = self.rotation.lock();
        let listed = rotation.listed();
        if listed == 0 || checked >= listed {
            return Decision::Exhausted;
        }
        if rotation.should_rotate(self.env.policy.calls_per_rotation) {
            rotation.rotate();
        }
        rotation.load_if_none();
        let Some(i) = rotation.current() else {
            return Decision::Exhausted;
        };
        let series = self.env.policy.series_of(&request.model).map(str::to_string);
        if let Some(series) = &series {
            if pool.accounts[i].is_banned(series, now) {
                // "Rotating to next account due to series ban", then a recursive call.
                return if listed > 1 {
                    rotation.rotate();
                    Decision::Reenter(Reentry::SeriesBan)
                } else {
                    Decision::Exhausted
                };
            }
            if !cleared && expired_ban::has_expired_ban(&pool.accounts[i], series, now) {
                return Decision::ClearExpiredBan {
                    id: pool.accounts[i].id.clone(),
                    series: series.clone(),
                };
            }
            if let Some(limit) = self.env.options.daily_limit {
                let used = self.usage.lock().used(i, series);
                if used >= limit {
                    return if listed > 1 {
                        rotation.rotate();
                        Decision::Reenter(Reentry::DailyQuota)
                    } else {
                        Decision::Exhausted
                    };
                }
            }
        }
        let a = &pool.accounts[i];
        // The shipped rule, kept as it was (no lifetime bound: this is the specimen): expired when
        // `now >= timestamp + expires_in*1000 - margin`, or when either field is missing.
        if crate::model::account::expires_within(a.expires_at(), now, self.env.policy.refresh_margin_ms) {
            return Decision::Refresh {
                index: i,
                id: a.id.clone(),
                refresh_token: a.refresh_token.clone(),
            };
        }
        // The router's `increment_call_count` after the acquisition.
        rotation.count_call();
        Decision::Ready(Pick {
            index: i,
            id: a.id.clone(),
            token: a.access_token.clone(),
        })
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
            // The shipped code disables on every failure: it has no backed-off ban, whatever the
            // scenario's policy offers credpool's strategies.
            if !change.disables() {
                Counters::bump(&self.counters.disables);
            }
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
    /// `_discover_credentials`: the list rebuilt from the file (the account leaves it if the write
    /// is there), while the cached current account, if it was this one, stays.
    async fn disable_credential(&self, index: usize, id: &AccountId) {
        steps::enter(step::DISABLING);
        let written = self.write_state(id, &Change::Disabled).await;
        self.settle(id, &Change::Disabled, written);
        // "Disabled Antigravity credential".
        self.event_loop.enter().await.repeat(Step::LogLine, 1).await;
        self.pool.lock().apply(index, &Change::Disabled);
        self.discover().await;
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
        // The 429 body as the shipped handler read it (`quotaResetDelay` misread as minutes).
        let outcome = retry_delay::as_shipped_read(&outcome);
        let change = self.env.policy.outcome_change(&request.model, now, &outcome);
        match &change {
            Change::Success { .. } => {
                if self.env.options.record_outcomes {
                    let written = self.write_state(&lease.id, &change).await;
                    self.settle(&lease.id, &change, written);
                }
                // `record_successful_call`: usage counters in memory, flushed once a minute.
                if let Some(series) = self.env.policy.series_of(&request.model) {
                    let flush_due = self.usage.lock().record(lease.index, series, self.env.clock.now_ms());
                    if flush_due {
                        let turn = self.event_loop.enter().await;
                        turn.spend(Step::TomlDump).await;
                        turn.spend(Step::FileWrite).await;
                    }
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
        StrategyStats {
            usage_unflushed: self.usage.lock().unflushed(),
            ..self.counters.snapshot()
        }
    }

    async fn accounts(&self) -> Vec<Account> {
        self.pool.lock().accounts.clone()
    }

    /// In the manager's in-memory state, as the shipped `disable_credential` did (no
    /// `_operation_lock`); the list is rebuilt from memory (no file read), and the cached current
    /// account stays.
    async fn switch(&self, index: usize, change: &Change) -> bool {
        let pool = &mut *self.pool.lock();
        let changed = pool.switch(index, change);
        self.rotation.lock().rediscover(enabled(&pool.accounts));
        changed
    }
}

/// The pool indices of the enabled accounts, in order (what a discovery lists).
fn enabled(accounts: &[Account]) -> impl Iterator<Item = usize> + '_ {
    accounts.iter().enumerate().filter(|(_, a)| !a.disabled).map(|(i, _)| i)
}
