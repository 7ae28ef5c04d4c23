//! Conformance of `credpool upstream`, the stateful mock of Google, against the real server on
//! 127.0.0.1: token lifetimes and generations, 401s for expired, unknown and revoked tokens,
//! `invalid_grant`, the four 429 bodies read by the policy's own parser, SSE framing and timing,
//! the Code Assist wrapper, resets and slow bodies, the journal (records and drops), and the
//! `upstream` command as a process stopped by SIGTERM.

use credpool::mock::journal::{Auth, Endpoint, FLAG_RESET, FLAG_SLOW_BODY};
use credpool::mock::{Mock, Running};
use credpool::model::parse_error_body;
use credpool::model::{AccountsFile, Outcome, Policy};
use credpool::scenario::plan;
use credpool::secret::Secret;
use futures_util::StreamExt;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MODEL: &str = "gemini-2.5-pro";

/// A scenario with `pool` and `upstream` lines added (the load is never driven here).
fn scenario(pool: &str, upstream: &str) -> plan::Plan {
    let text = format!(
        "name = \"mock\"\nseed = 3\n[pool]\n{pool}\n[load]\nmodel = \"burst\"\nrequests = 1\n[upstream]\n{upstream}\n"
    );
    plan::parse(Path::new("mock.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

struct Served {
    mock: Mock,
    running: Running,
    client: reqwest::Client,
}

async fn serve(mock: Mock) -> Served {
    let running = mock.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    Served { mock, running, client }
}

impl Served {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url())
    }

    async fn generate(&self, token: &str) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(&format!("/v1beta/models/{MODEL}:generateContent")))
            .bearer_auth(token)
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        let r = self
            .client
            .post(self.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "client_id=cid&client_secret=sec&grant_type=refresh_token&refresh_token={refresh_token}"
            ))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_refresh_into_new_generations_and_revocation_kills_both() {
    let plan = scenario("credentials = 2\ntoken_lifetime = \"1h\"", "");
    let (mock, accounts) = Mock::from_plan(&plan, 1000);
    // Account 2: its initial token expires 1 s from now.
    let short = mock.seed_account(mock.now_ms() + 1_000);
    let s = serve(mock).await;

    assert_eq!(s.generate(accounts[0].access_token.expose()).await.0, 200);
    assert_eq!(s.generate(short.access_token.expose()).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, body) = s.generate(short.access_token.expose()).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["details"][0]["reason"], "ACCESS_TOKEN_EXPIRED");

    // Two refreshes: generations 1 and 2, each valid for the pool's lifetime; 1 stays valid.
    let (status, g1) = s.refresh(short.refresh_token.expose()).await;
    assert_eq!(status, 200, "{g1}");
    assert_eq!(g1["token_type"], "Bearer");
    assert_eq!(g1["expires_in"], 3600);
    assert!(g1["scope"].as_str().unwrap().contains("cloud-platform"));
    let (_, g2) = s.refresh(short.refresh_token.expose()).await;
    let t1 = g1["access_token"].as_str().unwrap();
    let t2 = g2["access_token"].as_str().unwrap();
    assert_ne!(t1, t2);
    assert_eq!(s.generate(t1).await.0, 200);
    assert_eq!(s.generate(t2).await.0, 200);

    // Unknown and missing tokens.
    assert_eq!(s.generate("ya29.never-issued").await.0, 401);
    let r = s
        .client
        .post(s.url(&format!("/v1beta/models/{MODEL}:generateContent")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Revoked through the admin surface: every token of the account and its refresh token.
    let r = s.client.post(s.url("/_mock/accounts/2/revoke")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(
        s.client
            .post(s.url("/_mock/accounts/9/revoke"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    assert_eq!(s.generate(t2).await.0, 401);
    let (status, body) = s.refresh(short.refresh_token.expose()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    // The other accounts are untouched.
    assert_eq!(s.generate(accounts[1].access_token.expose()).await.0, 200);

    let j: Vec<_> = s.mock.journal().records();
    let api: Vec<_> = j.iter().filter(|r| r.endpoint == Endpoint::GenerateContent).collect();
    let on2: Vec<_> = api
        .iter()
        .filter(|r| r.account == 2)
        .map(|r| (r.generation, r.status, r.auth))
        .collect();
    assert_eq!(
        on2,
        vec![
            (0, 200, Auth::Valid),
            (0, 401, Auth::Expired),
            (1, 200, Auth::Valid),
            (2, 200, Auth::Valid),
            (2, 401, Auth::Revoked)
        ]
    );
    let tokens: Vec<_> = j
        .iter()
        .filter(|r| r.endpoint == Endpoint::Token)
        .map(|r| (r.account, r.generation, r.status, r.auth))
        .collect();
    assert_eq!(
        tokens,
        vec![
            (2, 1, 200, Auth::Valid),
            (2, 2, 200, Auth::Valid),
            (2, 0, 400, Auth::Revoked)
        ]
    );
    assert_eq!(api.iter().filter(|r| r.auth == Auth::Unknown).count(), 1);
    assert_eq!(api.iter().filter(|r| r.auth == Auth::Missing).count(), 1);
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_refuses_bad_forms_and_unknown_grants() {
    let plan = scenario("credentials = 1\nrevoked = [0]", "");
    let (mock, accounts) = Mock::from_plan(&plan, 100);
    let s = serve(mock).await;
    // `pool.revoked`: the grant is revoked from the start.
    assert_eq!(s.generate(accounts[0].access_token.expose()).await.0, 401);
    let (status, body) = s.refresh(accounts[0].refresh_token.expose()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, body) = s.refresh("1//unknown").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    for (content_type, form, error) in [
        ("application/json", "{}", "invalid_request"),
        (
            "application/x-www-form-urlencoded",
            "client_id=a&client_secret=b&refresh_token=x",
            "unsupported_grant_type",
        ),
        (
            "application/x-www-form-urlencoded",
            "client_id=a&client_secret=b&grant_type=password",
            "unsupported_grant_type",
        ),
        (
            "application/x-www-form-urlencoded",
            "client_id=a&client_secret=b&grant_type=refresh_token",
            "invalid_request",
        ),
        (
            "application/x-www-form-urlencoded",
            "client_secret=b&grant_type=refresh_token&refresh_token=x",
            "invalid_request",
        ),
    ] {
        let r = s
            .client
            .post(s.url("/token"))
            .header("content-type", content_type)
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{form}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], error, "{form}");
    }
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_429_bodies_parse_to_their_delays() {
    let policy = Policy::default();
    for (variant, want_delay, want_reset) in [
        ("retry_info", Some(480), false),
        ("quota_reset_delay", Some(480), false),
        ("error_info", Some(480), true),
        ("both", Some(480), true),
        ("neither", None, false),
    ] {
        let plan = scenario(
            "credentials = 1",
            &format!("status_429_rate = 1.0\nretry_delay = \"479.417207ms\"\n[upstream.mock]\nrate_limit_body = \"{variant}\""),
        );
        let (mock, accounts) = Mock::from_plan(&plan, 100);
        let s = serve(mock).await;
        let r = s
            .client
            .post(s.url("/v1beta/models/claude-sonnet-4-5:generateContent"))
            .bearer_auth(accounts[0].access_token.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 429);
        let body = r.bytes().await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
        let now = s.mock.now_ms();
        let Outcome::RateLimited {
            reset_at,
            retry_delay_ms,
            ..
        } = parse_error_body(&body).into_outcome()
        else {
            panic!("not a 429 outcome")
        };
        assert_eq!(retry_delay_ms, want_delay, "{variant}: {v}");
        assert_eq!(reset_at.is_some(), want_reset, "{variant}: {v}");
        if let Some(reset) = reset_at {
            // quotaResetTimeStamp is the server's now + 479 ms (ms precision, a coarse clock).
            assert!(
                (reset - now - 479).abs() <= 50,
                "{variant}: reset {} ms ahead",
                reset - now
            );
        }
        let ban = policy.ban_until(now, reset_at, retry_delay_ms) - now;
        let want_ban = match variant {
            "retry_info" | "quota_reset_delay" => 960,
            "neither" => policy.default_ban_ms,
            // A reset instant: max(2 × (reset − now), 1 h).
            _ => policy.min_ban_ms,
        };
        assert_eq!(ban, want_ban, "{variant}");
        s.running.stop().await;
    }
}

#[test]
fn a_delay_in_rate_limit_body_needs_retry_delay() {
    let text = "name = \"m\"\n[pool]\ncredentials = 1\n[load]\nmodel = \"burst\"\nrequests = 1\n[upstream]\n[upstream.mock]\nrate_limit_body = \"both\"\n";
    let e = plan::parse(Path::new("m.toml"), text).unwrap_err().to_string();
    assert!(e.starts_with("m.toml:9:19:"), "{e}");
    assert!(e.contains("upstream.retry_delay"), "{e}");
    let text = text.replace("\"both\"", "\"sometimes\"");
    let e = plan::parse(Path::new("m.toml"), &text).unwrap_err().to_string();
    assert!(e.starts_with("m.toml:9:19:"), "{e}");
    let text = "name = \"m\"\n[pool]\ncredentials = 1\n[load]\nmodel = \"burst\"\nrequests = 1\n[upstream.mock]\nsse_chunk = 3\n";
    let e = plan::parse(Path::new("m.toml"), text).unwrap_err().to_string();
    assert!(e.starts_with("m.toml:8:1:") && e.contains("sse_chunk"), "{e}");
    let text = text.replace("sse_chunk = 3", "sse_chunks = 20000");
    let e = plan::parse(Path::new("m.toml"), &text).unwrap_err().to_string();
    assert!(e.starts_with("m.toml:8:14:") && e.contains("at most 10000"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_chunks_arrive_spaced_before_the_body_ends() {
    let plan = scenario(
        "credentials = 1",
        "api_latency = \"50ms\"\n[upstream.mock]\nsse_chunks = 4\nsse_interval = \"150ms\"",
    );
    let (mock, accounts) = Mock::from_plan(&plan, 100);
    let token = accounts[0].access_token.expose().to_string();
    let s = serve(mock).await;
    for code_assist in [false, true] {
        let (path, body) = if code_assist {
            (
                "/v1internal:streamGenerateContent?alt=sse".to_string(),
                format!("{{\"model\":\"{MODEL}\",\"request\":{{}}}}"),
            )
        } else {
            (
                format!("/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"),
                "{}".into(),
            )
        };
        let t0 = Instant::now();
        let r = s
            .client
            .post(s.url(&path))
            .bearer_auth(&token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let mut buffer = Vec::new();
        let mut events = Vec::new();
        let mut body = r.bytes_stream();
        while let Some(piece) = body.next().await {
            buffer.extend_from_slice(&piece.unwrap());
            while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = buffer.drain(..end + 2).collect();
                let text = String::from_utf8(event).unwrap();
                let json = text.strip_prefix("data: ").expect("an SSE data line").trim_end();
                events.push((t0.elapsed(), serde_json::from_str::<Value>(json).unwrap()));
            }
        }
        let done = t0.elapsed();
        assert!(buffer.is_empty(), "a partial event at the end");
        assert_eq!(events.len(), 4);
        for w in events.windows(2) {
            // At least half the interval: a stalled client may read one chunk late and the next on time.
            let gap = w[1].0 - w[0].0;
            assert!(
                gap >= Duration::from_millis(75),
                "chunks {gap:?} apart, expected about 150 ms"
            );
        }
        // The first chunk reached the client long before the body ended.
        assert!(
            done - events[0].0 >= Duration::from_millis(300),
            "first at {:?}, done at {done:?}",
            events[0].0
        );
        let inner = |v: &Value| if code_assist { v["response"].clone() } else { v.clone() };
        assert_eq!(
            inner(&events[0].1)["candidates"][0]["content"]["parts"][0]["text"],
            "chunk 1 of 4"
        );
        assert!(inner(&events[2].1)["candidates"][0].get("finishReason").is_none());
        assert_eq!(inner(&events[3].1)["candidates"][0]["finishReason"], "STOP");
    }
    // Without alt=sse: one JSON array, streamed.
    let r = s
        .client
        .post(s.url(&format!("/v1beta/models/{MODEL}:streamGenerateContent")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(4));
    let streams: Vec<_> = s
        .mock
        .journal()
        .records()
        .into_iter()
        .filter(|r| matches!(r.endpoint, Endpoint::StreamGenerateContent | Endpoint::CodeAssistStream))
        .collect();
    assert_eq!(streams.len(), 3);
    for r in &streams {
        // Finished after the last chunk: 50 ms + 3 × 150 ms.
        assert!(r.finish_ns - r.arrival_ns >= 480_000_000, "{r:?}");
        assert_eq!(r.flags, 0, "{r:?}");
    }
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_assist_wraps_its_answer_and_needs_a_model() {
    let plan = scenario("credentials = 1", "");
    let (mock, accounts) = Mock::from_plan(&plan, 100);
    let s = serve(mock).await;
    let token = accounts[0].access_token.expose();
    let r = s
        .client
        .post(s.url("/v1internal:generateContent"))
        .bearer_auth(token)
        .body(r#"{"model":"gemini-3-pro-preview","project":"p","request":{"contents":[]}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["response"]["modelVersion"], "gemini-3-pro-preview");
    assert_eq!(v["response"]["candidates"][0]["finishReason"], "STOP");
    let r = s
        .client
        .post(s.url("/v1internal:generateContent"))
        .bearer_auth(token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = s.client.post(s.url("/v1beta/models/x:embed")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let j = s.mock.journal();
    let r = j.records();
    assert_eq!(r[0].endpoint, Endpoint::CodeAssistGenerate);
    assert_eq!(j.models.name(r[0].model), "gemini-3-pro-preview");
    assert_eq!(r[2].endpoint, Endpoint::Other);
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_close_the_connection_and_slow_bodies_come_after_the_headers() {
    let plan = scenario("credentials = 1", "[upstream.mock]\nreset_rate = 1.0");
    let (mock, accounts) = Mock::from_plan(&plan, 100);
    let s = serve(mock).await;
    let r = s
        .client
        .post(s.url(&format!("/v1beta/models/{MODEL}:generateContent")))
        .bearer_auth(accounts[0].access_token.expose())
        .send()
        .await;
    assert!(r.is_err(), "expected no answer, got {:?}", r.map(|r| r.status()));
    s.running.stop().await;
    let rec = s.mock.journal().records();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].flags & FLAG_RESET, FLAG_RESET);

    let plan = scenario(
        "credentials = 1",
        "[upstream.mock]\nslow_body_rate = 1.0\nslow_body = \"400ms\"",
    );
    let (mock, accounts) = Mock::from_plan(&plan, 100);
    let s = serve(mock).await;
    let t0 = Instant::now();
    let r = s
        .client
        .post(s.url(&format!("/v1beta/models/{MODEL}:generateContent")))
        .bearer_auth(accounts[0].access_token.expose())
        .send()
        .await
        .unwrap();
    let headers_at = t0.elapsed();
    let v: Value = r.json().await.unwrap();
    let body_at = t0.elapsed();
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert!(headers_at < Duration::from_millis(300), "headers after {headers_at:?}");
    assert!(body_at >= Duration::from_millis(400), "body after {body_at:?}");
    s.running.stop().await;
    let rec = s.mock.journal().records();
    assert_eq!(rec[0].flags, FLAG_SLOW_BODY);
    assert!(rec[0].finish_ns - rec[0].arrival_ns >= 400_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_counts_drops_and_the_admin_surface_reports_them() {
    let plan = scenario("credentials = 1", "");
    let (mock, accounts) = Mock::from_plan(&plan, 3);
    let s = serve(mock).await;
    for _ in 0..5 {
        assert_eq!(s.generate(accounts[0].access_token.expose()).await.0, 200);
    }
    let stats: Value = s
        .client
        .get(s.url("/_mock/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["journaled"], 3);
    assert_eq!(stats["dropped"], 2);
    let text = s
        .client
        .get(s.url("/_mock/journal"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[3].contains("\"dropped\":2"), "{text}");
    let csv = s
        .client
        .get(s.url("/_mock/journal?format=csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .contains(",generate,0,0,gemini-2.5-pro,200,valid,0"),
        "{csv}"
    );
    // No token in anything the admin surface says.
    assert!(!text.contains(accounts[0].access_token.expose()) && !csv.contains("ya29"));
    s.running.stop().await;
}

#[test]
fn the_upstream_command_serves_until_sigterm_and_leaves_a_journal() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "name = \"cli\"\n[pool]\ncredentials = 2\n[load]\nmodel = \"burst\"\nrequests = 1\n[upstream]\napi_latency = \"1ms\"\n",
    )
    .unwrap();
    let journal = dir.path().join("journal.csv");
    let accounts_path = dir.path().join("accounts.toml");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_credpool"))
        .args(["upstream", "--listen", "127.0.0.1:0", "--scenario"])
        .arg(&scenario)
        .arg("--journal")
        .arg(&journal)
        .arg("--accounts-out")
        .arg(&accounts_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("the listening line")
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&accounts_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&accounts_path).unwrap();
    let file = AccountsFile::parse(&accounts_path, &text).unwrap();
    assert_eq!(file.accounts.len(), 2);
    let token: Secret = file.accounts[1].access_token.clone();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        client
            .post(format!("{url}/v1beta/models/{MODEL}:generateContent"))
            .bearer_auth(token.expose())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 200);

    // SAFETY: the child's pid, which has not been waited for, so it is still ours.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "arrival_ns,finish_ns,endpoint,account,generation,model,status,auth,flags"
    );
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].contains(",generate,1,0,gemini-2.5-pro,200,valid,0"), "{csv}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("0 dropped"), "{stderr}");
    // Tokens reach only the accounts file: not the journal, not the process's output.
    for text in [&csv, &*stderr, &String::from_utf8_lossy(&out.stdout)] {
        assert!(!text.contains("ya29.mock-") && !text.contains("1//mock-"), "{text}");
    }
}

#[test]
fn the_upstream_command_refuses_bad_input_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("bad.toml");
    std::fs::write(
        &scenario,
        "name = \"bad\"\n[pool]\ncredentials = 1\n[load]\nmodel = \"burst\"\nrequests = 1\n[upstream.mock]\nreset_rate = 2.0\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_credpool"))
            .arg("upstream")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--listen", "127.0.0.1:0", "--scenario", scenario.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:8:14:") && err.contains("between 0.0 and 1.0"),
        "{err}"
    );
    let out = run(&["--listen", "127.0.0.1:0", "--journal", "/tmp/j.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".csv or .jsonl"));
    let out = run(&["--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback only"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_sends_every_arrival_and_times_it_from_its_intended_start() {
    use credpool::scenario::http_load::{self, MakeRequest};
    use http_body_util::Full;
    let plan = scenario("credentials = 1", "api_latency = \"2ms\"");
    let (mock, accounts) = Mock::from_plan(&plan, 1000);
    let s = serve(mock).await;
    let mut load = plan.load.clone();
    load.model = credpool::scenario::spec::LoadModel::Open;
    load.requests = 300;
    load.stages = vec![(Duration::MAX, 1000.0, 1000.0)];
    let auth = format!("Bearer {}", accounts[0].access_token.expose());
    let make: Arc<MakeRequest> = Arc::new(move |n| {
        // Every tenth request with a token the mock never issued.
        let auth = if n % 10 == 0 {
            "Bearer ya29.made-up".to_string()
        } else {
            auth.clone()
        };
        hyper::Request::post(format!("/v1beta/models/{MODEL}:generateContent"))
            .header("authorization", auth)
            .body(Full::new(bytes::Bytes::from_static(b"{}")))
            .unwrap()
    });
    let t0 = Instant::now();
    let r = http_load::run(s.running.addr, Arc::new(load), 1, 4, make)
        .await
        .unwrap();
    assert_eq!(r.answered, 300);
    assert_eq!(r.transport_errors, 0);
    assert_eq!(r.statuses.get(&200), Some(&270));
    assert_eq!(r.statuses.get(&401), Some(&30));
    assert_eq!((r.latency.count(), r.lateness.count()), (300, 300));
    // 300 arrivals at 1000/s: the run spans at least their 0.3 s.
    assert!(t0.elapsed() >= Duration::from_millis(299));
    // Latency counts from the intended start, so it includes the lateness and the 2 ms latency.
    assert!(r.latency.quantile_ms(0.5) >= 2.0);
    assert!(r.latency.max_ms() >= r.lateness.max_ms());
    assert_eq!(s.mock.journal().len(), 300);
    let e = http_load::run(
        "10.0.0.1:80".parse().unwrap(),
        Arc::new(plan.load.clone()),
        1,
        1,
        Arc::new(|_| hyper::Request::new(Full::new(bytes::Bytes::new()))),
    )
    .await
    .unwrap_err();
    assert!(e.contains("loopback only"), "{e}");
    s.running.stop().await;
}
