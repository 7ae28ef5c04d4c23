//! `credpool serve` end to end: the real binary on a free 127.0.0.1 port, a local token endpoint,
//! real files. Load through every strategy and both durable stores with the accounts file audited
//! after shutdown; bans and 503s; refreshes under load; SIGTERM and SIGKILL mid-load; bad input;
//! lease reclamation; live disables. (Tokens in outputs: tests/secrets.rs.)

#[path = "common/serve.rs"]
mod serve_common;

use serve_common::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Concurrent clients in every load test.
const CLIENTS: usize = 64;
/// Lease/complete pairs per client (512 per strategy and store: enough to overlap on every lock,
/// few enough that `durable`'s one fsynced write per completion keeps the file fast);
/// `CREDPOOL_LONG=1`: 300 (19,200 per strategy and store).
fn pairs() -> usize {
    if long() {
        300
    } else {
        8
    }
}

fn long() -> bool {
    std::env::var("CREDPOOL_LONG").as_deref() == Ok("1")
}

/// How long one request of the load may take. What the load tests check is correctness (0
/// errors, every acknowledged outcome in the file), not latency: with `durable`, 64 completions
/// queue one fsync each, and on a disk that builds beside the test also fsync, the last of them
/// has waited well over 30 s in the long run. So the long run allows 5 minutes; the short one
/// (512 pairs) keeps the common 30 s.
fn request_timeout() -> Duration {
    if long() {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(30)
    }
}

/// What a load run did: acknowledged completions per account, and every error seen.
#[derive(Default)]
struct Tally {
    acked: Mutex<HashMap<String, i64>>,
    errors: Mutex<Vec<String>>,
    completes_sent: AtomicU64,
}

/// `CLIENTS` clients each doing `pairs` lease/complete pairs (one completion in seven a 500),
/// stopping early (without error) once serve says it is shutting down when `stop_on_503`.
async fn drive(base: &str, pairs: usize, stop_on_503: bool) -> Arc<Tally> {
    drive_into(Arc::new(Tally::default()), base, pairs, stop_on_503).await
}

/// [`drive`], counting into a tally the caller can watch while the load runs.
async fn drive_into(tally: Arc<Tally>, base: &str, pairs: usize, stop_on_503: bool) -> Arc<Tally> {
    let c = client_within(request_timeout());
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|u| {
            let (c, base, tally) = (c.clone(), base.to_string(), tally.clone());
            tokio::spawn(async move {
                for j in 0..pairs {
                    let sent = c
                        .post(format!("{base}/v1/lease"))
                        .json(&serde_json::json!({"model": MODEL, "user": format!("user{u}")}))
                        .send()
                        .await;
                    let resp = match sent {
                        Ok(r) => r,
                        Err(_) if stop_on_503 => return,
                        Err(e) => {
                            tally.errors.lock().unwrap().push(format!("lease: {e}"));
                            return;
                        }
                    };
                    let status = resp.status().as_u16();
                    let body: serde_json::Value = resp.json().await.unwrap_or_default();
                    if status == 503 && stop_on_503 {
                        return;
                    }
                    if status != 200 {
                        tally.errors.lock().unwrap().push(format!("lease: {status} {body}"));
                        continue;
                    }
                    let id = body["lease"].as_str().unwrap().to_string();
                    let account = body["account"].as_str().unwrap().to_string();
                    let code = if j % 7 == 3 { 500 } else { 200 };
                    tally.completes_sent.fetch_add(1, Ordering::SeqCst);
                    let sent = c
                        .post(format!("{base}/v1/lease/{id}/complete"))
                        .json(&serde_json::json!({"status": code}))
                        .send()
                        .await;
                    let (s, text) = match sent {
                        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                        // Killed under our feet: this completion was not acknowledged.
                        Err(_) if stop_on_503 => return,
                        Err(e) => (0, e.to_string()),
                    };
                    if s == 204 {
                        *tally.acked.lock().unwrap().entry(account).or_insert(0) += 1;
                    } else {
                        tally.errors.lock().unwrap().push(format!("complete: {s} {text}"));
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    tally
}

fn acked(t: &Tally) -> HashMap<String, i64> {
    t.acked.lock().unwrap().clone()
}

/// Load through `strategy` on `store`: 0 errors; after SIGTERM (exit 0) the file holds every
/// acknowledged completion, exactly, its unknown fields as they were, mode 0600.
async fn load_and_audit(strategy: &str, store: &str) {
    let dir = tempfile::tempdir().unwrap();
    let accounts = write_file(dir.path(), "accounts.toml", &accounts_toml(4, false), 0o600);
    let token = TokenServer::start(Duration::ZERO).await;
    let mut args = base_args(&accounts, &token.url);
    args.extend(["--strategy", strategy, "--store", store].map(String::from));
    let serve = Serve::start(&args, dir.path().join("serve.log"));
    let tally = drive(&serve.base, pairs(), false).await;
    let errors = tally.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{strategy}/{store}: {} errors, first: {:?}",
        errors.len(),
        &errors[..errors.len().min(3)]
    );
    let code = serve.terminate(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{strategy}/{store}: exit code");
    let acked = acked(&tally);
    assert_eq!(acked.values().sum::<i64>(), (CLIENTS * pairs()) as i64);
    let (calls, unknown) = audit(&accounts);
    for (account, n) in &acked {
        assert_eq!(
            calls.get(account),
            Some(n),
            "{strategy}/{store}: {account}'s total_calls vs completions acknowledged"
        );
    }
    assert_eq!(
        calls.values().sum::<i64>(),
        (CLIENTS * pairs()) as i64,
        "{strategy}/{store}: no completion counted twice"
    );
    assert_eq!(unknown, unknown_fields(4), "{strategy}/{store}: unknown fields kept");
    assert_eq!(mode(&accounts), 0o600);
    assert_eq!(token.total(), 0, "valid tokens are not refreshed");
}

macro_rules! load_tests {
    ($($name:ident: $strategy:literal,)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            load_and_audit($strategy, "group_commit").await;
            load_and_audit($strategy, "durable").await;
        }
    )*};
}

load_tests! {
    load_global_mutex: "global_mutex",
    load_rwlock: "rwlock",
    load_queue_pool: "queue_pool",
    load_sharded: "sharded",
    load_lock_free: "lock_free",
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_bans_the_series_until_the_ban_ends_and_all_banned_is_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = write_file(dir.path(), "accounts.toml", &accounts_toml(2, false), 0o600);
    let token = TokenServer::start(Duration::ZERO).await;
    // One call per turn, so the rotation reaches every account within a few leases.
    let config = write_file(dir.path(), "serve.toml", "calls_per_rotation = 1\n", 0o600);
    let mut args = base_args(&accounts, &token.url);
    args.extend(["--config".into(), config.display().to_string()]);
    let serve = Serve::start(&args, dir.path().join("serve.log"));
    let c = client();
    let (s, first, _) = lease(&c, &serve.base, None, MODEL, "u").await;
    assert_eq!(s, 200);
    let banned = first["account"].as_str().unwrap().to_string();
    // The policy bans for twice the delay: 3 s.
    let (s, _) = complete(
        &c,
        &serve.base,
        None,
        first["lease"].as_str().unwrap(),
        serde_json::json!({"status": 429, "retry_delay": "1.5s"}),
    )
    .await;
    assert_eq!(s, 204);
    let banned_at = std::time::Instant::now();
    // While the ban lasts, that account is not leased for this series; another series still gets it.
    let mut other = None;
    for _ in 0..20 {
        let (s, b, _) = lease(&c, &serve.base, None, MODEL, "u").await;
        assert_eq!(s, 200, "{b}");
        assert_ne!(
            b["account"].as_str().unwrap(),
            banned,
            "a banned account was leased for its series"
        );
        other = Some(b["account"].as_str().unwrap().to_string());
        complete(
            &c,
            &serve.base,
            None,
            b["lease"].as_str().unwrap(),
            serde_json::json!({"status": 200}),
        )
        .await;
    }
    let mut seen_banned_on_other_series = false;
    for _ in 0..4 {
        let (_, b, _) = lease(&c, &serve.base, None, "gemini-2.5-flash", "u").await;
        seen_banned_on_other_series |= b["account"].as_str() == Some(banned.as_str());
        complete(
            &c,
            &serve.base,
            None,
            b["lease"].as_str().unwrap(),
            serde_json::json!({"status": 200}),
        )
        .await;
    }
    assert!(
        seen_banned_on_other_series,
        "a gemini-3 ban must not stop gemini-2.5 requests"
    );
    // Ban the other one too, with the delay in the upstream's own body: the pool is exhausted.
    let (s, b, _) = lease(&c, &serve.base, None, MODEL, "u").await;
    assert_eq!((s, b["account"].as_str().unwrap()), (200, other.as_deref().unwrap()));
    let google_429 = serde_json::json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "metadata": {"quotaResetDelay": "2s"}}]}});
    let (s, _) = complete(
        &c,
        &serve.base,
        None,
        b["lease"].as_str().unwrap(),
        serde_json::json!({"status": 429, "body": google_429}),
    )
    .await;
    assert_eq!(s, 204);
    let (s, b, headers) = lease(&c, &serve.base, None, MODEL, "u").await;
    assert_eq!(s, 503, "{b}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    let left = Duration::from_millis(3000).saturating_sub(banned_at.elapsed());
    // The earliest ban end, in whole seconds rounded up: at least 1, at most what is left + 1.
    assert!(
        (1..=left.as_secs() + 1).contains(&retry_after),
        "Retry-After {retry_after} with {left:?} left"
    );
    assert!(b["error"].as_str().unwrap().contains("banned"), "{b}");
    // Once the first ban ends, its account is leased again.
    tokio::time::sleep(Duration::from_millis(3100).saturating_sub(banned_at.elapsed())).await;
    let (s, b, _) = lease(&c, &serve.base, None, MODEL, "u").await;
    assert_eq!((s, b["account"].as_str().unwrap()), (200, banned.as_str()), "{b}");
    complete(
        &c,
        &serve.base,
        None,
        b["lease"].as_str().unwrap(),
        serde_json::json!({"status": 200}),
    )
    .await;
    assert_eq!(serve.terminate(Duration::from_secs(10)), Some(0));
    let text = std::fs::read_to_string(&accounts).unwrap();
    assert_eq!(
        text.matches("gemini_3_series_banned_until").count(),
        2,
        "both bans persisted:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_refreshed_once_per_credential_under_load() {
    for strategy in ["global_mutex", "rwlock", "queue_pool", "sharded", "lock_free"] {
        let dir = tempfile::tempdir().unwrap();
        let accounts = write_file(dir.path(), "accounts.toml", &accounts_toml(3, true), 0o600);
        // Slow enough that all 64 clients arrive while the first refreshes are in flight.
        let token = TokenServer::start(Duration::from_millis(150)).await;
        let mut args = base_args(&accounts, &token.url);
        args.extend(["--strategy".into(), strategy.into()]);
        let serve = Serve::start(&args, dir.path().join("serve.log"));
        let tally = drive(&serve.base, 2, false).await;
        assert!(
            tally.errors.lock().unwrap().is_empty(),
            "{strategy}: {:?}",
            tally.errors.lock().unwrap()
        );
        let refreshes = token.refreshes.lock().unwrap().clone();
        // Only the credentials the rotation reached are refreshed, each exactly once.
        assert!(!refreshes.is_empty());
        for (refresh_token, n) in &refreshes {
            assert_eq!(*n, 1, "{strategy}: {refresh_token} refreshed {n} times under load");
        }
        assert!(token.client_ids.lock().unwrap().iter().all(|id| id == OAUTH_ID));
        assert_eq!(serve.terminate(Duration::from_secs(10)), Some(0));
        let text = std::fs::read_to_string(&accounts).unwrap();
        assert_eq!(
            text.matches("-fresh-").count(),
            refreshes.len(),
            "{strategy}: new tokens persisted"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_shorter_than_the_margin_are_refreshed_about_once_per_half_lifetime() {
    // The endpoint grants 4-second tokens; serve's margin is 5 minutes and its refresh-ahead
    // window 10: read from expiry alone, every token would always be due. Bounded by the
    // token's own lifetime, a token is refreshed ahead from 2 s after issue and due from 3 s.
    const LIFETIME_S: u64 = 4;
    const RUN: Duration = Duration::from_millis(3_000);
    for strategy in ["global_mutex", "rwlock", "queue_pool", "sharded", "lock_free"] {
        let dir = tempfile::tempdir().unwrap();
        let accounts = write_file(dir.path(), "accounts.toml", &accounts_toml(2, true), 0o600);
        let token = TokenServer::granting(Duration::ZERO, LIFETIME_S as i64).await;
        let config = write_file(dir.path(), "serve.toml", "calls_per_rotation = 1\n", 0o600);
        let mut args = base_args(&accounts, &token.url);
        args.extend(["--config".into(), config.display().to_string()]);
        args.extend(["--strategy".into(), strategy.into()]);
        let serve = Serve::start(&args, dir.path().join("serve.log"));
        let c = client();
        let started = std::time::Instant::now();
        let mut leases = 0;
        while started.elapsed() < RUN {
            let (s, b, _) = tokio::time::timeout(
                Duration::from_secs(5),
                lease(&c, &serve.base, None, MODEL, &format!("user{leases}")),
            )
            .await
            .unwrap_or_else(|_| panic!("{strategy}: a lease took over 5 s"));
            assert_eq!(s, 200, "{strategy}: {b}");
            complete(
                &c,
                &serve.base,
                None,
                b["lease"].as_str().unwrap(),
                serde_json::json!({"status": 200}),
            )
            .await;
            leases += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let refreshes = token.refreshes.lock().unwrap().clone();
        // Each credential: once at the start (its token had expired), then not before half a
        // lifetime has passed: at most 1 + floor(run / (L/2)) refreshes.
        let most = 1 + RUN.as_millis() as u64 / (LIFETIME_S * 1000 / 2);
        assert_eq!(refreshes.len(), 2, "{strategy}: {refreshes:?}");
        for (refresh_token, n) in &refreshes {
            assert!(
                (1..=most).contains(n),
                "{strategy}: {refresh_token} refreshed {n} times in {RUN:?} with {LIFETIME_S} s tokens over {leases} leases (at most {most})"
            );
        }
        // The admin listing shows the bounded refresh points: L/2 and L/4 before expiry.
        let list = get_json(&c, &serve.url("/v1/accounts")).await;
        for a in list["accounts"].as_array().unwrap() {
            let at = |key: &str| {
                a[key]
                    .as_str()
                    .and_then(credpool::model::time::from_rfc3339)
                    .unwrap_or_else(|| panic!("{strategy}: no {key} in {a}"))
            };
            let expires = at("token_expires_at");
            let lifetime_ms = LIFETIME_S as i64 * 1000;
            assert_eq!(
                expires - at("token_refresh_ahead_at"),
                lifetime_ms / 2,
                "{strategy}: {a}"
            );
            assert_eq!(expires - at("token_refresh_due_at"), lifetime_ms / 4, "{strategy}: {a}");
        }
        assert_eq!(serve.terminate(Duration::from_secs(10)), Some(0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_load_exits_0_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = write_file(dir.path(), "accounts.toml", &accounts_toml(4, false), 0o600);
    let token = TokenServer::start(Duration::ZERO).await;
    let serve = Serve::start(&base_args(&accounts, &token.url), dir.path().join("serve.log"));
    let base = serve.base.clone();
    let load = tokio::spawn(async move { drive(&base, 1_000, true).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let code = tokio::task::spawn_blocking(move || serve.terminate(Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    let tally = load.await.unwrap();
    let errors = tally.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "completions of leases in flight must be taken while draining: {errors:?}"
    );
    let acked = acked(&tally);
    let total: i64 = acked.values().sum();
    assert!(
        total > 0 && total < (CLIENTS * 1_000) as i64,
        "the signal came mid-load ({total} completions)"
    );
    let (calls, unknown) = audit(&accounts);
    for (account, n) in &acked {
        assert_eq!(calls.get(account), Some(n), "{account}");
    }
    assert_eq!(unknown, unknown_fields(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_durable_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = write_file(dir.path(), "accounts.toml", &accounts_toml(4, false), 0o600);
    let token = TokenServer::start(Duration::ZERO).await;
    for store in ["durable", "group_commit"] {
        let mut args = base_args(&accounts, &token.url);
        args.extend(["--store", store].map(String::from));
        let (before, _) = audit(&accounts);
        let serve = Serve::start(&args, dir.path().join("serve.log"));
        let base = serve.base.clone();
        let watched = Arc::new(Tally::default());
        let load = tokio::spawn({
            let watched = watched.clone();
            async move { drive_into(watched, &base, 1_000, true).await }
        });
        // Kill once some completions are acknowledged (however slow the machine), long before
        // the 64,000 pairs could all be done.
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while acked(&watched).values().sum::<i64>() < 200 && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::task::spawn_blocking(move || serve.kill()).await.unwrap();
        let tally = load.await.unwrap();
        let acked = acked(&tally);
        let (after, unknown) = audit(&accounts);
        let sent = tally.completes_sent.load(Ordering::SeqCst) as i64;
        let total: i64 = acked.values().sum();
        assert!(
            total > 0 && total < (CLIENTS * 1_000) as i64,
            "{store}: the kill came mid-load ({total} acknowledged of {sent} sent)"
        );
        let mut written = 0;
        for (account, n) in &acked {
            let delta = after[account] - before[account];
            assert!(
                delta >= *n,
                "{store}: {account}: {n} acknowledged, {delta} in the file after SIGKILL"
            );
            written += delta;
        }
        assert!(
            written <= sent,
            "{store}: more in the file ({written}) than was ever sent ({sent})"
        );
        assert_eq!(unknown, unknown_fields(4));
        assert_eq!(mode(&accounts), 0o600);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = write_file(dir.path(), "accounts.toml", &accounts_toml(2, false), 0o600);
    let keys = write_file(dir.path(), "keys", "# clients\nclient-key-1\n", 0o600);
    let token = TokenServer::start(Duration::ZERO).await;
    let mut args = base_args(&accounts, &token.url);
    args.extend(["--keys".into(), keys.display().to_string()]);
    let serve = Serve::start(&args, dir.path().join("serve.log"));
    let c = client();
    let key = Some("client-key-1");

    let (s, b, _) = lease(&c, &serve.base, None, MODEL, "u").await;
    assert_eq!(s, 401, "{b}");
    assert!(b["error"].as_str().unwrap().contains("Authorization: Bearer"));
    let (s, _, _) = lease(&c, &serve.base, Some("wrong"), MODEL, "u").await;
    assert_eq!(s, 401);
    let r = c
        .post(serve.url("/v1/lease"))
        .header("x-goog-api-key", "client-key-1")
        .json(&serde_json::json!({"model": MODEL}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "x-goog-api-key works too");
    let b: serde_json::Value = r.json().await.unwrap();
    let (s, _) = complete(
        &c,
        &serve.base,
        key,
        b["lease"].as_str().unwrap(),
        serde_json::json!({"status": 200}),
    )
    .await;
    assert_eq!(s, 204);

    let r = c
        .post(serve.url("/v1/lease"))
        .bearer_auth("client-key-1")
        .body("{\"modle\": 1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert!(
        b["error"].as_str().unwrap().contains(r#"expected {"model": string"#),
        "{b}"
    );
    let r = c
        .post(serve.url("/v1/lease"))
        .bearer_auth("client-key-1")
        .json(&serde_json::json!({"user": "u"}))
        .send()
        .await
        .unwrap();
    let b: serde_json::Value = r.json().await.unwrap();
    assert!(b["error"].as_str().unwrap().contains("missing field `model`"), "{b}");

    let huge = format!("{{\"model\": \"{}\"}}", "x".repeat(100_000));
    let r = c
        .post(serve.url("/v1/lease"))
        .bearer_auth("client-key-1")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let b: serde_json::Value = r.json().await.unwrap();
    assert!(b["error"].as_str().unwrap().contains("larger than"), "{b}");

    let (s, text) = complete(
        &c,
        &serve.base,
        key,
        "0123456789abcdef0123456789abcdef",
        serde_json::json!({"status": 200}),
    )
    .await;
    assert_eq!(s, 404, "{text}");
    let (s, _) = complete(&c, &serve.base, key, "not-a-lease", serde_json::json!({"status": 200})).await;
    assert_eq!(s, 404);
    let (_, b, _) = lease(&c, &serve.base, key, MODEL, "u").await;
    let id = b["lease"].as_str().unwrap();
    let (s, text) = complete(&c, &serve.base, key, id, serde_json::json!({"status": "ok"})).await;
    assert_eq!(s, 400, "{text}");
    let (s, _) = complete(&c, &serve.base, key, id, serde_json::json!({"status": 200})).await;
    assert_eq!(s, 204, "a rejected body leaves the lease to complete");
    let (s, text) = complete(&c, &serve.base, key, id, serde_json::json!({"status": 200})).await;
    assert_eq!(s, 409, "{text}");
    assert!(text.contains("completed already"));
    let r = c.get(serve.url("/no/such/route")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // Health checks need no key; the admin API is off without admin keys.
    assert_eq!(c.get(serve.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(serve.url("/readyz")).send().await.unwrap().status(), 200);
    assert_eq!(
        c.get(serve.url("/v1/accounts"))
            .bearer_auth("client-key-1")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(serve.terminate(Duration::from_secs(10)), Some(0));
}

#[test]
fn unparsable_accounts_and_open_keys_files_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let broken = "[[accounts]]\nemail = \"a@example.com\"\nexpires_in = \"soon\"\n";
    let accounts = write_file(dir.path(), "accounts.toml", broken, 0o600);
    let out = credpool()
        .args(base_args(&accounts, "http://127.0.0.1:9/token"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{}:3:14:", accounts.display())), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&accounts).unwrap(),
        broken,
        "left byte-identical"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing created beside it"
    );

    let accounts = write_file(dir.path(), "good.toml", &accounts_toml(1, false), 0o600);
    let keys = write_file(dir.path(), "keys", "k\n", 0o644);
    let mut args = base_args(&accounts, "http://127.0.0.1:9/token");
    args.extend(["--keys".into(), keys.display().to_string()]);
    let out = credpool().args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("readable by group or others (mode 0644)"), "{stderr}");

    // Without keys, only loopback.
    let mut args = base_args(&accounts, "http://127.0.0.1:9/token");
    args[4] = "0.0.0.0:0".into();
    let out = credpool().args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not loopback"));

    // A config file is as strict as a scenario file.
    let config = write_file(
        dir.path(),
        "serve.toml",
        "strategy = \"lock_free\"\nlease_tll = \"1s\"\n",
        0o600,
    );
    let out = credpool()
        .args(["serve", "--config", &config.display().to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains(&format!("{}:2:1: unknown field `lease_tll`", config.display())),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_lease_is_reclaimed_after_its_ttl_and_its_permit_returned() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = write_file(dir.path(), "accounts.toml", &accounts_toml(1, false), 0o600);
    let token = TokenServer::start(Duration::ZERO).await;
    let mut args = base_args(&accounts, &token.url);
    args.extend(["--strategy", "queue_pool", "--lease-ttl", "300ms"].map(String::from));
    let serve = Serve::start(&args, dir.path().join("serve.log"));
    let c = client();
    let (s, abandoned, _) = lease(&c, &serve.base, None, MODEL, "crashed").await;
    assert_eq!(s, 200);
    // One credential, one permit: the next lease waits until the abandoned one is reclaimed.
    let t0 = std::time::Instant::now();
    let (s, next, _) = lease(&c, &serve.base, None, MODEL, "next").await;
    assert_eq!(s, 200);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(200),
        "the permit was free after {waited:?}"
    );
    let (s, text) = complete(
        &c,
        &serve.base,
        None,
        abandoned["lease"].as_str().unwrap(),
        serde_json::json!({"status": 200}),
    )
    .await;
    assert_eq!(s, 404, "{text}");
    assert!(text.contains("reclaimed"), "{text}");
    let (s, _) = complete(
        &c,
        &serve.base,
        None,
        next["lease"].as_str().unwrap(),
        serde_json::json!({"status": 200}),
    )
    .await;
    assert_eq!(s, 204);
    let metrics = c.get(serve.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("credpool_leases_reclaimed_total 1"), "{metrics}");
    assert!(metrics.contains("credpool_leases_in_flight 0"), "{metrics}");
    assert_eq!(serve.terminate(Duration::from_secs(10)), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_disable_reaches_every_strategy_and_the_file() {
    for strategy in ["global_mutex", "rwlock", "queue_pool", "sharded", "lock_free"] {
        let dir = tempfile::tempdir().unwrap();
        let accounts = write_file(dir.path(), "accounts.toml", &accounts_toml(3, false), 0o600);
        let token = TokenServer::start(Duration::ZERO).await;
        let mut args = base_args(&accounts, &token.url);
        args.extend(["--strategy".into(), strategy.into()]);
        let serve = Serve::start(&args, dir.path().join("serve.log"));
        let c = client();
        let r = c
            .post(serve.url("/v1/accounts/acct0@example.com/disable"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{strategy}");
        let b: serde_json::Value = r.json().await.unwrap();
        assert_eq!(b["changed"], true, "{strategy}: {b}");
        // Users spread over every shard; calls_per_rotation is 100, so 300 leases pass every account.
        for u in 0..300 {
            let (s, b, _) = lease(&c, &serve.base, None, MODEL, &format!("user{u}")).await;
            assert_eq!(s, 200, "{strategy}: {b}");
            assert_ne!(
                b["account"], "acct0@example.com",
                "{strategy}: a disabled account was leased"
            );
            complete(
                &c,
                &serve.base,
                None,
                b["lease"].as_str().unwrap(),
                serde_json::json!({"status": 200}),
            )
            .await;
        }
        let list = get_json(&c, &serve.url("/v1/accounts")).await;
        assert_eq!(list["accounts"][0]["disabled"], true, "{strategy}: {list}");
        assert!(std::fs::read_to_string(&accounts).unwrap().contains("disabled = true"));
        let r = c
            .post(serve.url("/v1/accounts/acct0@example.com/enable"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let mut seen = false;
        for u in 0..300 {
            let (s, b, _) = lease(&c, &serve.base, None, MODEL, &format!("user{u}")).await;
            assert_eq!(s, 200, "{strategy}: {b}");
            seen |= b["account"] == "acct0@example.com";
            complete(
                &c,
                &serve.base,
                None,
                b["lease"].as_str().unwrap(),
                serde_json::json!({"status": 200}),
            )
            .await;
        }
        assert!(seen, "{strategy}: an enabled account is leased again");
        let r = c
            .post(serve.url("/v1/accounts/nobody@example.com/disable"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let metrics = c.get(serve.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(
            metrics.contains("credpool_disables_total{source=\"operator\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("credpool_http_requests_total{route=\"/v1/lease\",status=\"200\"} 600"),
            "{metrics}"
        );
        assert_eq!(serve.terminate(Duration::from_secs(10)), Some(0));
    }
}

/// The signal handlers are in place before serve says it is listening: a SIGTERM sent the moment
/// the line appears gets a drain and exit 0, never the default action (killed by the signal,
/// which once made `a_drain_refuses_new_leases...` see its connection reset in CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_right_after_listening_is_drained_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = write_file(dir.path(), "accounts.toml", &accounts_toml(2, false), 0o600);
    let token = TokenServer::start(Duration::ZERO).await;
    for round in 0..10 {
        let serve = Serve::start(
            &base_args(&accounts, &token.url),
            dir.path().join(format!("serve-{round}.log")),
        );
        assert_eq!(serve.terminate(Duration::from_secs(10)), Some(0), "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_refuses_new_leases_but_takes_the_completion_of_one_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = write_file(dir.path(), "accounts.toml", &accounts_toml(2, false), 0o600);
    let token = TokenServer::start(Duration::ZERO).await;
    let mut serve = Serve::start(&base_args(&accounts, &token.url), dir.path().join("serve.log"));
    let c = client();
    let (s, held, _) = lease(&c, &serve.base, None, MODEL, "u").await;
    assert_eq!(s, 200);
    serve.signal(libc::SIGTERM);
    // The drain has begun once /readyz says so.
    let mut ready = 200;
    for _ in 0..100 {
        ready = c.get(serve.url("/readyz")).send().await.unwrap().status().as_u16();
        if ready == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ready, 503, "/readyz turns 503 while draining");
    let (s, b, headers) = lease(&c, &serve.base, None, MODEL, "u").await;
    assert_eq!(s, 503, "no new lease while draining: {b}");
    assert!(headers.contains_key("retry-after"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(serve.exited(), None, "it waits for the lease in flight");
    let (s, text) = complete(
        &c,
        &serve.base,
        None,
        held["lease"].as_str().unwrap(),
        serde_json::json!({"status": 200}),
    )
    .await;
    assert_eq!(s, 204, "{text}");
    assert_eq!(serve.wait(Duration::from_secs(10)), Some(0));
    let (calls, unknown) = audit(&accounts);
    assert_eq!(
        calls[held["account"].as_str().unwrap()],
        1,
        "the completion taken while draining is in the file"
    );
    assert_eq!(unknown, unknown_fields(2));
}

/// `CLIENTS` clients each making `calls` generateContent calls through serve's reverse proxy;
/// returns every answer that was not a 200 with its body.
async fn drive_proxy(base: &str, calls: usize) -> Vec<String> {
    let c = client_within(request_timeout());
    let url = format!("{base}/v1beta/models/{MODEL}:generateContent");
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move {
                let mut errors = Vec::new();
                for _ in 0..calls {
                    match c.post(&url).body(r#"{"contents": []}"#).send().await {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.bytes().await;
                        }
                        Ok(r) => errors.push(format!("proxy: {} {}", r.status(), r.text().await.unwrap_or_default())),
                        Err(e) => errors.push(format!("proxy: {e}")),
                    }
                }
                errors
            })
        })
        .collect();
    let mut errors = Vec::new();
    for t in tasks {
        errors.extend(t.await.unwrap());
    }
    errors
}

/// `credpool_leases_in_flight` from `/metrics` (serve without keys: open on loopback).
async fn leases_in_flight(base: &str) -> u64 {
    let text = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("credpool_leases_in_flight "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no credpool_leases_in_flight in /metrics:\n{text}"))
}

/// Memory stays flat in the number of requests: after a warm-up phase, phases of 64 clients'
/// lease/complete pairs and 64 clients' proxied calls (serve's VmRSS from /proc) must not grow
/// serve's resident set beyond a fixed allowance. The only per-request memory is the minute-long
/// record of finished lease-API leases, a few dozen bytes each (a proxied lease leaves none: its
/// id never left serve). Leases in flight stay bounded by the clients (at most one each) after
/// every phase, and fall to 0 once the answers are read. Short by default (4 phases, 5,120
/// requests, a few seconds); `CREDPOOL_LONG=1` runs 40 phases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_over_many_requests() {
    let phases = if long() { 40 } else { 4 };
    let dir = tempfile::tempdir().unwrap();
    let accounts = write_file(dir.path(), "accounts.toml", &accounts_toml(4, false), 0o600);
    let token = TokenServer::start(Duration::ZERO).await;
    let upstream = Upstream::start().await;
    let mut args = base_args(&accounts, &token.url);
    args.extend(["--api-url".into(), upstream.url.clone()]);
    let serve = Serve::start(&args, dir.path().join("serve.log"));
    let warm = drive(&serve.base, 10, false).await;
    assert!(warm.errors.lock().unwrap().is_empty());
    let errors = drive_proxy(&serve.base, 10).await;
    assert!(
        errors.is_empty(),
        "{} proxy errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    let after_warm_up = serve.rss_kib();
    let (mut pairs_done, mut proxied) = (0, 0);
    let mut peak_in_flight = 0;
    for _ in 0..phases {
        let t = drive(&serve.base, 10, false).await;
        assert!(t.errors.lock().unwrap().is_empty());
        pairs_done += CLIENTS * 10;
        let errors = drive_proxy(&serve.base, 10).await;
        assert!(
            errors.is_empty(),
            "{} proxy errors, first: {:?}",
            errors.len(),
            errors.first()
        );
        proxied += CLIENTS * 10;
        let in_flight = leases_in_flight(&serve.base).await;
        assert!(
            in_flight <= CLIENTS as u64,
            "{in_flight} leases in flight with {CLIENTS} clients"
        );
        peak_in_flight = peak_in_flight.max(in_flight);
    }
    let after = serve.rss_kib();
    // 8 MiB: allocator slack plus the finished-lease records of the lease API's requests
    // (< 100 bytes each); nothing per proxied request.
    let allowance = 8 * 1024 + (pairs_done as u64 * 100) / 1024;
    eprintln!(
        "RSS {after_warm_up} KiB after warm-up, {after} KiB after {pairs_done} more pairs and {proxied} proxied calls \
         (allowance {allowance} KiB); leases in flight after a phase: at most {peak_in_flight}"
    );
    assert!(
        after <= after_warm_up + allowance,
        "RSS grew from {after_warm_up} KiB to {after} KiB over {pairs_done} pairs and {proxied} proxied calls (allowance {allowance} KiB)"
    );
    // Every proxied lease is completed once its body has been read (in a task of its own).
    let mut in_flight = leases_in_flight(&serve.base).await;
    for _ in 0..100 {
        if in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        in_flight = leases_in_flight(&serve.base).await;
    }
    assert_eq!(in_flight, 0, "leases still in flight after every answer was read");
    assert_eq!(serve.terminate(Duration::from_secs(10)), Some(0));
}
