//! What `credpool serve` costs over HTTP, against the least an HTTP service can do on the same
//! machine, measured side by side in one run (README: ratios, never absolute figures, on 2
//! shared cores).
//!
//! - `serve/lease_complete` vs `serve/bare_axum`: 64 client tasks over one reqwest client (up to
//!   64 connections) make request pairs: through serve a lease and its completion (the default
//!   `lock_free` strategy, the `group_commit` store on a real file under `target/bench-tmp/`,
//!   every completion persisted), against two POSTs to a bare axum handler that answers a fixed
//!   JSON body of the lease's size. Throughput in requests.
//! - `serve/proxy` vs `serve/direct`: a generateContent call through serve's reverse proxy to a
//!   local upstream that answers fixed JSON, against the same call made to that upstream
//!   directly.
//!
//! The servers run on a runtime of their own (two workers), the clients on criterion's; both on
//! the same two cores. After criterion's timings, `latency` runs each pair of cases alternately
//! (three rounds, 64 tasks × 200 operations) and prints p50 and p99 per operation and the
//! throughput ratios, which the targets are stated in (serve ≥ 50% of the bare handler's
//! requests per second with p99 ≤ 2×; the proxy ≥ 40% of direct), then a lease alone against
//! one bare request (serve's path without the durable write of a completion) and the store's
//! tally (updates per durable write). `CREDPOOL_SERVE_COUNT=proxy:N` (or `direct:N`) runs N
//! operations of one case and nothing else, for callgrind.

use credpool::model::{Account, AccountsFile};
use credpool::serve::config::{self, Settings};
use credpool::serve::service::Service;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator `credpool` itself runs with (src/main.rs), so serve is measured as it ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONNECTIONS: usize = 64;
const ACCOUNTS: usize = 4;

/// The servers of one run: serve (with the upstream as its API), the bare handler, the upstream.
struct Servers {
    _runtime: tokio::runtime::Runtime,
    /// For the store's tally (updates per durable write) after the run.
    svc: Arc<Service>,
    _dir: tempfile::TempDir,
    serve: String,
    bare: String,
    upstream: String,
}

fn fixed_lease_body() -> serde_json::Value {
    serde_json::json!({
        "lease": "0123456789abcdef0123456789abcdef",
        "account": "account0@example.com",
        "access_token": "sim-access-0-0",
        "expires_at": "2026-12-02T06:13:06.628000+00:00",
    })
}

fn scratch_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let root = target.join("bench-tmp");
    std::fs::create_dir_all(&root).expect("cannot create target/bench-tmp");
    root
}

async fn listen(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn start() -> Servers {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir_in(scratch_root()).unwrap();
    let path = dir.path().join("accounts.toml");
    let now = chrono::Utc::now().timestamp_millis();
    let accounts = (0..ACCOUNTS).map(|i| Account::synthetic(i, now, 3600)).collect();
    std::fs::write(&path, AccountsFile::from_accounts(accounts).to_toml_string()).unwrap();
    let (svc, serve, bare, upstream) = runtime.block_on(async {
        let fixed = fixed_lease_body();
        let bare = listen(axum::Router::new().route(
            "/bare",
            axum::routing::post(move || {
                let fixed = fixed.clone();
                async move { axum::Json(fixed) }
            }),
        ))
        .await;
        let upstream = listen(axum::Router::new().fallback(|| async {
            axum::Json(serde_json::json!({"candidates": [{"content": {"parts": [{"text": "ok"}]}}]}))
        }))
        .await;
        let flags = Settings {
            accounts: Some(path.clone()),
            listen: Some(toml::Spanned::new(0..0, "127.0.0.1:0".into())),
            token_url: Some(toml::Spanned::new(0..0, "http://127.0.0.1:9/token".into())),
            api_url: Some(toml::Spanned::new(0..0, upstream.clone())),
            client_id: Some("bench".into()),
            client_secret: Some("bench".into()),
            ..Settings::default()
        };
        let svc = Arc::new(Service::build(config::resolve(flags, None).unwrap()).unwrap());
        let serve = listen(credpool::serve::router(svc.clone())).await;
        (svc, serve, bare, upstream)
    });
    Servers {
        _runtime: runtime,
        svc,
        _dir: dir,
        serve,
        bare,
        upstream,
    }
}

/// One operation of each case.
#[derive(Clone, Copy, Debug)]
enum Case {
    LeaseComplete,
    Bare,
    /// A lease alone (never completed: the table holds them, well under `max_leases`), against
    /// one bare request: serve's HTTP and strategy path without the durable write.
    LeaseOnly,
    BareOnce,
    Proxy,
    Direct,
}

impl Case {
    /// HTTP requests one operation makes (client to first server).
    fn requests(self) -> u64 {
        match self {
            Case::LeaseComplete | Case::Bare => 2,
            Case::LeaseOnly | Case::BareOnce | Case::Proxy | Case::Direct => 1,
        }
    }

    async fn once(self, c: &reqwest::Client, s: &Servers) {
        match self {
            Case::LeaseComplete => {
                let r = c
                    .post(format!("{}/v1/lease", s.serve))
                    .json(&serde_json::json!({"model": "gemini-2.5-pro", "user": "u"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let b: serde_json::Value = r.json().await.unwrap();
                let id = b["lease"].as_str().unwrap();
                let r = c
                    .post(format!("{}/v1/lease/{id}/complete", s.serve))
                    .json(&serde_json::json!({"status": 200}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 204);
            }
            Case::LeaseOnly => {
                let r = c
                    .post(format!("{}/v1/lease", s.serve))
                    .json(&serde_json::json!({"model": "gemini-2.5-pro", "user": "u"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let _: serde_json::Value = r.json().await.unwrap();
            }
            Case::Bare | Case::BareOnce => {
                for _ in 0..self.requests() {
                    let r = c
                        .post(format!("{}/bare", s.bare))
                        .json(&serde_json::json!({"model": "gemini-2.5-pro", "user": "u"}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    let _: serde_json::Value = r.json().await.unwrap();
                }
            }
            Case::Proxy | Case::Direct => {
                let base = if matches!(self, Case::Proxy) {
                    &s.serve
                } else {
                    &s.upstream
                };
                let r = c
                    .post(format!("{base}/v1beta/models/gemini-2.5-pro:generateContent"))
                    .json(&serde_json::json!({"contents": [{"parts": [{"text": "hi"}]}]}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let _ = r.bytes().await.unwrap();
            }
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CONNECTIONS * 2)
        .build()
        .unwrap()
}

/// `ops` operations of `case` spread over `CONNECTIONS` tasks; per-operation latencies recorded
/// in microseconds when `hist` is given. Returns the wall time.
async fn run(
    case: Case,
    ops: u64,
    c: &reqwest::Client,
    s: &Arc<Servers>,
    hist: Option<&mut hdrhistogram::Histogram<u64>>,
) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS as u64)
        .map(|t| {
            let n = ops / CONNECTIONS as u64 + u64::from(t < ops % CONNECTIONS as u64);
            let (c, s) = (c.clone(), s.clone());
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let t0 = Instant::now();
                    case.once(&c, &s).await;
                    lat.push(t0.elapsed().as_micros() as u64);
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    if let Some(h) = hist {
        for us in all {
            h.record(us.max(1)).unwrap();
        }
    }
    elapsed
}

/// `CREDPOOL_SERVE_COUNT=CASE:N` (`CASE` one of `proxy`, `direct`): N operations of that case
/// and nothing else, for instruction counts under callgrind (docs/benchmarks.md#serve: two
/// counts at different N, their difference over the difference of N is the instructions per
/// request, the setup cancelled out).
fn counted_only() -> Option<(Case, u64)> {
    let spec = std::env::var("CREDPOOL_SERVE_COUNT").ok()?;
    let (case, n) = spec
        .split_once(':')
        .unwrap_or_else(|| panic!("CREDPOOL_SERVE_COUNT={spec:?}: expected CASE:N"));
    let case = match case {
        "proxy" => Case::Proxy,
        "direct" => Case::Direct,
        other => panic!("CREDPOOL_SERVE_COUNT: case {other:?}: expected proxy or direct"),
    };
    let n = n
        .parse()
        .unwrap_or_else(|_| panic!("CREDPOOL_SERVE_COUNT: {n:?}: expected a number of operations"));
    Some((case, n))
}

fn bench(c: &mut Criterion) {
    let servers = Arc::new(start());
    let http = client();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Some((case, n)) = counted_only() {
        let took = rt.block_on(run(case, n, &http, &servers, None));
        println!("{case:?}: {n} operations in {took:?} (counted only)");
        return;
    }
    let mut group = c.benchmark_group("serve");
    group.sample_size(10).measurement_time(Duration::from_secs(4));
    for (name, case) in [
        ("lease_complete", Case::LeaseComplete),
        ("bare_axum", Case::Bare),
        ("proxy", Case::Proxy),
        ("direct", Case::Direct),
    ] {
        group.throughput(Throughput::Elements(case.requests()));
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (http, servers) = (http.clone(), servers.clone());
                async move { run(case, iters, &http, &servers, None).await }
            })
        });
    }
    group.finish();
    latency(&rt, &http, &servers);
}

/// Alternated rounds of each comparison, with per-operation percentiles and throughput ratios.
fn latency(rt: &tokio::runtime::Runtime, http: &reqwest::Client, servers: &Arc<Servers>) {
    const OPS: u64 = CONNECTIONS as u64 * 200;
    for (ours, baseline, target) in [
        (Case::LeaseComplete, Case::Bare, 0.5),
        (Case::Proxy, Case::Direct, 0.4),
        // Not a target of the issue: where the rest of the time goes.
        (Case::LeaseOnly, Case::BareOnce, 0.5),
    ] {
        let mut h_ours = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        let mut h_base = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        let (mut t_ours, mut t_base) = (Duration::ZERO, Duration::ZERO);
        rt.block_on(async {
            for _ in 0..3 {
                t_base += run(baseline, OPS, http, servers, Some(&mut h_base)).await;
                t_ours += run(ours, OPS, http, servers, Some(&mut h_ours)).await;
            }
        });
        let rps = |t: Duration, case: Case| (3 * OPS * case.requests()) as f64 / t.as_secs_f64();
        let (r_ours, r_base) = (rps(t_ours, ours), rps(t_base, baseline));
        let ratio = r_ours / r_base;
        let p99_ratio = h_ours.value_at_quantile(0.99) as f64 / h_base.value_at_quantile(0.99) as f64;
        println!(
            "{ours:?} vs {baseline:?}: {r_ours:.0} vs {r_base:.0} req/s = {:.1}% (target >= {:.0}%: {}); \
             per operation p50 {} vs {} us, p99 {} vs {} us = {p99_ratio:.2}x",
            ratio * 100.0,
            target * 100.0,
            if ratio >= target { "met" } else { "NOT met" },
            h_ours.value_at_quantile(0.5),
            h_base.value_at_quantile(0.5),
            h_ours.value_at_quantile(0.99),
            h_base.value_at_quantile(0.99),
        );
    }
    let st = credpool::store::AccountStore::stats(&*servers.svc.store);
    println!(
        "store (group_commit): {} updates in {} durable writes ({:.1} updates per write, {} fsyncs)",
        st.updates,
        st.writes,
        st.updates as f64 / st.writes.max(1) as f64,
        st.fsyncs
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
