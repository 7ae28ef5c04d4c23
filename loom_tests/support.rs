//! What every model shares: fixtures, a way to drive futures on loom threads, and the harness
//! that turns "loom found the violation" into a passing negative control.

#![allow(dead_code)] // each model file uses its own subset

use credpool::clock::Clock;
use credpool::costs::Costs;
use credpool::future::BoxFuture;
use credpool::model::{Account, AccountsFile, EpochMs, Policy, RefreshFailure, TokenGrant};
use credpool::secret::Secret;
use credpool::store::backend::{AtomicWrite, Backend, CrossProcessGuard, MemoryBackend};
use credpool::store::{self, StoreMode};
use credpool::strategy::{Env, StrategyOptions};
use credpool::sync::Mutex;
use credpool::upstream::TokenEndpoint;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// "Now" in every model: the accounts' tokens were issued at 0 and live an hour.
pub const NOW: EpochMs = 0;
pub const MODEL: &str = "gemini-3-pro";
pub const HOUR_MS: EpochMs = 3_600_000;

pub fn policy(calls_per_rotation: u64) -> Policy {
    Policy {
        calls_per_rotation,
        ..Policy::default()
    }
}

/// `n` healthy accounts (tokens valid for an hour from [`NOW`]).
pub fn accounts(n: usize) -> Vec<Account> {
    (0..n).map(|i| Account::synthetic(i, NOW, 3600)).collect()
}

/// An instant at which [`accounts`]' tokens are inside the refresh margin (5 minutes before the
/// hour is up) with the default policy.
pub const IN_MARGIN: EpochMs = HOUR_MS - 60_000;
/// An instant inside the refresh-ahead window but outside the margin (default policy: ahead
/// from 10 minutes before expiry, margin from 5).
pub const IN_AHEAD_WINDOW: EpochMs = HOUR_MS - 8 * 60_000;

/// The refreshed token of credential `i` in every model.
pub fn fresh_token(i: usize) -> Secret {
    Secret::new(format!("fresh-{i}"))
}

/// A successful refresh of credential `i` at `at`.
pub fn refreshed(i: usize, at: EpochMs) -> credpool::model::Change {
    credpool::model::Change::Refreshed {
        grant: TokenGrant {
            access_token: fresh_token(i),
            expires_in: 3600,
        },
        at,
    }
}

/// Drives `f` to completion on the current loom thread, for futures that may wait on tokio's
/// sync primitives (the stores' async mutexes).
///
/// tokio is not built against loom: its internals are opaque to the model, and each tokio
/// operation is one atomic step between loom's scheduling points. `loom::future::block_on` must
/// not be used with it, because its waker is a loom `Arc`: cloning it is a loom operation, tokio
/// clones wakers while holding its own internal (std) lock, and a loom context switch there
/// would deadlock the one OS thread loom runs on. This waker is a std `Arc` (cloning and dropping
/// it are invisible to loom) around a loom `Notify`: a pending future parks the loom thread, and
/// tokio's wake-up, which it makes after releasing its lock, unparks it through loom, so a lost
/// wake-up is still a deadlock loom reports. Futures that wait only on production cores built on
/// `credpool::sync` use `loom::future::block_on`.
///
/// Only meaningful for code whose shared *data* is behind `credpool::sync` primitives: loom's
/// partial-order reduction sees conflicts only on what it can see, so state kept inside a tokio
/// lock would make it prune the interleavings that matter.
pub fn block_on_tokio<F: Future>(f: F) -> F::Output {
    let parked = std::sync::Arc::new(Parked(loom::sync::Notify::new()));
    let waker = Waker::from(parked.clone());
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        parked.0.wait();
    }
}

/// The waker of [`block_on_tokio`].
struct Parked(loom::sync::Notify);

impl std::task::Wake for Parked {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.notify();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.notify();
    }
}

/// A broadcast "something changed" signal with the discipline of the production code's async
/// waits (`tokio::sync::Notify` registered before checking, `watch::Receiver::wait_for`): take a
/// [`ticket`](Self::ticket) before checking the condition, and [`wait`](Self::wait) with it to
/// sleep until a notification made after the ticket. A change between the check and the wait is
/// not missed; a wait nobody ends is a deadlock loom reports.
pub struct Signal {
    generation: loom::sync::Mutex<u64>,
    changed: loom::sync::Condvar,
}

impl Signal {
    pub fn new() -> Signal {
        Signal {
            generation: loom::sync::Mutex::new(0),
            changed: loom::sync::Condvar::new(),
        }
    }

    pub fn ticket(&self) -> u64 {
        *self.generation.lock().unwrap()
    }

    pub fn wait(&self, ticket: u64) {
        let mut generation = self.generation.lock().unwrap();
        while *generation == ticket {
            generation = self.changed.wait(generation).unwrap();
        }
    }

    pub fn notify(&self) {
        *self.generation.lock().unwrap() += 1;
        self.changed.notify_all();
    }
}

/// A negative control: runs the loom model `f`, which must FAIL, and passes only if loom
/// reported a panic whose message contains `expected` (so the model failed for the reason it
/// is about, not for some other one).
pub fn expect_violation(expected: &str, f: impl Fn() + Sync + Send + 'static) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loom::model(f)));
    let payload = match outcome {
        Ok(()) => panic!("loom explored every interleaving and found no violation of {expected:?}"),
        Err(payload) => payload,
    };
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        message.contains(expected),
        "loom failed the model, but not with {expected:?}: {message:?}"
    );
}

/// The accounts file of `accounts`, as TOML text.
pub fn toml_of(accounts: Vec<Account>) -> String {
    AccountsFile::from_accounts(accounts).to_toml_string()
}

/// The parsed accounts of a stored file.
pub fn parse(text: &str) -> AccountsFile {
    AccountsFile::parse(Path::new("memory"), text).expect("the store wrote a valid file")
}

/// The production in-memory backend, with every completed write's version recorded in write
/// order. A file's version is the number of calls its first account has counted (every update
/// in the store models counts one call), so a lost update shows as a final version below the
/// number of updates, and a stale write as a version lower than the one before it.
pub struct RecordingBackend {
    inner: MemoryBackend,
    /// Held across the write it records, so the log's order is the writes' order.
    versions: Mutex<Vec<u64>>,
}

impl RecordingBackend {
    pub fn new(text: String) -> Self {
        RecordingBackend {
            inner: MemoryBackend::new(Some(text)),
            versions: Mutex::new(Vec::new()),
        }
    }

    pub fn versions(&self) -> Vec<u64> {
        self.versions.lock().clone()
    }

    /// The first account of the current file (a default one, with nothing counted, if a
    /// `naive` write wiped the pool).
    pub fn first_account(&self) -> Account {
        let text = self.inner.contents().expect("the file exists");
        parse(&text).accounts.into_iter().next().unwrap_or_default()
    }

    fn record(&self, text: &str, write: impl FnOnce() -> io::Result<u32>) -> io::Result<u32> {
        let mut versions = self.versions.lock();
        let result = write();
        if result.is_ok() {
            versions.push(parse(text).accounts.first().map_or(0, |a| a.total_calls));
        }
        result
    }
}

impl Backend for RecordingBackend {
    fn label(&self) -> String {
        self.inner.label()
    }
    fn read(&self) -> io::Result<Option<String>> {
        self.inner.read()
    }
    fn truncate(&self) -> io::Result<()> {
        self.inner.truncate()
    }
    fn write_in_place(&self, text: &str) -> io::Result<()> {
        self.record(text, || self.inner.write_in_place(text).map(|()| 0))
            .map(drop)
    }
    fn write_atomic(&self, text: &str, how: AtomicWrite) -> io::Result<u32> {
        self.record(text, || self.inner.write_atomic(text, how))
    }
    fn lock_cross_process(&self) -> io::Result<Box<dyn CrossProcessGuard>> {
        self.inner.lock_cross_process()
    }
}

/// Checks what every store model asserts at quiescence: `updates` acknowledged updates, none
/// lost, persisted versions never going backwards, and the last one persisted is the final file.
pub fn assert_no_lost_update(backend: &RecordingBackend, updates: u64) {
    let versions = backend.versions();
    let account = backend.first_account();
    assert_eq!(
        account.total_calls, updates,
        "lost update: {updates} updates acknowledged, the file counts {} (writes: {versions:?})",
        account.total_calls
    );
    assert_eq!(
        account.error_codes.len() as u64,
        updates,
        "lost update: error codes {:?}",
        account.error_codes
    );
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "persisted versions went backwards: {versions:?}"
    );
    assert_eq!(
        versions.last().copied(),
        Some(account.total_calls),
        "the last write is not the final file"
    );
}

/// A token endpoint that answers at once (no timer: loom cannot drive tokio's), with a fresh
/// token for every credential.
pub struct InstantTokens;

impl TokenEndpoint for InstantTokens {
    fn refresh<'a>(
        &'a self,
        credential: usize,
        _attempt: u64,
        _refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<TokenGrant, RefreshFailure>> {
        Box::pin(async move {
            Ok(TokenGrant {
                access_token: fresh_token(credential),
                expires_in: 3600,
            })
        })
    }
}

/// A strategy environment with zero costs (no timers), a `locked` store over the memory backend
/// and outcomes not persisted, so the strategy's own paths are the only thing running.
pub fn env(accounts: Vec<Account>, policy: Policy, options: StrategyOptions) -> Env {
    let backend = std::sync::Arc::new(MemoryBackend::new(Some(toml_of(accounts.clone()))));
    Env {
        policy,
        accounts,
        costs: Costs::default(),
        clock: Clock::starting_at(NOW),
        store: store::open(StoreMode::Locked, backend, Costs::default()),
        tokens: std::sync::Arc::new(InstantTokens),
        options,
    }
}
