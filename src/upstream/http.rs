//! The upstream over real HTTP: a wiremock server on 127.0.0.1 plays the token endpoint and the
//! API, and a reqwest client talks to it, for real-mode runs on the wall clock.
//!
//! The server's answers come from the same [`UpstreamModel`] as the simulated upstream (keyed by
//! request number, credential and refresh number), so real and virtual runs of a scenario face the
//! same upstream. The token endpoint takes the proxy's form POST (`client_id`, `client_secret`,
//! `grant_type=refresh_token`, `refresh_token`) and answers JSON, `400 invalid_grant`, `503` (an
//! outage), or nothing before the client's timeout; the API
//! answers 200, 429 with Google's body (the scenario's `rate_limit_body` variant, written by
//! [`crate::mock::google`] and read by [`crate::model::rate_limit`]), 401/403 or 503 after the
//! drawn latency; a paced client's call is answered at once, naming the latency, and the client
//! holds the answer until its intended start plus that latency (so the round trip is inside the
//! modelled latency, not added to it).
//!
//! Only loopback is ever contacted: the server binds 127.0.0.1 and the client has no proxy.

use super::faults::UpstreamModel;
use super::{Api, TokenEndpoint};
use crate::future::BoxFuture;
use crate::model::{Outcome, RefreshFailure, TokenGrant};
use crate::pacing::Pace;
use crate::secret::Secret;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The header carrying the harness's request number, which keys the server's draws.
pub const REQUEST_HEADER: &str = "x-credpool-request";
/// The header carrying a paced call's intended start (nanoseconds since the Unix epoch): the
/// server answers such a call at once, and the client holds the answer until that start plus the
/// modelled latency, so the HTTP round trip is inside the modelled cost instead of added to it
/// ([`crate::pacing`], "real work on the chain").
pub const INTENDED_START_HEADER: &str = "x-credpool-intended-start";
/// The header of an answer carrying the modelled latency the server charged (nanoseconds).
pub const MODELLED_HEADER: &str = "x-credpool-modelled-ns";

/// What [`HttpUpstream::warm`] asks for: an empty answer that draws nothing from the model.
const WARM_PATH: &str = "/warm";

/// An answer whose modelled latency is `latency`, naming it in [`MODELLED_HEADER`]: at once to a
/// paced call (one carrying [`INTENDED_START_HEADER`]), whose client holds it until it is due,
/// else after the latency.
fn answer_after(template: ResponseTemplate, request: &Request, latency: std::time::Duration) -> ResponseTemplate {
    let paced = request.headers.contains_key(INTENDED_START_HEADER);
    template
        .insert_header(MODELLED_HEADER, latency.as_nanos().to_string().as_str())
        .set_delay(server_delay(paced, latency))
}

/// How long the server waits before an answer of modelled `latency`: nothing for a paced call
/// (its client holds the answer to its due time, on the pacer's deadline wait, which neither
/// adds the round trip nor ends a timer tick late), the latency for any other.
fn server_delay(paced: bool, latency: std::time::Duration) -> std::time::Duration {
    if paced {
        std::time::Duration::ZERO
    } else {
        latency
    }
}

/// A running mock upstream.
pub struct MockUpstream {
    server: MockServer,
    pub model: Arc<UpstreamModel>,
    started: RunStart,
}

/// When the run began, shared by the server's responders ([`MockUpstream::run_starts`]).
#[derive(Clone)]
struct RunStart(Arc<crate::sync::Mutex<Instant>>);

impl Default for RunStart {
    fn default() -> RunStart {
        RunStart(Arc::new(crate::sync::Mutex::new(Instant::now())))
    }
}

impl RunStart {
    fn elapsed(&self) -> std::time::Duration {
        self.0.lock().elapsed()
    }
}

struct TokenResponder {
    model: Arc<UpstreamModel>,
    started: RunStart,
    /// Refreshes seen per credential: the n-th refresh of credential i draws the same answer as
    /// in virtual time.
    attempts: Vec<AtomicU64>,
}

impl Respond for TokenResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = String::from_utf8_lossy(&request.body);
        let field = |name: &str| {
            body.split('&')
                .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
                .unwrap_or("")
        };
        if field("grant_type") != "refresh_token" {
            return ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": "unsupported_grant_type"}));
        }
        // Simulated refresh tokens are `sim-refresh-<credential>`.
        let Some(credential) = field("refresh_token")
            .rsplit('-')
            .next()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            return ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": "invalid_grant"}));
        };
        let attempt = self
            .attempts
            .get(credential)
            .map(|a| a.fetch_add(1, Ordering::Relaxed))
            .unwrap_or(0);
        let answer = self.model.refresh(credential, attempt, self.started.elapsed());
        let t = if answer.server_error {
            ResponseTemplate::new(503).set_body_json(serde_json::json!({"error": "backend_error"}))
        } else if answer.ok {
            ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "access_token": format!("sim-access-{credential}-{}", attempt + 1),
                "expires_in": self.model.token_lifetime_s,
                "token_type": "Bearer",
            }))
        } else {
            ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": "invalid_grant"}))
        };
        // A timed-out answer is delayed past the client's timeout, which then fires.
        if answer.timed_out {
            t.set_delay(self.model.refresh_timeout * 2)
        } else {
            answer_after(t, request, answer.latency)
        }
    }
}

struct ApiResponder {
    model: Arc<UpstreamModel>,
    started: RunStart,
}

impl Respond for ApiResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let number = request
            .headers
            .get(REQUEST_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        // Simulated access tokens are `sim-access-<credential>-<n>`: the credential is the one the
        // client used, as a real API knows which token it was handed.
        let credential = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer sim-access-"))
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(usize::MAX);
        let answer = self.model.api(number, credential, self.started.elapsed());
        let t = match answer.outcome {
            Outcome::Success => ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true})),
            Outcome::RateLimited { .. } => ResponseTemplate::new(429).set_body_raw(
                crate::mock::google::rate_limited(
                    self.model.rate_limit_body(),
                    self.model.retry_delay.unwrap_or_default(),
                    chrono::Utc::now().timestamp_millis(),
                    "mock",
                )
                .to_vec(),
                "application/json",
            ),
            Outcome::Status(code) => ResponseTemplate::new(code),
        };
        answer_after(t, request, answer.latency)
    }
}

impl MockUpstream {
    /// Starts the server on 127.0.0.1 with answers from `model`.
    pub async fn start(model: UpstreamModel, credentials: usize) -> MockUpstream {
        let model = Arc::new(model);
        // Recording every request would make memory grow with the run: off.
        let server = MockServer::builder().disable_request_recording().start().await;
        let started = RunStart::default();
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(TokenResponder {
                model: model.clone(),
                started: started.clone(),
                attempts: (0..credentials).map(|_| AtomicU64::new(0)).collect(),
            })
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(r"^/v1/models/.+$"))
            .respond_with(ApiResponder {
                model: model.clone(),
                started: started.clone(),
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(WARM_PATH))
            .respond_with(ResponseTemplate::new(204))
            .mount(&server)
            .await;
        MockUpstream { server, model, started }
    }

    /// The run begins now: fault windows and time-dependent answers count from here (a run
    /// starts its clock once the server is up and the client's connections are open).
    pub fn run_starts(&self) {
        *self.started.0.lock() = Instant::now();
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// A client for this server.
    pub fn client(&self) -> Result<HttpUpstream, reqwest::Error> {
        HttpUpstream::new(&self.uri(), self.model.refresh_timeout)
    }
}

/// The OAuth client a proxy refreshes tokens as (the `client_id` and `client_secret` form
/// fields). Real proxies ship their OAuth application's pair in their configuration; credpool
/// ships none and takes it from its operator (`credpool serve --client-id/--client-secret`).
#[derive(Clone, Debug)]
pub struct OAuthClient {
    pub id: String,
    /// Redacted in `Debug`.
    pub secret: Secret,
}

impl OAuthClient {
    /// The pair the mock upstream's token endpoint expects (it does not check it).
    pub fn mock() -> OAuthClient {
        OAuthClient {
            id: "credpool-client".into(),
            secret: Secret::new("credpool-secret"),
        }
    }
}

/// The proxy's side: an HTTP client for the token endpoint and the API.
#[derive(Clone, Debug)]
pub struct HttpUpstream {
    /// Built once and shared: the proxy built a client per refresh, which is the 31 ms event-loop
    /// stall the `as_shipped` strategy models.
    client: reqwest::Client,
    base: String,
    /// Where refreshes are POSTed: `<base>/token` for the mock, any URL for `credpool serve`
    /// (Google's is `https://oauth2.googleapis.com/token`).
    token_url: String,
    oauth: OAuthClient,
    /// Calls are steps of this pace's chain (real-mode runs against the mock); plain otherwise.
    pace: Pace,
}

impl HttpUpstream {
    /// A client of the mock upstream at `base` (token endpoint `<base>/token`).
    pub fn new(base: &str, refresh_timeout: std::time::Duration) -> Result<Self, reqwest::Error> {
        let base = base.trim_end_matches('/').to_string();
        let token_url = format!("{base}/token");
        Self::with_token_url(&base, &token_url, OAuthClient::mock(), refresh_timeout)
    }

    /// A client whose refreshes go to `token_url` as `oauth`. TLS (rustls) for `https://` URLs;
    /// no proxy from the environment, so a token never travels through one unasked.
    pub fn with_token_url(
        base: &str,
        token_url: &str,
        oauth: OAuthClient,
        refresh_timeout: std::time::Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder().no_proxy().timeout(refresh_timeout).build()?;
        Ok(HttpUpstream {
            client,
            base: base.trim_end_matches('/').to_string(),
            token_url: token_url.to_string(),
            oauth,
            pace: Pace::default(),
        })
    }

    /// The same client, each call a real step on `pace`'s chain: it sends its intended start
    /// and takes the server's modelled latency as its cost.
    pub fn paced(self, pace: Pace) -> HttpUpstream {
        HttpUpstream { pace, ..self }
    }

    /// Opens `connections` keep-alive connections to the server (that many requests at once),
    /// which the client's pool keeps for the run: the model's upstream call costs only its
    /// latency, and a cold start would add a TCP connect to each of the first calls made at
    /// once (100 of them in `seed-1-burst-100`). A failure is left to the run's own calls.
    pub async fn warm(&self, connections: usize) {
        let url = format!("{}{WARM_PATH}", self.base);
        let calls = (0..connections).map(|_| self.client.get(&url).send());
        for answer in futures_util::future::join_all(calls).await.into_iter().flatten() {
            let _ = answer.bytes().await;
        }
    }

    /// Sends `request` as a step of the pace's chain (a plain send when not paced).
    async fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
        let Some(step) = self.pace.real_step() else {
            return request.send().await;
        };
        let start_ns = step
            .intended_start_system
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let response = request.header(INTENDED_START_HEADER, start_ns.to_string()).send().await;
        let modelled = response.as_ref().ok().and_then(|r| {
            r.headers()
                .get(MODELLED_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(std::time::Duration::from_nanos)
        });
        match modelled {
            Some(latency) => self.pace.real_step_due(step, latency).await,
            None => self.pace.real_step_ended(step, None),
        }
        response
    }
}

#[derive(serde::Deserialize)]
struct TokenBody {
    access_token: String,
    expires_in: i64,
}

impl TokenEndpoint for HttpUpstream {
    fn refresh<'a>(
        &'a self,
        _credential: usize,
        _attempt: u64,
        refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<TokenGrant, RefreshFailure>> {
        Box::pin(async move {
            if refresh_token.is_empty() {
                return Err(RefreshFailure::NoRefreshToken);
            }
            // Form-encoded (`/` and `+` in refresh tokens and secrets are escaped).
            let form = [
                ("client_id", self.oauth.id.as_str()),
                ("client_secret", self.oauth.secret.expose()),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose()),
            ];
            let response = self
                .send(self.client.post(&self.token_url).form(&form))
                .await
                .map_err(|e| {
                    if e.is_timeout() {
                        RefreshFailure::Timeout
                    } else {
                        RefreshFailure::Network(redact(e))
                    }
                })?;
            let status = response.status().as_u16();
            if status == 400 || status == 401 {
                return Err(RefreshFailure::InvalidGrant);
            }
            if status != 200 {
                return Err(RefreshFailure::Server(status));
            }
            let t: TokenBody = response.json().await.map_err(|e| RefreshFailure::Network(redact(e)))?;
            Ok(TokenGrant {
                access_token: Secret::new(t.access_token),
                expires_in: t.expires_in,
            })
        })
    }
}

/// An error's text without the URL's query (no token is ever in a URL, but be sure).
fn redact(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

impl Api for HttpUpstream {
    /// Boxed: a `reqwest` request's future is several kilobytes, too large to keep inline in
    /// every request's future.
    fn call<'a>(
        &'a self,
        request: u64,
        _credential: usize,
        token: &'a Secret,
    ) -> impl std::future::Future<Output = Outcome> + Send + 'a {
        Box::pin(async move {
            let response = self
                .send(
                    self.client
                        .post(format!("{}/v1/models/generate", self.base))
                        .bearer_auth(token.expose())
                        .header(REQUEST_HEADER, request.to_string())
                        .body("{}"),
                )
                .await;
            let Ok(response) = response else {
                return Outcome::Status(503);
            };
            match response.status().as_u16() {
                200..=299 => Outcome::Success,
                429 => {
                    let body = response.bytes().await.unwrap_or_default();
                    crate::model::parse_error_body(&body).into_outcome()
                }
                code => Outcome::Status(code),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::dist::LatencyDist;
    use std::time::Duration;

    #[test]
    fn a_paced_client_is_answered_at_once_and_any_other_after_the_latency() {
        let ms = Duration::from_millis;
        assert_eq!(server_delay(true, ms(20)), Duration::ZERO);
        assert_eq!(server_delay(false, ms(20)), ms(20));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paced_call_sends_its_start_and_is_told_the_modelled_latency() {
        let model = UpstreamModel {
            api_latency: LatencyDist::constant(Duration::from_millis(3)),
            ..UpstreamModel::default()
        };
        let server = MockUpstream::start(model, 1).await;
        // What the client sends is what `answer_after` reads; the answer names the latency.
        let answer = reqwest::Client::new()
            .post(format!("{}/v1/models/generate", server.uri()))
            .header(INTENDED_START_HEADER, "0")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()[MODELLED_HEADER], "3000000");
        // A paced client's calls go through the same path and still answer.
        let client = server
            .client()
            .unwrap()
            .paced(Pace::deadlines(crate::pacing::Pacer::new()));
        client.warm(2).await;
        let grant = client.refresh(0, 0, &Secret::new("sim-refresh-0")).await.unwrap();
        // Answered at once, but held by the client until due: on a chain of its own (after a
        // pause longer than the handoff window, so it makes up no earlier lateness) the call
        // takes its 3 ms.
        tokio::time::sleep(crate::pacing::HANDOFF * 2).await;
        let started = Instant::now();
        assert_eq!(client.call(1, 0, &grant.access_token).await, Outcome::Success);
        assert!(started.elapsed() >= Duration::from_millis(3), "{:?}", started.elapsed());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn token_endpoint_and_api_over_loopback() {
        let model = UpstreamModel {
            refresh_latency: LatencyDist::constant(Duration::from_millis(20)),
            failing_refresh: vec![1],
            ..UpstreamModel::default()
        };
        let server = MockUpstream::start(model, 2).await;
        assert!(server.uri().starts_with("http://127.0.0.1:"));
        let client = server.client().unwrap();
        let t0 = Instant::now();
        let grant = client.refresh(0, 0, &Secret::new("sim-refresh-0")).await.unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(20));
        assert_eq!(grant.access_token.expose(), "sim-access-0-1");
        assert_eq!(grant.expires_in, 3600);
        assert_eq!(
            client.refresh(1, 0, &Secret::new("sim-refresh-1")).await,
            Err(RefreshFailure::InvalidGrant)
        );
        assert_eq!(client.call(1, 0, &grant.access_token).await, Outcome::Success);
    }
}
