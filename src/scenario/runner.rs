//! Runs one scenario with one strategy, on the virtual or the wall clock.
//!
//! Virtual mode builds a current-thread tokio runtime with a paused clock: time advances only when
//! every task is waiting, so a run is deterministic to the last digit and a 3.5 s burst takes a
//! few milliseconds. Real mode runs on a multi-threaded runtime on the wall clock, with a wiremock
//! upstream on 127.0.0.1 and a real `accounts.toml` in a temporary directory.
//!
//! Both modes drive the same code: arrivals are generated lazily (open loads spawn each request
//! at its intended start; bursts spawn everything at t = 0; closed loads run one task per user),
//! each request acquires, calls the upstream, completes, and reports its phases to the
//! [`Recorder`]. A watchdog turns a hang into a reported deadlock.

use super::arrivals::{model_of, user_of, Arrivals};
use super::instances::Instances;
use super::plan::{Plan, VIRTUAL_EPOCH_MS};
use super::spec::{LoadModel, Mode};
use crate::analysis::{fifo, littles_law};
use crate::clock::{Clock, VIRTUAL_TIME_SCALE};
use crate::metrics::audit::AuditedStore;
use crate::metrics::expectation::ExpectationResult;
use crate::metrics::herd::RefreshWatch;
use crate::metrics::recorder::RequestRecord;
use crate::metrics::served::ServedWatch;
use crate::metrics::steps::{StepBoard, Tracked};
use crate::metrics::timer_lag::TimerLagProbe;
use crate::metrics::{Recorder, StrategyRun};
use crate::model::AccountsFile;
use crate::pacing::{Pace, Pacer};
use crate::store::backend::{Backend, MemoryBackend};
use crate::store::AccountStore;
use crate::strategy::{AcquireError, AcquireTiming, AnyStrategy, CredentialManager, Env, Request, StrategyName};
use crate::upstream::simulated::SimulatedUpstream;
use crate::upstream::{Api, TokenEndpoint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Called after every finished request (drives the progress bar).
pub type Progress = Arc<dyn Fn() + Send + Sync>;

/// Where requests are, for the watchdog's report.
#[derive(Default)]
struct InFlight {
    acquiring: AtomicU64,
    upstream: AtomicU64,
    completing: AtomicU64,
    done: AtomicU64,
}

/// Everything one request task needs.
struct Shared<M, A> {
    /// The strategy as its own type (not [`AnyStrategy`]): each request's future then holds only
    /// this strategy's futures, not room for the largest of them all.
    strategy: M,
    /// The upstream as its own type, for the same reason.
    api: Arc<A>,
    recorder: crate::sync::Mutex<Recorder>,
    clock: Clock,
    in_flight: InFlight,
    /// The step each unfinished request last entered, for the watchdog's report.
    steps: Arc<StepBoard>,
    /// Every refresh, for the herd figures (it wraps the token endpoint the strategy calls).
    refreshes: Arc<RefreshWatch>,
    /// Every lease, against the store's acknowledged disables.
    served: Arc<ServedWatch>,
    all_done: tokio::sync::Notify,
    total: u64,
    progress: Option<Progress>,
    /// The run's pace (plain in virtual runs): a request that starts late makes it up.
    pace: Pace,
}

/// Runs `plan` with `strategy` and returns its measurements.
pub fn run(plan: &Plan, strategy: StrategyName, progress: Option<Progress>) -> Result<StrategyRun, String> {
    let wall = Instant::now();
    let mut run = match plan.mode {
        Mode::Virtual => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .map_err(|e| format!("cannot start the virtual-time runtime: {e}"))?;
            rt.block_on(run_virtual(plan, strategy, progress))
        }
        Mode::Real => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the runtime: {e}"))?;
            rt.block_on(run_real(plan, strategy, progress))?
        }
    };
    run.wall_time = wall.elapsed();
    Ok(run)
}

async fn run_virtual(plan: &Plan, name: StrategyName, progress: Option<Progress>) -> StrategyRun {
    let clock = Clock::scaled(VIRTUAL_EPOCH_MS, VIRTUAL_TIME_SCALE);
    let costs = plan.costs.clone().scaled(clock.scale());
    let accounts = plan.initial_accounts(clock.now_ms());
    let backend = Arc::new(MemoryBackend::new(Some(
        AccountsFile::from_accounts(accounts.clone()).to_toml_string(),
    )));
    let store = Arc::new(AuditedStore::new(crate::store::open(
        plan.store,
        backend.clone(),
        costs.clone(),
    )));
    let upstream = Arc::new(SimulatedUpstream::new(plan.upstream.clone(), clock));
    let watch = watch_refreshes(plan, upstream.clone(), clock, &accounts);
    let env = Env {
        policy: plan.policy.clone(),
        accounts: accounts.clone(),
        costs,
        clock,
        store: store.clone(),
        tokens: watch.clone(),
        options: plan.options.clone(),
    };
    let mut run = drive(plan, name, env, upstream, watch, store.clone(), progress).await;
    run.audit = store.audit(&accounts, backend.contents().as_deref(), clock.now_ms());
    run.store = store.stats();
    run
}

async fn run_real(plan: &Plan, name: StrategyName, progress: Option<Progress>) -> Result<StrategyRun, String> {
    // Every charge of the run (strategy, store and upstream calls) on one chain of deadlines.
    let pace = Pace::deadlines(Pacer::new());
    // The mock and the client's connections are ready before the run's clock starts: the
    // connections' set-up is not the run's (the model's upstream call costs only its latency).
    let server = crate::upstream::http::MockUpstream::start(plan.upstream.clone(), plan.credentials).await;
    let client = Arc::new(
        server
            .client()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?
            .paced(pace.clone()),
    );
    client.warm(planned_requests(plan).min(WARM_CONNECTIONS) as usize).await;
    let clock = Clock::wall();
    server.run_starts();
    let accounts = plan.initial_accounts(clock.now_ms());
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let path = dir.path().join("accounts.toml");
    let backend = file_backend(&path);
    backend
        .write_atomic(
            &AccountsFile::from_accounts(accounts.clone()).to_toml_string(),
            Default::default(),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let costs = plan.costs.clone().paced(pace.clone());
    // The modelled file costs are charged as in virtual time; the real I/O beside them is real
    // work on the chain, made up by the costs that follow it (store::paced_backend).
    let paced_file = Arc::new(crate::store::paced_backend::PacedBackend::new(
        backend.clone(),
        pace.clone(),
    ));
    let store = Arc::new(AuditedStore::new(crate::store::open(
        plan.store,
        paced_file,
        costs.clone(),
    )));
    let watch = watch_refreshes(plan, client.clone(), clock, &accounts);
    let env = Env {
        policy: plan.policy.clone(),
        accounts: accounts.clone(),
        costs,
        clock,
        store: store.clone(),
        tokens: watch.clone(),
        options: plan.options.clone(),
    };
    // tokio's timer cannot sleep a 100 µs modelled Redis round trip on the wall clock (it would
    // take a whole millisecond): a real-time fleet measures a real Redis (docs/fleet.md).
    let env = Env {
        options: crate::strategy::StrategyOptions {
            redis_rtt: Duration::ZERO,
            ..env.options
        },
        ..env
    };
    let probe = TimerLagProbe::start();
    let mut run = drive(plan, name, env, client, watch, store.clone(), progress).await;
    run.timer_lag = Some(probe.stop());
    let text = backend.read().ok().flatten();
    run.audit = store.audit(&accounts, text.as_deref(), clock.now_ms());
    run.store = store.stats();
    Ok(run)
}

/// At most this many connections to the mock are opened before a real-mode run (one per request
/// that may call at once, up to this): beyond, a run's calls open their own.
const WARM_CONNECTIONS: u64 = 128;

/// The token endpoint `tokens` behind a [`RefreshWatch`], for the herd figures.
fn watch_refreshes(
    plan: &Plan,
    tokens: Arc<dyn TokenEndpoint>,
    clock: Clock,
    accounts: &[crate::model::Account],
) -> Arc<RefreshWatch> {
    Arc::new(RefreshWatch::new(tokens, clock, &plan.policy, accounts))
}

/// A real file backend for real-mode runs.
fn file_backend(path: &std::path::Path) -> Arc<dyn Backend> {
    Arc::new(crate::store::backend::FileBackend::new(path))
}

/// The run's watches of what the strategy did: its refreshes and its leases.
struct Watches {
    refreshes: Arc<RefreshWatch>,
    served: Arc<ServedWatch>,
    /// Not a watch: the pace every charge of the run keeps, which the requests join.
    pace: Pace,
}

/// Issues every request of the plan with strategy `name` and waits for them (or the watchdog).
/// `audit` is the store `env` holds, audited.
async fn drive<A: Api>(
    plan: &Plan,
    name: StrategyName,
    env: Env,
    api: Arc<A>,
    refreshes: Arc<RefreshWatch>,
    audit: Arc<AuditedStore>,
    progress: Option<Progress>,
) -> StrategyRun {
    let clock = env.clock;
    let w = Watches {
        refreshes,
        served: Arc::new(ServedWatch::new(audit, plan.policy.clone(), &env.accounts)),
        pace: env.costs.pace.clone(),
    };
    if let Some(fleet) = plan.fleet {
        let instances = Instances::new(name.build_instances(env, fleet.instances), fleet.spread);
        return drive_with(plan, name, instances, clock, api, w, progress).await;
    }
    match name.build(env) {
        AnyStrategy::GlobalMutex(s) => drive_with(plan, name, s, clock, api, w, progress).await,
        AnyStrategy::Rwlock(s) => drive_with(plan, name, s, clock, api, w, progress).await,
        AnyStrategy::QueuePool(s) => drive_with(plan, name, s, clock, api, w, progress).await,
        AnyStrategy::Sharded(s) => drive_with(plan, name, s, clock, api, w, progress).await,
        AnyStrategy::LockFree(s) => drive_with(plan, name, s, clock, api, w, progress).await,
        AnyStrategy::Fleet(s) => drive_with(plan, name, s, clock, api, w, progress).await,
        AnyStrategy::AsShipped(s) => drive_with(plan, name, *s, clock, api, w, progress).await,
    }
}

/// [`drive`] with the strategy as its own type.
async fn drive_with<M: CredentialManager, A: Api>(
    plan: &Plan,
    name: StrategyName,
    strategy: M,
    clock: Clock,
    api: Arc<A>,
    watches: Watches,
    progress: Option<Progress>,
) -> StrategyRun {
    let Watches {
        refreshes,
        served,
        pace,
    } = watches;
    let shared = Arc::new(Shared {
        strategy,
        api,
        recorder: crate::sync::Mutex::new(Recorder::new(plan.seed, plan.credentials)),
        clock,
        in_flight: InFlight::default(),
        steps: Arc::new(StepBoard::default()),
        refreshes,
        served,
        all_done: tokio::sync::Notify::new(),
        total: planned_requests(plan),
        progress,
        pace,
    });
    let seed = plan.seed;
    let load = plan.load.clone();
    let generator = {
        let shared = shared.clone();
        tokio::spawn(async move {
            match load.model {
                LoadModel::Burst => {
                    for n in 0..load.requests {
                        let (user, model) = (user_of(&load, seed, n), model_of(&load, n));
                        tokio::spawn(tracked_request(&shared, n, Duration::ZERO, user, model));
                    }
                }
                LoadModel::Open => {
                    for (n, at) in Arrivals::new(&load, seed).enumerate() {
                        tokio::time::sleep_until(shared.clock.instant_at(at)).await;
                        let n = n as u64;
                        tokio::spawn(tracked_request(
                            &shared,
                            n,
                            at,
                            user_of(&load, seed, n),
                            model_of(&load, n),
                        ));
                    }
                }
                LoadModel::Closed => {
                    let next = Arc::new(AtomicU64::new(0));
                    for user in 0..load.users {
                        let (shared, next, load) = (shared.clone(), next.clone(), load.clone());
                        tokio::spawn(async move {
                            loop {
                                let n = next.fetch_add(1, Ordering::Relaxed);
                                if n >= load.requests {
                                    break;
                                }
                                let at = shared.clock.elapsed();
                                tracked_request(&shared, n, at, user, model_of(&load, n)).await;
                                if !load.think_time.is_zero() {
                                    tokio::time::sleep(shared.clock.spend(load.think_time)).await;
                                }
                            }
                        });
                    }
                }
            }
        })
    };
    let finished = tokio::time::timeout(clock.spend(plan.watchdog), async {
        let notified = shared.all_done.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if shared.in_flight.done.load(Ordering::Acquire) < shared.total {
            notified.await;
        }
    })
    .await;
    generator.abort();
    let stuck = if finished.is_err() {
        shared.steps.stuck()
    } else {
        Vec::new()
    };
    let deadlock = finished.is_err().then(|| {
        let f = &shared.in_flight;
        let mut report = format!(
            "watchdog fired after {:?} with {} of {} requests unfinished (strategy {}): {} waiting to acquire a credential, {} in the upstream call, {} completing (bookkeeping)",
            plan.watchdog,
            shared.total - f.done.load(Ordering::Relaxed),
            shared.total,
            name,
            f.acquiring.load(Ordering::Relaxed),
            f.upstream.load(Ordering::Relaxed),
            f.completing.load(Ordering::Relaxed)
        );
        if !stuck.is_empty() {
            let steps: Vec<String> = stuck.iter().map(|s| format!("{} at `{}`", s.requests, s.step)).collect();
            report.push_str("; by step: ");
            report.push_str(&steps.join(", "));
        }
        report
    });
    let recorder = shared.recorder.lock().clone();
    let stats = shared.strategy.stats();
    let mut run = StrategyRun {
        scenario: plan.name.clone(),
        strategy: name,
        mode: plan.mode,
        closed_loop: plan.load.model != LoadModel::Open,
        recorder,
        stats,
        herd: shared.refreshes.summary(),
        store: Default::default(),
        audit: Default::default(),
        served: shared.served.summary(),
        wall_time: Duration::ZERO,
        timer_lag: None,
        deadlock,
        stuck,
        predictions: Vec::new(),
        expectations: Vec::new(),
    };
    if plan.load.model == LoadModel::Burst && name == StrategyName::GlobalMutex {
        run.predictions.extend(fifo::predict(&run.recorder.service));
    }
    // Little's law holds for a system that drains; a hung one has nothing to predict.
    if plan.load.model == LoadModel::Open && run.deadlock.is_none() {
        let lat = run.latency();
        run.predictions.push(littles_law::predict(
            run.throughput_rps(),
            lat.mean,
            run.recorder.mean_in_flight(),
        ));
    }
    run
}

/// How many requests the run will issue: `requests`, or fewer when an open load's stages end first.
pub fn planned_requests(plan: &Plan) -> u64 {
    match plan.load.model {
        LoadModel::Open if plan.load.stages.iter().all(|(d, _, _)| *d != Duration::MAX) => {
            Arrivals::new(&plan.load, plan.seed).count() as u64
        }
        _ => plan.load.requests,
    }
}

/// One request, on the watchdog's step board if the strategy marks steps (spawned for open and
/// burst loads, awaited in place by a closed load's user).
///
/// The request's future is boxed: it holds the strategy's and the upstream's futures (hundreds of
/// bytes), and tokio copies a spawned future's whole size several times (into the task, and each
/// time the task's stage changes); one allocation costs less than those copies, and the future
/// spawned is then a few words.
fn tracked_request<M: CredentialManager, A: Api>(
    shared: &Arc<Shared<M, A>>,
    number: u64,
    arrival: Duration,
    user: u32,
    model: Arc<str>,
) -> Tracked<Pin<Box<impl Future<Output = ()> + Send + 'static>>> {
    let request = Box::pin(one_request(shared.clone(), number, arrival, user, model));
    shared.steps.track(M::MARKS_STEPS, request)
}

/// One request: acquire, call the upstream, complete, record. The clock is read once at each
/// boundary between phases, which serves as the end of one and the start of the next.
///
/// Only what a later phase needs is kept across each `.await` (the [`RequestRecord`] is filled
/// in at the end): whatever is live across an await is stored in the future, once per request in
/// flight, and a thousand requests in flight should fit in the cache.
async fn one_request<M: CredentialManager, A: Api>(
    shared: Arc<Shared<M, A>>,
    number: u64,
    arrival: Duration,
    user: u32,
    model: Arc<str>,
) {
    let f = &shared.in_flight;
    let actual_start = shared.clock.elapsed();
    shared.recorder.lock().started(arrival, user, actual_start);
    shared.pace.request_started_late(actual_start.saturating_sub(arrival));
    let request = Request::new(number, user, model);
    f.acquiring.fetch_add(1, Ordering::Relaxed);
    let moment = shared.served.moment();
    let acquired = shared.strategy.acquire(&request).await;
    f.acquiring.fetch_sub(1, Ordering::Relaxed);
    let acquired_at = shared.clock.elapsed();
    let (mut record, done) = match acquired {
        Ok(lease) => {
            let alone = [&f.acquiring, &f.upstream, &f.completing]
                .iter()
                .all(|n| n.load(Ordering::Relaxed) == 0);
            let now = shared.clock.now_ms();
            shared
                .served
                .acquired(lease.index, &lease.id, &request.model, moment, alone, now);
            if !(lease.timing.lock_wait + lease.timing.refresh_wait).is_zero() {
                shared.refreshes.held_up(arrival, acquired_at);
            }
            let account = Some(lease.index);
            f.upstream.fetch_add(1, Ordering::Relaxed);
            let outcome = shared.api.call(number, lease.index, &lease.token).await;
            shared
                .served
                .answered(lease.index, &request.model, &outcome, shared.clock.now_ms());
            let called_at = shared.clock.elapsed();
            f.upstream.fetch_sub(1, Ordering::Relaxed);
            let (timing, status) = (lease.timing, outcome.status());
            f.completing.fetch_add(1, Ordering::Relaxed);
            let completed = shared.strategy.complete(lease, &request, outcome).await.is_ok();
            let done = shared.clock.elapsed();
            f.completing.fetch_sub(1, Ordering::Relaxed);
            let c = &shared.clock;
            let record = RequestRecord {
                timing: AcquireTiming {
                    lock_wait: c.measured(timing.lock_wait),
                    hold: c.measured(timing.hold),
                    refresh_wait: c.measured(timing.refresh_wait),
                },
                upstream: called_at.saturating_sub(acquired_at),
                bookkeeping: done.saturating_sub(called_at),
                total: done.saturating_sub(arrival),
                status,
                ok: completed && (200..300).contains(&status),
                account,
                ..RequestRecord::default()
            };
            (record, done)
        }
        Err(AcquireError::Exhausted) | Err(AcquireError::Store(_)) => {
            let record = RequestRecord {
                exhausted: true,
                status: 503,
                total: acquired_at.saturating_sub(arrival),
                ..RequestRecord::default()
            };
            (record, acquired_at)
        }
    };
    record.number = number;
    record.user = user;
    record.arrival = arrival;
    record.acquired_at = acquired_at;
    shared.recorder.lock().finished(&record, done);
    if let Some(p) = &shared.progress {
        p();
    }
    if f.done.fetch_add(1, Ordering::AcqRel) + 1 == shared.total {
        shared.all_done.notify_one();
    }
}

/// Checks a run against the plan's expectations for its strategy.
pub fn check_expectations(plan: &Plan, run: &StrategyRun) -> Vec<ExpectationResult> {
    plan.expectations
        .iter()
        .filter(|e| e.strategy.covers(run.strategy) && e.mode.is_none_or(|m| m == run.mode))
        .map(|e| e.result(run.metric(&e.metric)))
        .collect()
}
