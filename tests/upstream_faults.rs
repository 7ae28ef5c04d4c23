//! Faults from the upstream, for every strategy: the token endpoint timing out, answering 5xx or
//! `invalid_grant`; the API answering 429 storms, 401s and slow bodies. Every strategy must keep
//! serving with the healthy credentials, disable each dead one once (and persist it), never
//! deadlock (the watchdog would say so), and report the faults it saw.
//!
//! The tests iterate over `StrategyName::DESIGNS`, so they cover every credpool design (the
//! `as_shipped` replica deadlocks on a failed refresh by design; tests/as_shipped.rs covers it).
//! Virtual time throughout (a 30 s timeout costs nothing), plus one case over real HTTP on
//! 127.0.0.1.

use credpool::metrics::StrategyRun;
use credpool::scenario::plan::{self, Plan};
use credpool::scenario::runner;
use credpool::strategy::StrategyName;
use std::path::Path;

/// 4 credentials, 400 requests arriving at 50/s from 4 users, bookkeeping persisted through the
/// group-commit store; `pool` and `upstream` add the fault.
fn scenario(pool: &str, upstream: &str) -> Plan {
    let text = format!(
        r#"
name = "faults"
seed = 7
watchdog = "10m"
[pool]
credentials = 4
calls_per_rotation = 5
store = "group_commit"
{pool}
[load]
model = "open"
rate = 50
requests = 400
users = 4
models = ["gemini-3-pro-preview", "claude-sonnet-4-5"]
[upstream]
api_latency = "200ms"
refresh_latency = "100ms"
{upstream}
"#
    );
    plan::parse(Path::new("faults.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `plan` with every strategy; checks what every fault case must hold.
fn every_strategy(plan: &Plan) -> Vec<StrategyRun> {
    StrategyName::DESIGNS
        .iter()
        .map(|&s| {
            let run = runner::run(plan, s, None).unwrap();
            assert_eq!(run.deadlock, None, "{s}");
            assert_eq!(run.recorder.requests, 400, "{s}: every request finished");
            assert_eq!(run.audit.lost_updates, 0, "{s}: {:?}", run.audit);
            assert_eq!(run.audit.resurrected, 0, "{s}: a disable was lost: {:?}", run.audit);
            assert!(run.audit.file_readable, "{s}");
            assert_eq!(run.stats.store_errors, 0, "{s}");
            run
        })
        .collect()
}

/// The dead credentials are disabled once each, on disk too; every request is still served.
fn disabled_once_and_still_serving(run: &StrategyRun, dead: u64) {
    let s = run.strategy;
    assert_eq!(run.stats.disables, dead, "{s}: {:?}", run.stats);
    assert_eq!(run.audit.disabled_on_disk, dead, "{s}: {:?}", run.audit);
    assert_eq!(run.recorder.exhausted, 0, "{s}: a healthy credential was always there");
    assert_eq!(run.recorder.errors, 0, "{s}: no request failed");
}

#[test]
fn token_endpoint_timing_out_disables_that_credential_once() {
    let plan = scenario("expired = [1]\nhanging_refresh = [1]", "refresh_timeout = \"30s\"");
    for run in every_strategy(&plan) {
        disabled_once_and_still_serving(&run, 1);
        let st = run.stats;
        assert_eq!(
            (st.refreshes, st.refresh_failures, st.refresh_timeouts),
            (1, 1, 1),
            "{}: {st:?}",
            run.strategy
        );
    }
}

#[test]
fn token_endpoint_answering_5xx_disables_those_credentials_once() {
    let plan = scenario("expired = [1, 2]\nerroring_refresh = [1, 2]", "");
    for run in every_strategy(&plan) {
        disabled_once_and_still_serving(&run, 2);
        let st = run.stats;
        assert_eq!(
            (st.refreshes, st.refresh_failures, st.refresh_server_errors),
            (2, 2, 2),
            "{}: {st:?}",
            run.strategy
        );
    }
}

#[test]
fn token_endpoint_answering_invalid_grant_disables_that_credential_once() {
    let plan = scenario("expired = [3]\nfailing_refresh = [3]", "");
    for run in every_strategy(&plan) {
        disabled_once_and_still_serving(&run, 1);
        let st = run.stats;
        assert_eq!(
            (st.refreshes, st.refresh_failures, st.refresh_invalid_grants),
            (1, 1, 1),
            "{}: {st:?}",
            run.strategy
        );
    }
}

/// The token endpoint answers 503 to every refresh from 1 s to 4 s.
const OUTAGE: &str = "[[upstream.faults]]\nfrom = \"1s\"\nuntil = \"4s\"\nrefresh_5xx_rate = 1.0";

#[test]
fn a_token_endpoint_outage_disables_every_credential_it_touches() {
    // The proxy's policy, replayed: any failed refresh disables the account for good. Every token
    // reaches the margin 2 s in, inside the outage, and nobody refreshes ahead: each credential is
    // disabled by its one failed refresh, and the pool is gone although the outage lasted 3 s.
    // This is policy, not synchronisation, so every strategy does it.
    let plan = scenario("expire_all_at = \"2s\"\nrefresh_ahead = \"0s\"", OUTAGE);
    for run in every_strategy(&plan) {
        let st = run.stats;
        assert_eq!(
            (st.refresh_server_errors, st.disables),
            (4, 4),
            "{}: {st:?}",
            run.strategy
        );
        assert_eq!(run.audit.disabled_on_disk, 4);
        assert!(run.recorder.exhausted > 0, "{}: the pool ran dry", run.strategy);
    }
}

#[test]
fn refreshing_ahead_of_expiry_dodges_the_outage() {
    // With the default refresh-ahead window (5 minutes before the margin), `lock_free` refreshes
    // every token at the start, before the outage, so nothing fails and the pool survives; the
    // strategies that refresh at the margin meet the outage and lose every credential.
    let plan = scenario("expire_all_at = \"2s\"", OUTAGE);
    for run in every_strategy(&plan) {
        let (s, st) = (run.strategy, run.stats);
        // `fleet` refreshes ahead in the background as `lock_free` does (docs/fleet.md).
        if matches!(s, StrategyName::LockFree | StrategyName::Fleet) {
            assert_eq!(
                (st.refreshes, st.refresh_failures, st.disables),
                (4, 0, 0),
                "{s}: {st:?}"
            );
            assert_eq!(run.recorder.exhausted, 0, "{s}");
        } else {
            assert_eq!((st.refresh_server_errors, st.disables), (4, 4), "{s}: {st:?}");
        }
    }
}

#[test]
fn with_a_refresh_backoff_the_outage_bans_for_a_while_and_the_pool_comes_back() {
    // The policy option the proxy lacks: a 503 bans the credential for 1 s, then 2 s, ... and its
    // refresh is tried again; credential 3's revoked refresh token (`invalid_grant`) still
    // disables it for good. Failures at ~2.1 s (inside the outage), again at ~3.1 s, then a 2 s
    // ban: by ~5.3 s every other credential has a new token.
    let plan = scenario(
        "expire_all_at = \"2s\"\nrefresh_ahead = \"0s\"\nfailing_refresh = [3]\nrefresh_backoff = \"1s\"",
        OUTAGE,
    );
    for run in every_strategy(&plan) {
        let (s, st) = (run.strategy, run.stats);
        assert_eq!((st.refresh_invalid_grants, st.disables), (1, 1), "{s}: {st:?}");
        assert_eq!(run.audit.disabled_on_disk, 1, "{s}");
        assert!(st.refresh_server_errors >= 3, "{s}: the outage was met: {st:?}");
        assert!(
            st.refreshes >= st.refresh_failures + 3,
            "{s}: three credentials refreshed: {st:?}"
        );
        let late: Vec<_> = run
            .recorder
            .timeline
            .iter()
            .filter(|p| p.arrival_ms > 6_000.0)
            .collect();
        assert!(late.len() > 50, "{s}: {}", late.len());
        assert!(
            late.iter().all(|p| p.ok),
            "{s}: a request after the outage and its bans failed"
        );
    }
}

#[test]
fn refresh_backoff_keys_are_checked() {
    // Each error names the key's line (the pool's keys start on line 4).
    let bad = |pool: &str, want: &str, line: u32| {
        let text = format!("name = \"x\"\n[pool]\ncredentials = 1\n{pool}\n[load]\nmodel = \"burst\"\nrequests = 1\n");
        let e = plan::parse(Path::new("x.toml"), &text).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains(&format!("x.toml:{line}:")), "{e}");
    };
    bad("refresh_backoff = \"0s\"", "at least 1ms", 4);
    bad("refresh_backoff_max = \"1m\"", "without `pool.refresh_backoff`", 4);
    bad(
        "refresh_backoff = \"2s\"\nrefresh_backoff_max = \"1s\"",
        "shorter than",
        5,
    );
    let ok = plan::parse(
        Path::new("x.toml"),
        "name = \"x\"\n[pool]\ncredentials = 1\nrefresh_backoff = \"2s\"\n[load]\nmodel = \"burst\"\nrequests = 1\n",
    )
    .unwrap();
    let b = ok.policy.refresh_backoff.unwrap();
    assert_eq!((b.first_ms, b.max_ms), (2_000, 600_000));
}

#[test]
fn a_429_storm_bans_and_serving_resumes_when_the_bans_expire() {
    // Half of all answers are 429 from 1 s to 3 s; each says "retry in 1 s", so a ban lasts 2 s.
    let plan = scenario(
        "",
        "retry_delay = \"1s\"\n[[upstream.faults]]\nfrom = \"1s\"\nuntil = \"3s\"\nstatus_429_rate = 0.5",
    );
    for run in every_strategy(&plan) {
        let s = run.strategy;
        // How many requests meet the storm depends on the strategy (`queue_pool` admits one
        // request per credential at a time), but every strategy meets it.
        assert!(run.recorder.status_429 > 0, "{s}: the storm happened");
        assert_eq!(run.stats.disables, 0, "{s}: a 429 bans a series, it never disables");
        // After the storm and its bans (3 s + 2 s, plus the slowest request), every request works.
        let late: Vec<_> = run
            .recorder
            .timeline
            .iter()
            .filter(|p| p.arrival_ms > 5_500.0)
            .collect();
        assert!(late.len() > 50, "{s}: {}", late.len());
        assert!(late.iter().all(|p| p.ok), "{s}: a request after the storm failed");
    }
}

#[test]
fn a_revoked_token_answering_401_is_disabled_once_by_auto_ban() {
    // Credential 2's access token was revoked: the API answers 401 to it. With 401 as an auto-ban
    // code, the first 401 disables it; requests already in flight on it also get 401s, which must
    // not disable it again, and the rest are served by the other three.
    let plan = scenario("revoked = [2]\nauto_ban_codes = [401]", "");
    for run in every_strategy(&plan) {
        let s = run.strategy;
        assert_eq!(run.stats.disables, 1, "{s}: disabled once: {:?}", run.stats);
        assert_eq!(run.audit.disabled_on_disk, 1, "{s}");
        assert!(run.recorder.errors >= 1, "{s}: the 401s are reported as errors");
        assert!(
            run.recorder.errors < 20,
            "{s}: only requests on the revoked credential failed"
        );
        assert_eq!(run.recorder.exhausted, 0, "{s}");
    }
}

#[test]
fn slow_bodies_slow_requests_down_without_a_deadlock() {
    // From 1 s to 3 s every API answer takes 5 s more.
    let plan = scenario(
        "",
        "[[upstream.faults]]\nfrom = \"1s\"\nuntil = \"3s\"\nextra_latency = \"5s\"",
    );
    for run in every_strategy(&plan) {
        let s = run.strategy;
        let upstream = run.phase(credpool::metrics::Phase::Upstream);
        assert!(upstream.max >= 5_200.0, "{s}: {upstream:?}");
        assert!(upstream.min < 300.0, "{s}: {upstream:?}");
        assert_eq!(run.recorder.errors, 0, "{s}");
        assert_eq!(run.stats.disables, 0, "{s}");
    }
}

#[test]
fn real_mode_over_http_token_endpoint_5xx_timeout_and_invalid_grant() {
    // The same faults through wiremock on 127.0.0.1 and a real HTTP client, on the wall clock:
    // credential 1's refresh is answered 503, credential 2's never in time (a 300 ms client
    // timeout), credential 3's invalid_grant.
    let text = r#"
name = "faults-real"
seed = 7
mode = "real"
watchdog = "60s"
[pool]
credentials = 4
calls_per_rotation = 2
store = "durable"
expired = [1, 2, 3]
erroring_refresh = [1]
hanging_refresh = [2]
failing_refresh = [3]
[load]
model = "open"
rate = 100
requests = 40
users = 2
[upstream]
api_latency = "5ms"
refresh_latency = "10ms"
refresh_timeout = "300ms"
"#;
    let plan = plan::parse(Path::new("faults-real.toml"), text).unwrap();
    for &s in StrategyName::DESIGNS {
        let run = runner::run(&plan, s, None).unwrap();
        assert_eq!(run.deadlock, None, "{s}");
        let st = run.stats;
        assert_eq!(
            (
                st.refresh_server_errors,
                st.refresh_timeouts,
                st.refresh_invalid_grants,
                st.disables
            ),
            (1, 1, 1, 3),
            "{s}: {st:?}"
        );
        assert_eq!(run.audit.disabled_on_disk, 3, "{s}");
        assert_eq!(run.recorder.requests, 40);
        assert_eq!(run.recorder.exhausted, 0, "{s}: credential 0 served everything");
        assert_eq!(run.recorder.errors, 0, "{s}");
    }
}

/// `queue_pool` under every fault above, with some requests cancelled mid-call: no permit leaks.
/// At the end every permit is idle or has left with its disabled credential
/// (`idle + removed == total`, nothing checked out, nobody waiting), and the permits removed are
/// exactly those of the disabled credentials.
#[test]
fn queue_pool_never_leaks_a_permit_under_faults() {
    use credpool::clock::Clock;
    use credpool::model::AccountsFile;
    use credpool::store::backend::MemoryBackend;
    use credpool::strategy::{AnyStrategy, CredentialManager, Env, Request};
    use credpool::upstream::simulated::SimulatedUpstream;
    use credpool::upstream::{Api, TokenEndpoint};
    use std::sync::Arc;
    use std::time::Duration;

    let cases = [
        ("expired = [1]\nhanging_refresh = [1]\npermits_per_credential = 2", "refresh_timeout = \"30s\""),
        ("expired = [1, 2]\nerroring_refresh = [1, 2]\npermits_per_credential = 2", ""),
        ("expired = [3]\nfailing_refresh = [3]\npermits_per_credential = 2", ""),
        ("revoked = [2]\nauto_ban_codes = [401]\npermits_per_credential = 3", ""),
        (
            "permits_per_credential = 2",
            "retry_delay = \"1s\"\n[[upstream.faults]]\nfrom = \"0s\"\nuntil = \"2s\"\nstatus_429_rate = 0.5\nextra_latency = \"1s\"",
        ),
    ];
    for (pool, upstream) in cases {
        let plan = scenario(pool, upstream);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let clock = Clock::starting_at(credpool::scenario::plan::VIRTUAL_EPOCH_MS);
            let accounts = plan.initial_accounts(clock.now_ms());
            let backend = Arc::new(MemoryBackend::new(Some(
                AccountsFile::from_accounts(accounts.clone()).to_toml_string(),
            )));
            let upstream = Arc::new(SimulatedUpstream::new(plan.upstream.clone(), clock));
            let env = Env {
                policy: plan.policy.clone(),
                accounts,
                costs: plan.costs.clone(),
                clock,
                store: credpool::store::open(plan.store, backend, plan.costs),
                tokens: upstream.clone() as Arc<dyn TokenEndpoint>,
                options: plan.options.clone(),
            };
            let strategy = Arc::new(StrategyName::QueuePool.build(env));
            let mut tasks = Vec::new();
            for n in 0..200u64 {
                let (s, api) = (strategy.clone(), upstream.clone());
                tasks.push(tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(n * 20)).await;
                    let request = Request::new(n, (n % 4) as u32, "gemini-3-pro-preview");
                    let work = async {
                        if let Ok(lease) = s.acquire(&request).await {
                            let outcome = api.call(n, lease.index, &lease.token).await;
                            let _ = s.complete(lease, &request, outcome).await;
                        }
                    };
                    // Every fifth request gives up after 150 ms: waiting for a permit, waiting
                    // for a refresh, or in the upstream call with its lease in hand.
                    if n % 5 == 0 {
                        let _ = tokio::time::timeout(Duration::from_millis(150), work).await;
                    } else {
                        work.await;
                    }
                }));
            }
            for t in tasks {
                tokio::time::timeout(Duration::from_secs(600), t)
                    .await
                    .expect("a queue_pool request hung")
                    .unwrap();
            }
            let AnyStrategy::QueuePool(q) = &*strategy else {
                unreachable!("built as queue_pool")
            };
            let n = q.counts();
            let permits = plan.options.permits_per_credential;
            let disabled = strategy.accounts().await.iter().filter(|a| a.disabled).count();
            assert!(n.conserved(), "{pool}: {n:?}");
            assert_eq!(
                (n.checked_out, q.core().waiting()),
                (0, 0),
                "{pool}: a permit leaked: {n:?}"
            );
            assert_eq!(n.removed, disabled * permits, "{pool}: {n:?}, {disabled} disabled");
            assert_eq!(n.idle + n.removed, n.total, "{pool}: {n:?}");
            assert_eq!(strategy.stats().disables, disabled as u64, "{pool}");
        });
    }
}
