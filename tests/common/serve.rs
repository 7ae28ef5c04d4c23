//! Helpers for the `credpool serve` tests: the real binary on a free 127.0.0.1 port, a local
//! OAuth token endpoint (a small axum server in the test) that counts refreshes, accounts files
//! with fields credpool does not model, and a client for the lease API.

#![allow(dead_code)] // each test file uses its own subset

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every token the tests seed or issue contains this; no log, metric or error body may.
pub const MARK: &str = "SEEDED-SECRET";
pub const MODEL: &str = "gemini-3-pro-preview";
pub const OAUTH_ID: &str = "test-client-id";
pub const OAUTH_SECRET: &str = "test-client-SEEDED-SECRET";

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// An accounts file of `n` accounts `acct{i}@example.com`, each with fields credpool does not
/// model (`project_count`, `[[accounts.projects]]`), tokens valid for an hour unless `expired`.
pub fn accounts_toml(n: usize, expired: bool) -> String {
    let ts = if expired { now_ms() - 7_200_000 } else { now_ms() };
    let mut s = String::from("# written by tests/common/serve.rs\n");
    for i in 0..n {
        s.push_str(&format!(
            "[[accounts]]\nemail = \"acct{i}@example.com\"\naccess_token = \"ya29.{MARK}-access-{i}\"\n\
             refresh_token = \"1//0g-{MARK}-refresh-{i}\"\nexpires_in = 3599\ntimestamp = {ts}\n\
             disabled = false\nproject_count = {i}\ntotal_calls = 0\nfavourite_colour = \"teal-{i}\"\n\n\
             [[accounts.projects]]\nproject_id = \"fake-project-{i}\"\nstate = \"ACTIVE\"\n\n"
        ));
    }
    s
}

/// Writes `text` to `dir/name` with `mode`.
pub fn write_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A local OAuth token endpoint: answers `grant_type=refresh_token` after `delay` with
/// `ya29.SEEDED-SECRET-fresh-<refresh token>-<n>`, valid an hour; counts refreshes per refresh
/// token and remembers the client ids it was called with.
pub struct TokenServer {
    pub url: String,
    pub refreshes: Arc<Mutex<HashMap<String, u64>>>,
    pub client_ids: Arc<Mutex<Vec<String>>>,
    total: Arc<AtomicU64>,
    _task: tokio::task::JoinHandle<()>,
}

impl TokenServer {
    pub async fn start(delay: Duration) -> TokenServer {
        Self::granting(delay, 3599).await
    }

    /// A token endpoint whose tokens live `expires_in` seconds.
    pub async fn granting(delay: Duration, expires_in: i64) -> TokenServer {
        use axum::routing::post;
        let refreshes: Arc<Mutex<HashMap<String, u64>>> = Default::default();
        let client_ids: Arc<Mutex<Vec<String>>> = Default::default();
        let total = Arc::new(AtomicU64::new(0));
        let (r, c, t) = (refreshes.clone(), client_ids.clone(), total.clone());
        let app = axum::Router::new().route(
            "/token",
            post(move |axum::Form(form): axum::Form<HashMap<String, String>>| {
                let (r, c, t) = (r.clone(), c.clone(), t.clone());
                async move {
                    tokio::time::sleep(delay).await;
                    if form.get("grant_type").map(String::as_str) != Some("refresh_token")
                        || form.get("client_secret").map(String::as_str) != Some(OAUTH_SECRET)
                    {
                        return (
                            axum::http::StatusCode::BAD_REQUEST,
                            axum::Json(serde_json::json!({"error": "invalid_request"})),
                        );
                    }
                    let refresh = form.get("refresh_token").cloned().unwrap_or_default();
                    c.lock()
                        .unwrap()
                        .push(form.get("client_id").cloned().unwrap_or_default());
                    t.fetch_add(1, Ordering::SeqCst);
                    let n = {
                        let mut m = r.lock().unwrap();
                        let n = m.entry(refresh.clone()).or_insert(0);
                        *n += 1;
                        *n
                    };
                    (
                        axum::http::StatusCode::OK,
                        axum::Json(serde_json::json!({
                            "access_token": format!("ya29.{MARK}-fresh-{refresh}-{n}"),
                            "expires_in": expires_in,
                            "token_type": "Bearer",
                        })),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        TokenServer {
            url,
            refreshes,
            client_ids,
            total,
            _task: task,
        }
    }

    pub fn total(&self) -> u64 {
        self.total.load(Ordering::SeqCst)
    }
}

/// A running `credpool serve`.
pub struct Serve {
    child: Child,
    pub base: String,
    /// stderr (the logs) is written here.
    pub log: PathBuf,
    pub accounts: PathBuf,
}

/// The flags every test passes: a free port, the test's token endpoint and OAuth client.
pub fn base_args(accounts: &Path, token_url: &str) -> Vec<String> {
    vec![
        "serve".into(),
        "--accounts".into(),
        accounts.display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--token-url".into(),
        token_url.into(),
        "--client-id".into(),
        OAUTH_ID.into(),
    ]
}

/// A `credpool` command with the test's OAuth client secret in its environment (not on its
/// command line).
pub fn credpool() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_credpool"));
    c.env("CREDPOOL_CLIENT_SECRET", OAUTH_SECRET).env("RUST_LOG", "debug");
    c
}

impl Serve {
    /// Starts serve with `args` and waits for its "listening on" line.
    pub fn start(args: &[String], log: PathBuf) -> Serve {
        let accounts = args
            .iter()
            .position(|a| a == "--accounts")
            .map(|i| PathBuf::from(&args[i + 1]))
            .unwrap_or_default();
        let mut child = credpool()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let base = match line.trim().strip_prefix("credpool serve: listening on ") {
            Some(b) => b.to_string(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "serve did not start: stdout {line:?}, log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Serve {
            child,
            base,
            log,
            accounts,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// SIGTERM, then waits (at most `within`) and returns the exit code.
    pub fn terminate(mut self, within: Duration) -> Option<i32> {
        self.signal(libc::SIGTERM);
        self.wait(within)
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// serve's resident set size, in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Whether serve has exited (its exit code), without waiting.
    pub fn exited(&mut self) -> Option<Option<i32>> {
        self.child.try_wait().unwrap().map(|status| status.code())
    }

    /// Waits (at most `within`) for the exit code.
    pub fn wait(&mut self, within: Duration) -> Option<i32> {
        let until = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if std::time::Instant::now() > until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("serve did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Never leave a process behind, whatever the test did.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP client for the tests (a connection pool, no proxy), each request bounded by 30 s.
pub fn client() -> reqwest::Client {
    client_within(Duration::from_secs(30))
}

/// [`client`] with each request bounded by `timeout` instead.
pub fn client_within(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(128)
        .timeout(timeout)
        .build()
        .unwrap()
}

/// `POST /v1/lease`: status and JSON body (Null when the body is not JSON).
pub async fn lease(
    c: &reqwest::Client,
    serve_base: &str,
    key: Option<&str>,
    model: &str,
    user: &str,
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let mut r = c
        .post(format!("{serve_base}/v1/lease"))
        .json(&serde_json::json!({"model": model, "user": user}));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    (status, body, headers)
}

/// `POST /v1/lease/{id}/complete`: status and body text.
pub async fn complete(
    c: &reqwest::Client,
    serve_base: &str,
    key: Option<&str>,
    id: &str,
    body: serde_json::Value,
) -> (u16, String) {
    let mut r = c.post(format!("{serve_base}/v1/lease/{id}/complete")).json(&body);
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    let resp = r.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap_or_default())
}

/// `total_calls` per account email in an accounts file, and the unknown fields' values.
pub fn audit(path: &Path) -> (HashMap<String, i64>, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
    let mut calls = HashMap::new();
    let mut unknown = Vec::new();
    for a in doc["accounts"].as_array().unwrap() {
        let email = a["email"].as_str().unwrap().to_string();
        calls.insert(email, a.get("total_calls").and_then(|v| v.as_integer()).unwrap_or(0));
        unknown.push(format!(
            "{}/{}/{}",
            a["favourite_colour"].as_str().unwrap_or("MISSING"),
            a["project_count"].as_integer().map_or(-1, |v| v),
            a["projects"][0]["project_id"].as_str().unwrap_or("MISSING")
        ));
    }
    (calls, unknown)
}

/// What `audit` must find for an untouched `accounts_toml(n, _)`'s unknown fields.
pub fn unknown_fields(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("teal-{i}/{i}/fake-project-{i}")).collect()
}

/// What the local upstream API saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub query: String,
    pub authorization: String,
    pub goog_api_key: Option<String>,
    pub body: String,
}

/// A local upstream API: `:streamGenerateContent` answers SSE, one event at once and the second
/// only once the test calls [`Upstream::release`]; any other path answers 429 (with RetryInfo)
/// to the token of `acct0`, and 200 naming the token to every other.
pub struct Upstream {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    release: Arc<tokio::sync::Notify>,
    _task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let seen: Arc<Mutex<Vec<Seen>>> = Default::default();
        let release = Arc::new(tokio::sync::Notify::new());
        let (s, r) = (seen.clone(), release.clone());
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (s, r) = (s.clone(), r.clone());
            async move {
                use axum::response::IntoResponse;
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
                let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
                let authorization = header("authorization").unwrap_or_default();
                s.lock().unwrap().push(Seen {
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().unwrap_or_default().to_string(),
                    authorization: authorization.clone(),
                    goog_api_key: header("x-goog-api-key"),
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                if parts.uri.path().ends_with(":streamGenerateContent") {
                    let events = futures_util::stream::unfold(0, move |n| {
                        let r = r.clone();
                        async move {
                            match n {
                                0 => Some((Ok::<_, std::io::Error>("data: {\"n\": 1}\n\n".to_string()), 1)),
                                1 => {
                                    let _ = tokio::time::timeout(Duration::from_secs(10), r.notified()).await;
                                    Some((Ok("data: {\"n\": 2}\n\n".to_string()), 2))
                                }
                                _ => None,
                            }
                        }
                    });
                    return (
                        [("content-type", "text/event-stream")],
                        axum::body::Body::from_stream(events),
                    )
                        .into_response();
                }
                if authorization.contains("-access-0") {
                    let body = serde_json::json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"}]}});
                    return (axum::http::StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
                }
                let who = authorization.rsplit('-').next().unwrap_or_default().to_string();
                axum::Json(serde_json::json!({"candidates": [], "served_by_token_of": who})).into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Upstream {
            url,
            seen,
            release,
            _task: task,
        }
    }

    /// Lets the streaming answer send its second event.
    pub fn release(&self) {
        self.release.notify_one();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A GET answered with JSON (an admin listing, a stats page), decoded; any failure panics.
pub async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}
