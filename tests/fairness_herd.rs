//! Fairness and herd figures on constructed runs whose answers are known by hand.

use credpool::metrics::StrategyRun;
use credpool::report::summary::ResultSummary;
use credpool::scenario::plan::{self, Plan};
use credpool::scenario::runner;
use credpool::strategy::StrategyName;
use std::path::Path;

fn scenario(text: &str) -> Plan {
    plan::parse(Path::new("t.toml"), text).unwrap()
}

fn shipped(name: &str) -> Plan {
    plan::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(name)).unwrap()
}

fn run(plan: &Plan, s: StrategyName) -> StrategyRun {
    runner::run(plan, s, None).unwrap()
}

/// A burst of `requests` through `credentials` accounts rotating every `k` calls.
fn burst(credentials: usize, k: usize, requests: usize, users: usize) -> Plan {
    scenario(&format!(
        r#"
name = "fair"
mode = "virtual"
strategies = ["global_mutex", "lock_free"]
[pool]
credentials = {credentials}
calls_per_rotation = {k}
record_outcomes = false
[load]
model = "burst"
requests = {requests}
users = {users}
[costs]
check_rotation = "1ms"
[upstream]
api_latency = "10ms"
"#
    ))
}

#[test]
fn k_of_n_accounts_served_equally_gives_jain_k_over_n() {
    // 120 requests over 6 credentials; rotation every k calls uses 120/k of them, equally.
    for (k, used) in [(20, 6), (40, 3), (60, 2), (120, 1)] {
        for s in [StrategyName::GlobalMutex, StrategyName::LockFree] {
            let f = ResultSummary::from_run(&run(&burst(6, k, 120, 1), s)).fairness.unwrap();
            let want = used as f64 / 6.0;
            assert!(
                (f.jain_accounts.unwrap() - want).abs() < 1e-12,
                "{s} k={k}: {:?}, want {want}",
                f.jain_accounts
            );
            assert_eq!(f.accounts, 6);
        }
    }
}

#[test]
fn users_served_in_turn_by_one_lock_get_equal_goodput_and_none_starves() {
    // global_mutex serves a burst one request after another (1 ms each: the rotation check; the
    // upstream call is outside the lock). 3000 requests from 30 drawn users: goodputs about 100
    // each (drawn, so not exactly equal), and each user's requests are spread over the whole
    // 3 s burst, so it gets an answer every ~30 ms: nobody starves (the window is ten medians,
    // about 15 s here), and nobody even waits 1 s without an answer.
    let plan = burst(2, 100, 3000, 30);
    let f = ResultSummary::from_run(&run(&plan, StrategyName::GlobalMutex))
        .fairness
        .unwrap();
    assert_eq!(f.users, 30);
    assert!(f.jain_users.unwrap() > 0.95, "{:?}", f.jain_users);
    assert_eq!(f.starved_users, 0, "{f:?}");
    assert!(f.longest_success_gap_ms < 1000.0, "{f:?}");
    // Every user's p99 is near the end of the burst: the worst over the median is close to 1.
    let r = f.worst_to_median_p99.unwrap();
    assert!((1.0..1.1).contains(&r), "{r}");
}

#[test]
fn starved_users_are_those_whose_wait_for_a_success_exceeds_ten_medians() {
    // A burst of 300 requests from 100 users through lock_free with no modelled costs: each
    // request takes its upstream draw (median 10 ms, p99 3 s). The run's window is then 1 s
    // (ten medians is less). The oracle, from the timeline (every request, all successful):
    // a user's requests all start at 0, so its gaps are the times between its consecutive
    // completions, the first from 0; it is starved when one exceeds the window.
    let plan = scenario(
        r#"
name = "starve"
mode = "virtual"
seed = 5
strategies = ["lock_free"]
[pool]
credentials = 2
record_outcomes = false
[load]
model = "burst"
requests = 300
users = 100
[upstream]
api_latency = { dist = "lognormal", median = "10ms", p99 = "3s" }
"#,
    );
    let r = ResultSummary::from_run(&run(&plan, StrategyName::LockFree));
    let f = r.fairness.clone().unwrap();
    assert_eq!(f.starvation_window_ms, 1000.0);
    assert!(!r.timeline_sampled && r.timeline.iter().all(|p| p.ok));
    let mut done: std::collections::BTreeMap<u32, Vec<f64>> = Default::default();
    for p in &r.timeline {
        let user = credpool::scenario::arrivals::user_of(&plan.load, plan.seed, p.number);
        done.entry(user).or_default().push(p.latency_ms);
    }
    for t in done.values_mut() {
        t.sort_by(f64::total_cmp);
    }
    let starved = done
        .values()
        .filter(|t| {
            let mut last = 0.0;
            t.iter().any(|&c| {
                let gap = c - last;
                last = c;
                gap > 1000.0
            })
        })
        .count() as u64;
    assert!(
        starved > 0,
        "the tail must starve someone for this test to mean anything"
    );
    assert_eq!(f.starved_users, starved, "{f:?}");
    assert_eq!(f.users, done.len() as u64);
}

#[test]
fn seed_2_herds_are_the_ones_derived_by_hand() {
    // Seed case 2: 100 requests at t = 0, credential 0 expired, rotation every 100 calls, so all
    // 100 need credential 0. global_mutex: the first request refreshes (30..530 ms) holding the
    // lock, the 99 others wait for the lock until after it: 100 requests wait on one refresh.
    // lock_free: every request spends its 30 ms of selection outside any lock, finds the token
    // inside the margin and joins the one flight (30..530 ms): 100 again. One refresh each, one
    // expiry, nothing wasted, never two refreshes of one credential at once.
    let plan = shipped("seed-2-first-token-expired.toml");
    for s in [StrategyName::GlobalMutex, StrategyName::LockFree] {
        let h = ResultSummary::from_run(&run(&plan, s)).herd.unwrap();
        assert_eq!(h.refreshes, 1, "{s}");
        assert_eq!(h.max_waiters, 100, "{s}: {h:?}");
        assert_eq!(h.max_overlapping, 1, "{s}");
        assert_eq!(h.expiries, 1, "{s}");
        assert_eq!(h.refreshes_per_expiry, Some(1.0), "{s}");
        assert_eq!(h.wasted, 0, "{s}");
        assert_eq!(h.attribution_dropped, 0, "{s}");
    }
    // Refresh ahead of expiry: lock_free refreshes in the background; nobody waits.
    let ahead = shipped("seed-2-refresh-ahead.toml");
    let h = ResultSummary::from_run(&run(&ahead, StrategyName::LockFree))
        .herd
        .unwrap();
    assert_eq!((h.refreshes, h.max_waiters), (1, 0), "{h:?}");
}

#[test]
fn one_expiring_token_awaited_by_n_requests_gives_a_herd_of_n() {
    for n in [1usize, 7, 37] {
        let plan = scenario(&format!(
            r#"
name = "herd"
mode = "virtual"
strategies = ["lock_free"]
[pool]
credentials = 1
expired = [0]
record_outcomes = false
[load]
model = "burst"
requests = {n}
[upstream]
refresh_latency = "400ms"
"#
        ));
        let h = ResultSummary::from_run(&run(&plan, StrategyName::LockFree))
            .herd
            .unwrap();
        assert_eq!((h.refreshes, h.max_waiters), (1, n as u64), "n={n}: {h:?}");
    }
}

#[test]
fn the_self_audit_reports_no_virtual_divergence_and_no_dropped_samples() {
    let plan = shipped("open-load-20rps.toml");
    let a = ResultSummary::from_run(&run(&plan, StrategyName::LockFree))
        .self_audit
        .unwrap();
    assert_eq!(a.start_lag_kind, "virtual_clock_divergence");
    assert!(a.start_lag_ms.count > 0);
    // Virtual time: requests start on their intended instant to within tokio's timer tick (1 ms
    // of tokio time) over the clock's scale, i.e. within 1 µs of modelled time.
    let tick_ms = 1.0 / credpool::clock::VIRTUAL_TIME_SCALE as f64;
    assert!(a.start_lag_ms.max <= tick_ms, "{a:?}");
    assert_eq!(a.dropped.total, 0);
    // The clock waits for every task: no scheduler lag to probe, no saturation to judge.
    assert!(a.timer_lag_ms.is_none() && a.saturation.is_none(), "{a:?}");
}
