//! Randomized schedules for what loom cannot reach: every strategy's async shell (`global_mutex`'s
//! tokio mutex held across awaits; the async gates of `rwlock` and `sharded`; `queue_pool`'s
//! waiting future; `lock_free`'s spawned refresh flights and `Notify` wake-ups) and the stores'
//! async parts (`locked`/`durable`'s tokio mutex, `group_commit`'s spawned leader and `watch`).
//!
//! Each run is a burst on a multi-threaded tokio runtime (2 workers, so tasks really run in
//! parallel) with yields injected at every await point the strategies cross (before and after each
//! acquisition, inside the token endpoint, inside the store) in numbers drawn from the run's seed.
//! The seed varies where the schedule is perturbed; the OS still decides the rest, so a run is not
//! replayable from its seed (loom's models are the exhaustive part, see
//! docs/model-checking.md). 40 seeds per strategy, store modes in turn; `CREDPOOL_STRESS_SEEDS=N` runs more.
//!
//! Every run asserts, for one strategy: every request is served with a token freshly issued for
//! its credential (never the expired one); each credential is refreshed at most once for its one
//! expiry; an acquisition that starts after a disabling completion returned never gets that
//! credential; no call is lost on the way to the file (per credential, the file counts exactly the
//! completions made); the disable reaches the file; no lock, permit or refresh slot is left held
//! (`queue_pool`: permits conserved and never more holders than permits); and the whole run
//! finishes within a timeout (no deadlock, no lost wake-up).

mod common;

use common::*;
use credpool::costs::Costs;
use credpool::future::BoxFuture;
use credpool::model::{Outcome, RefreshFailure, TokenGrant};
use credpool::secret::Secret;
use credpool::store::{AccountStore, StoreMode};
use credpool::strategy::{AnyStrategy, CredentialManager, Request, StrategyName, StrategyOptions};
use credpool::upstream::TokenEndpoint;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const CREDENTIALS: usize = 3;
const USERS: u32 = 9;
const ROUNDS: u32 = 2;
/// The status code the policy treats as an auto-ban (disables the credential).
const AUTO_BAN: u16 = 401;
const RUN_TIMEOUT: Duration = Duration::from_secs(20);

fn seeds() -> u64 {
    std::env::var("CREDPOOL_STRESS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40)
}

/// Seeded yield counts: the `n`-th draw of a run is a function of (seed, n) only.
struct Jitter {
    seed: u64,
    draws: AtomicU64,
}

impl Jitter {
    fn new(seed: u64) -> Arc<Jitter> {
        Arc::new(Jitter {
            seed,
            draws: AtomicU64::new(0),
        })
    }

    /// splitmix64 of (seed, draw number).
    fn draw(&self) -> u64 {
        let n = self.draws.fetch_add(1, Ordering::Relaxed);
        let mut z = self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n.wrapping_add(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Yields to the runtime 0 to 3 times.
    async fn perturb(&self) {
        for _ in 0..self.draw() % 4 {
            tokio::task::yield_now().await;
        }
    }
}

/// The token endpoint double, with yields before it answers.
struct JitteryTokens {
    inner: Arc<TokenDouble>,
    jitter: Arc<Jitter>,
}

impl TokenEndpoint for JitteryTokens {
    fn refresh<'a>(
        &'a self,
        credential: usize,
        attempt: u64,
        refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<TokenGrant, RefreshFailure>> {
        Box::pin(async move {
            self.jitter.perturb().await;
            self.inner.refresh(credential, attempt, refresh_token).await
        })
    }
}

/// A production store with yields before and after each update.
struct JitteryStore {
    inner: Arc<dyn AccountStore>,
    jitter: Arc<Jitter>,
}

impl AccountStore for JitteryStore {
    fn mode(&self) -> StoreMode {
        self.inner.mode()
    }
    fn load(&self) -> BoxFuture<'_, Result<credpool::model::AccountsFile, credpool::store::StoreError>> {
        self.inner.load()
    }
    fn update<'a>(
        &'a self,
        id: &'a credpool::model::AccountId,
        change: credpool::model::Change,
    ) -> BoxFuture<'a, Result<(), credpool::store::StoreError>> {
        Box::pin(async move {
            self.jitter.perturb().await;
            let result = self.inner.update(id, change).await;
            self.jitter.perturb().await;
            result
        })
    }
    fn stats(&self) -> credpool::store::StoreStats {
        self.inner.stats()
    }
}

/// What the request tasks share.
struct Run {
    strategy: AnyStrategy,
    jitter: Arc<Jitter>,
    /// Completions made per credential (every completion counts one call in the file).
    served: Vec<AtomicU64>,
    /// Requests holding each credential right now.
    holding: Vec<AtomicUsize>,
    most_held: AtomicUsize,
    /// 1 + the credential disabled by a completion that has returned; 0 before.
    disabled: AtomicUsize,
}

impl Run {
    /// One request: acquire, check, hold, complete with `outcome`. Returns the credential.
    async fn request(&self, number: u64, user: u32, outcome: Outcome) -> usize {
        let name = self.strategy.name();
        let req = Request::new(number, user, MODEL);
        self.jitter.perturb().await;
        let disabled_before = self.disabled.load(Ordering::SeqCst);
        let lease = self.strategy.acquire(&req).await.expect("a usable credential remains");
        let i = lease.index;
        assert!(
            issued_for(&lease.token, i),
            "{name}: credential {i} handed out without its refreshed token"
        );
        assert_ne!(
            disabled_before,
            i + 1,
            "{name}: credential {i} handed out after its disable returned"
        );
        let held = self.holding[i].fetch_add(1, Ordering::SeqCst) + 1;
        self.most_held.fetch_max(held, Ordering::SeqCst);
        self.jitter.perturb().await;
        self.holding[i].fetch_sub(1, Ordering::SeqCst);
        self.strategy.complete(lease, &req, outcome).await.unwrap();
        self.served[i].fetch_add(1, Ordering::SeqCst);
        i
    }
}

async fn one_run(name: StrategyName, seed: u64) {
    let mode = [StoreMode::Locked, StoreMode::Durable, StoreMode::GroupCommit][(seed % 3) as usize];
    let jitter = Jitter::new(seed);
    let tokens = TokenDouble::new(CREDENTIALS, Duration::ZERO, &[]);
    let mut pool_policy = policy(2);
    pool_policy.auto_ban_codes = vec![AUTO_BAN];
    let f = Fixture::with(
        (0..CREDENTIALS).map(expired).collect(),
        pool_policy,
        tokens.clone(),
        mode,
        Costs::default(),
        StrategyOptions::default(),
    );
    let mut env = f.env.clone();
    env.tokens = Arc::new(JitteryTokens {
        inner: tokens.clone(),
        jitter: jitter.clone(),
    });
    env.store = Arc::new(JitteryStore {
        inner: env.store.clone(),
        jitter: jitter.clone(),
    });
    let run = Arc::new(Run {
        strategy: name.build(env),
        jitter: jitter.clone(),
        served: (0..CREDENTIALS).map(|_| AtomicU64::new(0)).collect(),
        holding: (0..CREDENTIALS).map(|_| AtomicUsize::new(0)).collect(),
        most_held: AtomicUsize::new(0),
        disabled: AtomicUsize::new(0),
    });

    let mut tasks = Vec::new();
    for user in 0..USERS {
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let number = u64::from(round * USERS + user);
                let outcome = if run.jitter.draw().is_multiple_of(5) {
                    Outcome::Status(500)
                } else {
                    Outcome::Success
                };
                run.request(number, user, outcome).await;
            }
        }));
    }
    // The admin request: its completion disables the credential it used.
    let admin = {
        let run = run.clone();
        tokio::spawn(async move {
            let i = run.request(1_000, USERS, Outcome::Status(AUTO_BAN)).await;
            run.disabled.store(i + 1, Ordering::SeqCst);
            i
        })
    };
    for t in tasks {
        t.await.expect("a request task panicked");
    }
    let disabled = admin.await.expect("the admin task panicked");

    // Spawned work (lock_free's write-behind refresh persistence, group_commit's leader) ends.
    if let AnyStrategy::LockFree(s) = &run.strategy {
        while (0..CREDENTIALS).any(|i| s.core().flight(i).is_running()) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    let ctx = format!("{name}, {mode}, seed {seed}");
    for i in 0..CREDENTIALS {
        let calls = tokens.calls(i);
        assert!(
            calls <= 1,
            "{ctx}: credential {i} refreshed {calls} times for one expiry"
        );
        if run.served[i].load(Ordering::SeqCst) > 0 {
            assert_eq!(calls, 1, "{ctx}: credential {i} served without a refresh");
        }
    }
    let stats = run.strategy.stats();
    assert_eq!(stats.refreshes, tokens.total_calls(), "{ctx}: {stats:?}");
    assert_eq!((stats.exhausted, stats.store_errors), (0, 0), "{ctx}: {stats:?}");
    let file = f.persisted();
    let served: Vec<u64> = run.served.iter().map(|s| s.load(Ordering::SeqCst)).collect();
    let on_disk: Vec<u64> = file.iter().map(|a| a.total_calls).collect();
    assert_eq!(on_disk, served, "{ctx}: calls lost on the way to the file");
    assert!(file[disabled].disabled, "{ctx}: the disable was not persisted");
    assert!(run.strategy.accounts().await[disabled].disabled, "{ctx}");
    if let AnyStrategy::QueuePool(s) = &run.strategy {
        let counts = s.counts();
        assert!(counts.conserved(), "{ctx}: {counts:?}");
        assert_eq!(
            (counts.idle, counts.checked_out, counts.removed),
            (CREDENTIALS - 1, 0, 1),
            "{ctx}: {counts:?}"
        );
        assert_eq!(s.core().waiting(), 0, "{ctx}");
        let most = run.most_held.load(Ordering::SeqCst);
        assert_eq!(most, 1, "{ctx}: a credential had {most} holders at once (1 permit)");
    }
    if let AnyStrategy::LockFree(s) = &run.strategy {
        for i in 0..CREDENTIALS {
            assert!(!s.core().flight(i).is_running(), "{ctx}: refresh slot {i} left running");
        }
    }
}

async fn stress(name: StrategyName) {
    for seed in 0..seeds() {
        if tokio::time::timeout(RUN_TIMEOUT, one_run(name, seed)).await.is_err() {
            panic!("{name}, seed {seed}: the run did not finish in {RUN_TIMEOUT:?} (deadlock or lost wake-up)");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_mutex_under_randomized_schedules() {
    stress(StrategyName::GlobalMutex).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rwlock_under_randomized_schedules() {
    stress(StrategyName::Rwlock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_pool_under_randomized_schedules() {
    stress(StrategyName::QueuePool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_under_randomized_schedules() {
    stress(StrategyName::Sharded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_free_under_randomized_schedules() {
    stress(StrategyName::LockFree).await;
}
