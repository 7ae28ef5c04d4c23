//! `credpool serve` as a reverse proxy: the leased token injected in place of the client's key,
//! a 429 retried on another credential (and its series banned), SSE streamed through as it
//! arrives, Code Assist paths, keys checked.

#[path = "common/serve.rs"]
mod serve_common;

use futures_util::StreamExt;
use serve_common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_injects_the_leased_token_retries_a_429_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = write_file(dir.path(), "accounts.toml", &accounts_toml(2, false), 0o600);
    let keys = write_file(dir.path(), "keys", "client-key-SEEDED\n", 0o600);
    let admin = write_file(dir.path(), "admin-keys", "admin-key\n", 0o600);
    let token = TokenServer::start(Duration::ZERO).await;
    let upstream = Upstream::start().await;
    let mut args = base_args(&accounts, &token.url);
    args.extend([
        "--api-url".into(),
        upstream.url.clone(),
        "--keys".into(),
        keys.display().to_string(),
    ]);
    args.extend(["--admin-keys".into(), admin.display().to_string()]);
    let serve = Serve::start(&args, dir.path().join("serve.log"));
    let c = client();
    let generate = serve.url("/v1beta/models/gemini-3-pro-preview:generateContent?key=client-key-SEEDED");

    let r = c
        .post(&generate)
        .json(&serde_json::json!({"contents": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no client key, no proxying");
    assert!(upstream.seen().is_empty());

    // The first credential (acct0) gets a 429; the request is retried on acct1.
    let r = c
        .post(&generate)
        .header("x-goog-api-key", "client-key-SEEDED")
        .json(&serde_json::json!({"contents": [{"parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["served_by_token_of"], "1", "{b}");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].authorization.ends_with("-access-0") && seen[1].authorization.ends_with("-access-1"));
    for s in &seen {
        assert!(
            s.authorization.starts_with("Bearer ya29."),
            "the leased token, not the client key: {s:?}"
        );
        assert_eq!(s.goog_api_key, None, "the client's key is not forwarded");
        assert!(!s.query.contains("key="), "nor its key= query parameter: {s:?}");
        assert!(s.body.contains("\"hi\""), "the body is sent again on the retry");
    }
    // acct0 is now banned for gemini-3: the next request goes straight to acct1.
    let r = c
        .post(&generate)
        .bearer_auth("client-key-SEEDED")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(upstream.seen().len(), 3);

    // Code Assist: the model comes from the body.
    let r = c
        .post(serve.url("/v1internal:generateContent"))
        .bearer_auth("client-key-SEEDED")
        .json(&serde_json::json!({"model": "gemini-3-pro-preview", "project": "p", "request": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(upstream.seen().last().unwrap().path, "/v1internal:generateContent");

    // SSE: the first event arrives while the upstream is still holding the second.
    // (The upstream holds its second event up to 10 s: a buffering proxy answers nothing before.)
    let sent = c
        .post(serve.url("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"))
        .bearer_auth("client-key-SEEDED")
        .body("{}")
        .send();
    let r = tokio::time::timeout(Duration::from_secs(5), sent)
        .await
        .expect("the answer's head must arrive before the upstream finishes")
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut stream = r.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the first event must arrive before the upstream finishes (no buffering)")
        .unwrap()
        .unwrap();
    let first = String::from_utf8_lossy(&first);
    assert!(first.contains("\"n\": 1") && !first.contains("\"n\": 2"), "{first:?}");
    assert_eq!(upstream.seen().last().unwrap().query, "alt=sse");
    upstream.release();
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&rest).contains("\"n\": 2"));

    // Every lease was completed (the stream's once it ended), and the 429 counted.
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = serve_metrics(&serve).await;
        if metrics.contains("credpool_leases_in_flight 0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(metrics.contains("credpool_leases_in_flight 0"), "{metrics}");
    assert!(metrics.contains("credpool_proxy_retries_total 1"), "{metrics}");
    assert!(metrics.contains("credpool_bans_total 1"), "{metrics}");
    assert!(metrics.contains("route=\"proxy\",status=\"200\"} 4"), "{metrics}");
    assert_eq!(serve.terminate(Duration::from_secs(10)), Some(0));
    let (calls, _) = audit(&accounts);
    assert_eq!(
        calls["acct0@example.com"] + calls["acct1@example.com"],
        5,
        "five upstream answers recorded"
    );
    assert!(std::fs::read_to_string(&accounts)
        .unwrap()
        .contains("gemini_3_series_banned_until = \"20"));
}

/// `/metrics`, with the admin key.
async fn serve_metrics(serve: &Serve) -> String {
    let r = client()
        .get(serve.url("/metrics"))
        .bearer_auth("admin-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_no_other_credential_goes_back_to_the_client_as_it_came() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = write_file(dir.path(), "accounts.toml", &accounts_toml(1, false), 0o600);
    let token = TokenServer::start(Duration::ZERO).await;
    let upstream = Upstream::start().await;
    let mut args = base_args(&accounts, &token.url);
    args.extend(["--api-url".into(), upstream.url.clone()]);
    let serve = Serve::start(&args, dir.path().join("serve.log"));
    let c = client();
    let url = serve.url("/v1beta/models/gemini-3-pro-preview:generateContent");
    let r = c.post(&url).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 429);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        b["error"]["details"][0]["retryDelay"], "30s",
        "the upstream's own body: {b}"
    );
    assert_eq!(upstream.seen().len(), 1, "no credential left to retry on");
    // Banned for 60 s (twice the delay): now serve itself says so, with Retry-After.
    let r = c.post(&url).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 503);
    let after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((55..=60).contains(&after), "Retry-After {after}");
    assert_eq!(upstream.seen().len(), 1);
    assert_eq!(serve.terminate(Duration::from_secs(10)), Some(0));
}
