//! A scenario file, exactly as written: serde types that mirror the TOML.
//!
//! Every table denies unknown keys, durations are `"30ms"`-style strings, rates are checked to lie
//! in 0..=1, and counts that must be positive are checked here, so a mistake is reported by the
//! TOML layer with its line and column. Cross-field rules (an expired index beyond the pool, an
//! unknown strategy name) are checked in [`super::plan`], which has the spans it needs.

use crate::duration::Span;
use crate::upstream::dist::LatencyDist;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// A whole scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    /// Every random draw derives from it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default)]
    pub mode: Mode,
    /// Strategy names, or `["all"]`.
    #[serde(default = "all_strategies")]
    pub strategies: Spanned<Vec<String>>,
    pub pool: PoolSpec,
    pub load: LoadSpec,
    #[serde(default)]
    pub costs: CostsSpec,
    #[serde(default)]
    pub upstream: UpstreamSpec,
    /// Gives up and reports a deadlock when the run has not finished after this much (virtual or
    /// wall) time. Default: generous, derived from the load.
    pub watchdog: Option<Span>,
    #[serde(default)]
    pub expect: Vec<Spanned<ExpectSpec>>,
    /// Figures from elsewhere (the analysis, the real proxy) shown beside the measurements.
    #[serde(default)]
    pub reference: Vec<ReferenceSpec>,
    /// `[sweep]`: the same scenario at several offered rates or concurrencies (see
    /// [`super::sweep`]).
    pub sweep: Option<Spanned<SweepSpec>>,
    /// `[target]`: a proxy put under the same load, with credpool playing Google (see
    /// [`crate::target`] and docs/target.md).
    pub target: Option<Spanned<TargetSpec>>,
    /// `[fleet]`: every strategy run as N instances over one store (and, for `fleet`, one
    /// modelled Redis); see docs/scenarios.md.
    pub fleet: Option<Spanned<FleetSpec>>,
}

/// `[fleet]`: how many instances share the pool, how the load is spread over them, and what a
/// round trip to the modelled Redis costs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSpec {
    /// Instances, each a separate strategy instance with its own memory. Default 1.
    #[serde(default = "one_spanned")]
    pub instances: Spanned<Positive>,
    #[serde(default)]
    pub spread: Spread,
    /// One round trip to the modelled shared pool (`fleet` only). Default 100 µs.
    pub redis_rtt: Option<Spanned<Span>>,
}

fn one_spanned() -> Spanned<Positive> {
    Spanned::new(0..0, Positive(1))
}

/// Which instance serves a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Spread {
    /// Request `n` goes to instance `n mod N` (a load balancer's round robin).
    #[default]
    RoundRobin,
    /// Every request of a user goes to one instance (a hash of the user: sticky sessions).
    UserHash,
}

fn default_seed() -> u64 {
    1
}

fn all_strategies() -> Spanned<Vec<String>> {
    Spanned::new(0..0, vec!["all".into()])
}

/// Virtual: tokio's paused clock, simulated upstream, in-memory file. Real: the wall clock, a
/// wiremock server on 127.0.0.1 and real files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Virtual,
    Real,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Virtual => "virtual",
            Mode::Real => "real",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    pub credentials: Spanned<Positive>,
    #[serde(default = "default_k")]
    pub calls_per_rotation: Positive,
    /// Spanned, as the margins are: a warning about their figures points at them.
    #[serde(default = "default_lifetime")]
    pub token_lifetime: Spanned<Span>,
    #[serde(default = "default_margin")]
    pub refresh_margin: Spanned<Span>,
    /// Strategies that refresh ahead of expiry start this long before the margin. Default 5 min.
    #[serde(default = "default_margin")]
    pub refresh_ahead: Spanned<Span>,
    /// Credentials whose token has expired at the start.
    #[serde(default = "no_indices")]
    pub expired: Spanned<Vec<usize>>,
    /// Credentials whose tokens expire at this offset from the start (every token expiring at once).
    pub expire_all_at: Option<Span>,
    /// Credentials whose refresh always fails (a revoked refresh token).
    #[serde(default = "no_indices")]
    pub failing_refresh: Spanned<Vec<usize>>,
    /// Credentials whose refresh the token endpoint never answers in time (always a timeout).
    #[serde(default = "no_indices")]
    pub hanging_refresh: Spanned<Vec<usize>>,
    /// Credentials whose refresh the token endpoint always answers with HTTP 503.
    #[serde(default = "no_indices")]
    pub erroring_refresh: Spanned<Vec<usize>>,
    /// Credentials whose access token the API rejects with 401 on every call (revoked).
    #[serde(default = "no_indices")]
    pub revoked: Spanned<Vec<usize>>,
    #[serde(default = "default_store")]
    pub store: crate::store::StoreMode,
    /// Persist success/error bookkeeping after each request (the router does).
    #[serde(default = "yes")]
    pub record_outcomes: bool,
    /// `queue_pool`: requests one credential may serve at once.
    #[serde(default = "one")]
    pub permits_per_credential: Positive,
    /// `sharded`: number of shards (default: one per credential).
    pub shards: Option<Positive>,
    /// Status codes that disable an account (default none; the proxy offers 401, 403).
    #[serde(default)]
    pub auto_ban_codes: Vec<u16>,
    /// A refresh failing with a 5xx or a timeout bans the account for this long (doubled per
    /// failure in a row) instead of disabling it. Default: none (the proxy's permanent disable).
    pub refresh_backoff: Option<Spanned<Span>>,
    /// The longest such ban (default 10 minutes; needs `refresh_backoff`).
    pub refresh_backoff_max: Option<Spanned<Span>>,
    /// `as_shipped`: the shipped proxy's daily quota (successful calls per account and model
    /// series) checked in `get_valid_credential`. Default: no quota check.
    pub daily_limit: Option<Positive>,
}

fn no_indices() -> Spanned<Vec<usize>> {
    Spanned::new(0..0, Vec::new())
}
fn default_k() -> Positive {
    Positive(100)
}
fn default_lifetime() -> Spanned<Span> {
    Spanned::new(0..0, Span(std::time::Duration::from_secs(3600)))
}
fn default_margin() -> Spanned<Span> {
    Spanned::new(0..0, Span(std::time::Duration::from_secs(300)))
}
fn default_store() -> crate::store::StoreMode {
    crate::store::StoreMode::Locked
}
fn yes() -> bool {
    true
}
fn one() -> Positive {
    Positive(1)
}

/// How requests arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadModel {
    /// Every request at t = 0 (the seed's `asyncio.gather`). Closed: latency is from t = 0.
    Burst,
    /// `users` users each send a request, wait for it, think, and send the next. Closed.
    Closed,
    /// Requests arrive at `rate` per second (or per `stages`), whatever the system does. Open:
    /// latency counts from each request's intended start.
    Open,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    #[default]
    Constant,
    Poisson,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    pub model: LoadModel,
    /// Total requests (open and burst), or requests per user (closed) when `per_user` is set.
    pub requests: Spanned<Positive>,
    /// Distinct users sending requests (the key `sharded` splits on). For `closed`, the number of
    /// concurrent users.
    #[serde(default = "one")]
    pub users: Positive,
    /// Share of requests from user 0 (0 = users equally likely): skew onto one shard.
    #[serde(default)]
    pub hot_user_share: Rate,
    /// `closed`: pause between a user's response and its next request.
    #[serde(default)]
    pub think_time: Span,
    /// `open`: requests per second.
    pub rate: Option<NonNegative>,
    #[serde(default)]
    pub arrival: Arrival,
    /// `open`: a sequence of rates (ramps and spikes); replaces `rate`.
    #[serde(default)]
    pub stages: Vec<StageSpec>,
    /// Models asked for, chosen per request in turn (default one Gemini 3 model).
    #[serde(default = "default_models")]
    pub models: Vec<String>,
}

fn default_models() -> Vec<String> {
    vec!["gemini-3-pro-preview".into()]
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub duration: Span,
    /// Requests per second at the start of the stage.
    pub rate: NonNegative,
    /// Rate at the end of the stage (a linear ramp); default: same as `rate`.
    pub ramp_to: Option<NonNegative>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CostsSpec {
    #[serde(default)]
    pub check_rotation: Span,
    #[serde(default)]
    pub load_credential: Span,
    #[serde(default)]
    pub check_quota: Span,
    #[serde(default)]
    pub file_lock: Span,
    #[serde(default)]
    pub file_read: Span,
    #[serde(default)]
    pub toml_parse: Span,
    #[serde(default)]
    pub state_update: Span,
    #[serde(default)]
    pub toml_dump: Span,
    #[serde(default)]
    pub file_write: Span,
    #[serde(default)]
    pub fsync: Span,
    #[serde(default)]
    pub event_loop_stall: Span,
    #[serde(default)]
    pub log_line: Span,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSpec {
    #[serde(default)]
    pub api_latency: LatencyDist,
    #[serde(default)]
    pub refresh_latency: LatencyDist,
    #[serde(default = "thirty_seconds")]
    pub refresh_timeout: Span,
    #[serde(default)]
    pub status_429_rate: Rate,
    #[serde(default)]
    pub status_5xx_rate: Rate,
    #[serde(default)]
    pub status_401_rate: Rate,
    #[serde(default)]
    pub status_403_rate: Rate,
    #[serde(default)]
    pub refresh_failure_rate: Rate,
    /// Share of refreshes the token endpoint answers with HTTP 503.
    #[serde(default)]
    pub refresh_5xx_rate: Rate,
    /// What a 429 body says: retry after this delay (default: says nothing, so a 6 h ban).
    pub retry_delay: Option<Span>,
    /// Fault bursts: windows with different rates.
    #[serde(default)]
    pub faults: Vec<Spanned<FaultSpec>>,
    /// `[upstream.mock]`: what only a server on the wire does (`credpool upstream`); virtual-time
    /// runs ignore it.
    #[serde(default)]
    pub mock: WireSpec,
}

/// `[upstream.mock]`: the 429 body, connection resets, slow bodies and SSE framing of
/// `credpool upstream` (docs/upstream.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireSpec {
    /// Which retry information a 429 body carries. Default: `retry_info` when
    /// `upstream.retry_delay` is set, else `neither`.
    pub rate_limit_body: Option<Spanned<RateLimitBody>>,
    /// Share of API requests whose connection is closed without an answer.
    #[serde(default)]
    pub reset_rate: Rate,
    /// Share of successful API answers whose body comes `slow_body` after the headers.
    #[serde(default)]
    pub slow_body_rate: Rate,
    #[serde(default)]
    pub slow_body: Span,
    /// Chunks of a `:streamGenerateContent` answer (the first after the drawn latency).
    #[serde(default = "three")]
    pub sse_chunks: Spanned<Positive>,
    /// Pause between two chunks of a stream.
    #[serde(default = "ten_ms")]
    pub sse_interval: Span,
}

impl Default for WireSpec {
    fn default() -> Self {
        WireSpec {
            rate_limit_body: None,
            reset_rate: Rate(0.0),
            slow_body_rate: Rate(0.0),
            slow_body: Span::ZERO,
            sse_chunks: three(),
            sse_interval: ten_ms(),
        }
    }
}

fn three() -> Spanned<Positive> {
    Spanned::new(0..0, Positive(3))
}
fn ten_ms() -> Span {
    Span::from_millis(10)
}

/// What a 429 body says about when to retry (Google's `details`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitBody {
    /// `google.rpc.RetryInfo` with `retryDelay` only.
    RetryInfo,
    /// `google.rpc.ErrorInfo` with `quotaResetDelay` and `quotaResetTimeStamp` metadata only.
    ErrorInfo,
    /// Both details.
    Both,
    /// `google.rpc.ErrorInfo` with `quotaResetDelay` only (no `quotaResetTimeStamp`): the body
    /// the shipped proxy's delay parser misreads (`defect-429-delay-misread`).
    QuotaResetDelay,
    /// No retry information: the client's default ban applies.
    Neither,
}

fn thirty_seconds() -> Span {
    Span(std::time::Duration::from_secs(30))
}

impl Default for UpstreamSpec {
    fn default() -> Self {
        UpstreamSpec {
            api_latency: LatencyDist::default(),
            refresh_latency: LatencyDist::default(),
            refresh_timeout: thirty_seconds(),
            status_429_rate: Rate(0.0),
            status_5xx_rate: Rate(0.0),
            status_401_rate: Rate(0.0),
            status_403_rate: Rate(0.0),
            refresh_failure_rate: Rate(0.0),
            refresh_5xx_rate: Rate(0.0),
            retry_delay: None,
            faults: Vec::new(),
            mock: WireSpec::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub from: Span,
    pub until: Span,
    #[serde(default)]
    pub status_429_rate: Rate,
    #[serde(default)]
    pub status_5xx_rate: Rate,
    #[serde(default)]
    pub status_401_rate: Rate,
    #[serde(default)]
    pub status_403_rate: Rate,
    #[serde(default)]
    pub refresh_failure_rate: Rate,
    #[serde(default)]
    pub refresh_5xx_rate: Rate,
    /// Extra API latency inside the window; `credpool upstream` spends it after the headers
    /// (a slow body).
    #[serde(default)]
    pub extra_latency: Span,
    /// `credpool upstream` only: share of API requests whose connection is closed unanswered.
    #[serde(default)]
    pub reset_rate: Rate,
}

/// `[[expect]]`: a bound on a measured metric; a failed one makes the run exit 1.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// A strategy name, or "all".
    pub strategy: String,
    /// `latency.{min,mean,p50,p90,p99,p999,max}`, `phase.<phase>.<stat>`, `throughput_rps`,
    /// `lost_updates`, `errors`, `refreshes`, `disables`, `store_writes`, `resurrected`.
    pub metric: String,
    pub at_most: Option<Bound>,
    pub at_least: Option<Bound>,
    /// Equal within `tolerance` (a fraction: 0.01 is 1%).
    pub approx: Option<Bound>,
    pub tolerance: Option<Rate>,
    /// Only check in this mode (e.g. exact virtual-time figures that wall-clock jitter blurs).
    pub mode: Option<Mode>,
    /// Why this bound: shown in the report.
    #[serde(default)]
    pub note: String,
}

/// `[sweep]`: run the scenario at each of `rates` (open load) or `users` (closed load), and find
/// the knee, the capacity at `slo_p99` and (for users) a Universal Scalability Law fit.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Offered rates, requests per second (each replaces `load.rate`).
    pub rates: Option<Vec<NonNegative>>,
    /// Concurrent users (each replaces `load.users`).
    pub users: Option<Vec<Positive>>,
    /// The latency objective `sustainable_rps` is measured against.
    pub slo_p99: Option<Span>,
    /// Strategy names, or `["all"]` (default: the scenario's `strategies`).
    pub strategies: Option<Vec<String>>,
}

/// `[[reference]]`: a figure from elsewhere, set beside what credpool measured.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSpec {
    /// Where the figure comes from ("analysis", "real proxy a30aa35").
    pub source: String,
    /// Strategy whose measurement it is compared with.
    pub strategy: String,
    pub metric: String,
    pub value: Bound,
    #[serde(default)]
    pub note: String,
}

/// A bound: a duration (for latency metrics) or a number.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Bound {
    Duration(Span),
    Number(f64),
}

impl Bound {
    /// The bound in the metric's unit: milliseconds for durations.
    pub fn value(self) -> f64 {
        match self {
            Bound::Duration(s) => s.as_millis_f64(),
            Bound::Number(n) => n,
        }
    }
}

impl<'de> Deserialize<'de> for Bound {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Bound;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration such as \"3030ms\" (for latency metrics) or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bound, E> {
                crate::duration::parse_duration(v)
                    .map(|d| Bound::Duration(Span(d)))
                    .map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bound, E> {
                Ok(Bound::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bound, E> {
                Ok(Bound::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Bound, E> {
                if v.is_finite() {
                    Ok(Bound::Number(v))
                } else {
                    Err(E::custom("expected a finite number"))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A count that must be at least 1 (credentials, requests, users).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Positive(pub u64);

/// Largest count a scenario may ask for: beyond this a run would not finish in reasonable time.
pub const MAX_COUNT: u64 = 1_000_000_000;

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        if v < 1 {
            return Err(de::Error::custom(format!(
                "{v} is not allowed here: expected a whole number of at least 1"
            )));
        }
        if v as u64 > MAX_COUNT {
            return Err(de::Error::custom(format!(
                "{v} is absurdly large: expected at most {MAX_COUNT}"
            )));
        }
        Ok(Positive(v as u64))
    }
}

/// A fraction in 0..=1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Rate(pub f64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !(0.0..=1.0).contains(&v) {
            return Err(de::Error::custom(format!(
                "{v} is not a rate: expected a fraction between 0.0 and 1.0"
            )));
        }
        Ok(Rate(v))
    }
}

/// A finite number of at least 0 (requests per second).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct NonNegative(pub f64);

impl<'de> Deserialize<'de> for NonNegative {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !v.is_finite() || v < 0.0 {
            return Err(de::Error::custom(format!(
                "{v} is not allowed here: expected a number of at least 0"
            )));
        }
        if v > 1e7 {
            return Err(de::Error::custom(format!(
                "{v} requests per second is absurd: expected at most 10000000"
            )));
        }
        Ok(NonNegative(v))
    }
}

/// `[target]`: how to start (or reach) a proxy under test and speak to it. Checked as a whole in
/// [`super::target_plan`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// The strategy column's label for this target in every report.
    pub name: Spanned<String>,
    /// argv to start it (placeholders allowed); exactly one of `command` and `url`.
    pub command: Option<Spanned<Vec<String>>>,
    /// A proxy already running at this `http://127.0.0.1:PORT` URL.
    pub url: Option<Spanned<String>>,
    /// Environment for `command` (placeholders allowed in values).
    pub env: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    /// Path polled until it answers 2xx (default `/`).
    pub ready: Option<Spanned<String>>,
    /// How long `ready` may take (default 15 s).
    pub ready_timeout: Option<Span>,
    pub protocol: Spanned<TargetProtocol>,
    /// `openai` only: ask for SSE answers.
    #[serde(default)]
    pub stream: bool,
    /// The model the load asks for (default: the `[load]` models in turn).
    pub model: Option<String>,
    #[serde(default)]
    pub api_key: String,
    /// Per-request client timeout; past it a request is `hung` (default 10 s).
    pub timeout: Option<Span>,
    #[serde(default)]
    pub accounts_format: AccountsFormat,
    /// argv run once the target is ready (placeholders plus `{url}`, `{accounts_dir}`).
    pub setup: Option<Spanned<Vec<String>>>,
    /// `true`: credpool is the target's HTTPS proxy for Google's host names (`{ca_file}`,
    /// `{proxy_url}`); other hosts are refused and counted.
    #[serde(default)]
    pub intercept: bool,
}

/// What a target speaks to its users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetProtocol {
    Openai,
    Gemini,
    CodeAssist,
    /// credpool serve's lease API: credpool leases, calls the mock with the token, completes.
    Lease,
}

/// How the target's accounts file is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountsFormat {
    /// credpool's `accounts.toml` (the analysed proxy's format).
    #[default]
    AccountsToml,
    /// A directory with one OAuth credential JSON per account.
    JsonDir,
}
