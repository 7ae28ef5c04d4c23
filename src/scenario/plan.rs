//! A validated scenario: the spec checked as a whole and turned into what the runner needs.
//!
//! [`load`] reads a file and returns a [`Plan`] or an [`InputError`] at file:line:column. Rules the
//! TOML types cannot express on their own are checked here: indices within the pool, known strategy
//! names, load keys that fit the load model, expectation metrics that exist.

use super::expect::{Expectation, Target};
use super::spec::{Arrival, FleetSpec, LoadModel, Mode, RateLimitBody, ReferenceSpec, ScenarioSpec, Spread, StageSpec};
use crate::costs::Costs;
use crate::duration::format_duration;
use crate::input_error::{read_input, InputError, InputWarning};
use crate::metrics::expectation::{Check, Metric};
use crate::model::refresh_window::swallowed_by;
use crate::model::{Account, EpochMs, Policy};
use crate::store::StoreMode;
use crate::strategy::env::DEFAULT_REDIS_RTT;
use crate::strategy::{StrategyName, StrategyOptions};
use crate::upstream::faults::{FaultWindow, StatusRates, UpstreamModel, WireModel};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Most chunks one mock stream may have (each is kept, serialised, per model).
pub const MAX_SSE_CHUNKS: u64 = 10_000;

/// Virtual runs start at this instant (2025-11-29T00:00:00Z), so their files are repeatable.
pub const VIRTUAL_EPOCH_MS: EpochMs = 1_764_374_400_000;

/// How requests arrive, validated.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    pub model: LoadModel,
    pub requests: u64,
    pub users: u32,
    pub hot_user_share: f64,
    pub think_time: Duration,
    pub arrival: Arrival,
    /// Open load: (duration, start rate, end rate) stages; a plain `rate` is one endless stage.
    pub stages: Vec<(Duration, f64, f64)>,
    pub models: Vec<Arc<str>>,
}

impl LoadPlan {
    /// Whether latency counts from an intended start independent of the system (open load).
    pub fn is_open(&self) -> bool {
        self.model == LoadModel::Open
    }
}

/// Most instances a `[fleet]` may have.
pub const MAX_INSTANCES: u64 = 64;

/// The longest modelled Redis round trip a `[fleet]` may ask for.
pub const MAX_REDIS_RTT: Duration = Duration::from_secs(1);

/// `[fleet]`, validated: the run's strategy as `instances` instances, each with its own memory,
/// over the run's one store (and, for `fleet`, one modelled Redis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetPlan {
    pub instances: usize,
    pub spread: Spread,
}

/// Everything a run needs, checked.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub description: String,
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, for the report's reproducibility block.
    pub sha256: String,
    pub seed: u64,
    pub mode: Mode,
    pub strategies: Vec<StrategyName>,
    pub policy: Policy,
    pub credentials: usize,
    pub token_lifetime: Duration,
    /// Credentials expired at the start.
    pub expired: Vec<usize>,
    /// Every token expires at this offset from the start.
    pub expire_all_at: Option<Duration>,
    pub store: StoreMode,
    pub options: StrategyOptions,
    pub costs: Costs,
    pub load: LoadPlan,
    pub upstream: UpstreamModel,
    pub watchdog: Duration,
    pub expectations: Vec<Expectation>,
    pub references: Vec<ReferenceSpec>,
    /// `[sweep]`: load levels to run the scenario at (see [`super::sweep`]).
    pub sweep: Option<super::sweep::SweepPlan>,
    /// `[target]`: a proxy run under the same load beside `strategies` (see [`crate::target`]).
    pub target: Option<super::target_plan::TargetPlan>,
    /// `[fleet]`: `None` runs one instance, as before `[fleet]` existed.
    pub fleet: Option<FleetPlan>,
    /// Figures that are valid but probably not what was meant, each at its line: printed by
    /// every command that loads the scenario, never fatal.
    pub warnings: Vec<InputWarning>,
}

impl Plan {
    /// The pool at the start of a run whose clock reads `origin` (epoch ms).
    pub fn initial_accounts(&self, origin: EpochMs) -> Vec<Account> {
        let lifetime_s = self.token_lifetime.as_secs() as i64;
        (0..self.credentials)
            .map(|i| {
                let mut a = Account::synthetic(i, origin, lifetime_s);
                if self.expired.contains(&i) {
                    // Expired one second ago.
                    a.timestamp = Some(origin - lifetime_s * 1000 - 1000);
                } else if let Some(at) = self.expire_all_at {
                    // Inside the refresh margin exactly `at` after the start.
                    a.timestamp =
                        Some(origin + at.as_millis() as i64 + self.policy.refresh_margin_ms - lifetime_s * 1000);
                }
                a
            })
            .collect()
    }

    /// The same plan with the mode (and so the clock) overridden from the command line.
    pub fn with_mode(mut self, mode: Mode) -> Plan {
        self.mode = mode;
        self
    }
}

/// Reads, parses and validates a scenario file.
pub fn load(path: &Path) -> Result<Plan, InputError> {
    let text = read_input(path)?;
    parse(path, &text)
}

/// Parses and validates scenario text; `path` labels errors.
pub fn parse(path: &Path, text: &str) -> Result<Plan, InputError> {
    if text.trim().is_empty() {
        return Err(InputError::whole_file(
            path,
            "is empty: expected a scenario file (name, [pool], [load])",
        ));
    }
    let spec: ScenarioSpec =
        toml::from_str(text).map_err(|e| InputError::from_toml(path, text, e.span(), e.message()))?;
    let at = |span: std::ops::Range<usize>, msg: String| InputError::at(path, text, Some(span), msg);

    let credentials = spec.pool.credentials.get_ref().0 as usize;
    if credentials > 100_000 {
        return Err(at(
            spec.pool.credentials.span(),
            format!("{credentials} credentials is absurd: expected at most 100000"),
        ));
    }
    for (list, key) in [
        (&spec.pool.expired, "expired"),
        (&spec.pool.failing_refresh, "failing_refresh"),
        (&spec.pool.hanging_refresh, "hanging_refresh"),
        (&spec.pool.erroring_refresh, "erroring_refresh"),
        (&spec.pool.revoked, "revoked"),
    ] {
        if let Some(bad) = list.get_ref().iter().find(|&&i| i >= credentials) {
            return Err(at(
                list.span(),
                format!("`pool.{key}` names credential {bad}, but the pool has credentials 0..{}: expected indices below `pool.credentials`", credentials - 1),
            ));
        }
    }

    let target = match &spec.target {
        Some(t) => Some(super::target_plan::validate(path, text, t)?),
        None => None,
    };
    let (fleet, redis_rtt) = match &spec.fleet {
        Some(f) => {
            let (plan, rtt) = fleet_plan(f.get_ref(), &at)?;
            if target.is_some() {
                return Err(at(
                    f.span(),
                    "[fleet] and [target] both given: a target proxy is one process; expected one of them".into(),
                ));
            }
            if spec.mode == Mode::Real {
                return Err(at(
                    f.span(),
                    "[fleet] runs in virtual time only (real-time fleets are `credpool serve` processes over a real                      Redis, docs/fleet.md): expected mode = \"virtual\""
                        .into(),
                ));
            }
            (Some(plan), rtt)
        }
        None => (None, DEFAULT_REDIS_RTT),
    };
    // With a `[target]`, built-in strategies run only when `strategies` is written.
    let strategies = if target.is_some() && spec.strategies.span() == (0..0) {
        Vec::new()
    } else {
        resolve_strategies(spec.strategies.get_ref()).map_err(|m| at(spec.strategies.span(), m))?
    };

    let load = &spec.load;
    let requests = load.requests.get_ref().0;
    let stages: Vec<(Duration, f64, f64)> = match (load.model, load.rate, load.stages.as_slice()) {
        (LoadModel::Open, Some(_), [_, ..]) => {
            return Err(at(
                load.requests.span(),
                "`load.rate` and `[[load.stages]]` both given: expected one of them".into(),
            ))
        }
        (LoadModel::Open, Some(r), []) => {
            if r.0 <= 0.0 {
                return Err(at(
                    load.requests.span(),
                    "`load.rate` must be above 0 for an open load".into(),
                ));
            }
            vec![(Duration::MAX, r.0, r.0)]
        }
        (LoadModel::Open, None, []) => {
            return Err(at(
                load.requests.span(),
                "an open load needs `load.rate` (requests per second) or `[[load.stages]]`".into(),
            ))
        }
        (LoadModel::Open, None, stages) => stages
            .iter()
            .map(|s: &StageSpec| (s.duration.0, s.rate.0, s.ramp_to.unwrap_or(s.rate).0))
            .collect(),
        (_, rate, stages) => {
            if rate.is_some() || !stages.is_empty() {
                return Err(at(
                    load.requests.span(),
                    "`load.rate` and `[[load.stages]]` apply to `model = \"open\"` only".into(),
                ));
            }
            Vec::new()
        }
    };
    if load.model == LoadModel::Open && stages.iter().all(|(_, a, b)| *a <= 0.0 && *b <= 0.0) {
        return Err(at(
            load.requests.span(),
            "every stage has rate 0: no request would ever arrive".into(),
        ));
    }
    if load.models.is_empty() {
        return Err(at(
            load.requests.span(),
            "`load.models` is empty: expected at least one model name".into(),
        ));
    }
    if load.users.0 > u32::MAX as u64 {
        return Err(at(load.requests.span(), "`load.users` is too large".into()));
    }

    let (lifetime, margin, ahead) = (
        spec.pool.token_lifetime.get_ref().0,
        spec.pool.refresh_margin.get_ref().0,
        spec.pool.refresh_ahead.get_ref().0,
    );
    let policy = Policy {
        calls_per_rotation: spec.pool.calls_per_rotation.0,
        refresh_margin_ms: margin.as_millis() as i64,
        refresh_ahead_ms: (margin + ahead).as_millis() as i64,
        auto_ban_codes: spec.pool.auto_ban_codes.clone(),
        refresh_backoff: refresh_backoff(&spec.pool).map_err(|(span, msg)| at(span, msg))?,
        ..Policy::default()
    };
    let mut warnings = Vec::new();
    let window = policy.refresh_window_ms();
    if let Some(spans) = swallowed_by(lifetime.as_millis() as i64, policy.refresh_margin_ms, window) {
        // At the figure that does it; at the lifetime (or the margin) when it is a default.
        let figure = if spans == "refresh_margin" {
            &spec.pool.refresh_margin
        } else {
            &spec.pool.refresh_ahead
        };
        let span = [figure, &spec.pool.token_lifetime, &spec.pool.refresh_margin]
            .into_iter()
            .map(|f| f.span())
            .find(|s| *s != (0..0))
            .unwrap_or(0..0);
        let reach = if spans == "refresh_margin" {
            margin
        } else {
            margin + ahead
        };
        warnings.push(InputWarning(at(
            span,
            format!(
                "`pool.{spans}` ({}) is not shorter than `pool.token_lifetime` ({}): a fresh token would already be \
                 inside it, so the token's own lifetime bounds its refresh instead (ahead from 1/2 of it, due from 3/4; \
                 see docs/strategies.md)",
                format_duration(reach),
                format_duration(lifetime),
            ),
        )));
    }

    let c = spec.costs;
    let costs = Costs {
        check_rotation: c.check_rotation.0,
        load_credential: c.load_credential.0,
        check_quota: c.check_quota.0,
        file_lock: c.file_lock.0,
        file_read: c.file_read.0,
        toml_parse: c.toml_parse.0,
        state_update: c.state_update.0,
        toml_dump: c.toml_dump.0,
        file_write: c.file_write.0,
        fsync: c.fsync.0,
        event_loop_stall: c.event_loop_stall.0,
        log_line: c.log_line.0,
        pace: Default::default(),
    };

    let u = &spec.upstream;
    let rates = StatusRates {
        status_429: u.status_429_rate.0,
        status_5xx: u.status_5xx_rate.0,
        status_401: u.status_401_rate.0,
        status_403: u.status_403_rate.0,
    };
    let mut faults = Vec::new();
    for f in &u.faults {
        let s = f.get_ref();
        if s.until <= s.from {
            return Err(at(f.span(), "a fault window needs `until` after `from`".into()));
        }
        let r = StatusRates {
            status_429: s.status_429_rate.0,
            status_5xx: s.status_5xx_rate.0,
            status_401: s.status_401_rate.0,
            status_403: s.status_403_rate.0,
        };
        if r.status_429 + r.status_5xx + r.status_401 + r.status_403 > 1.0 + 1e-9 {
            return Err(at(
                f.span(),
                "the status rates of a fault window add up to more than 1".into(),
            ));
        }
        if s.refresh_failure_rate.0 + s.refresh_5xx_rate.0 > 1.0 + 1e-9 {
            return Err(at(
                f.span(),
                "`refresh_failure_rate` and `refresh_5xx_rate` of a fault window add up to more than 1".into(),
            ));
        }
        faults.push(FaultWindow {
            from: s.from.0,
            until: s.until.0,
            rates: r,
            refresh_failure_rate: s.refresh_failure_rate.0,
            refresh_5xx_rate: s.refresh_5xx_rate.0,
            extra_latency: s.extra_latency.0,
            reset_rate: s.reset_rate.0,
        });
    }
    if rates.status_429 + rates.status_5xx + rates.status_401 + rates.status_403 > 1.0 + 1e-9 {
        return Err(InputError::at(
            path,
            text,
            None,
            "`upstream` status rates add up to more than 1: expected a total of at most 1.0",
        ));
    }
    if u.refresh_failure_rate.0 + u.refresh_5xx_rate.0 > 1.0 + 1e-9 {
        return Err(InputError::at(
            path,
            text,
            None,
            "`upstream.refresh_failure_rate` and `upstream.refresh_5xx_rate` add up to more than 1: expected a total of at most 1.0",
        ));
    }
    let w = &u.mock;
    if let Some(b) = &w.rate_limit_body {
        if *b.get_ref() != RateLimitBody::Neither && u.retry_delay.is_none() {
            return Err(at(
                b.span(),
                "`upstream.mock.rate_limit_body` carries a delay, but `upstream.retry_delay` is not set: expected `upstream.retry_delay = \"...\"` or `rate_limit_body = \"neither\"`".into(),
            ));
        }
    }
    let sse_chunks = w.sse_chunks.get_ref().0;
    if sse_chunks > MAX_SSE_CHUNKS {
        return Err(at(
            w.sse_chunks.span(),
            format!("`upstream.mock.sse_chunks` is {sse_chunks}: expected at most {MAX_SSE_CHUNKS} chunks per stream"),
        ));
    }
    let wire = WireModel {
        rate_limit_body: w.rate_limit_body.as_ref().map(|b| *b.get_ref()),
        reset_rate: w.reset_rate.0,
        slow_body_rate: w.slow_body_rate.0,
        slow_body: w.slow_body.0,
        sse_chunks: sse_chunks as u32,
        sse_interval: w.sse_interval.0,
    };
    let upstream = UpstreamModel {
        seed: spec.seed,
        api_latency: u.api_latency,
        refresh_latency: u.refresh_latency,
        rates,
        refresh_failure_rate: u.refresh_failure_rate.0,
        refresh_5xx_rate: u.refresh_5xx_rate.0,
        failing_refresh: spec.pool.failing_refresh.get_ref().clone(),
        hanging_refresh: spec.pool.hanging_refresh.get_ref().clone(),
        erroring_refresh: spec.pool.erroring_refresh.get_ref().clone(),
        revoked: spec.pool.revoked.get_ref().clone(),
        refresh_timeout: u.refresh_timeout.0,
        retry_delay: u.retry_delay.map(|s| s.0),
        token_lifetime_s: spec.pool.token_lifetime.get_ref().0.as_secs() as i64,
        faults,
        wire,
    };

    let mut expectations = Vec::new();
    for e in &spec.expect {
        let span = e.span();
        let s = e.get_ref();
        let the_target = target.as_ref().is_some_and(|t| t.name == s.strategy);
        let strategy: Target = if the_target {
            Target::TheTarget
        } else {
            s.strategy.parse().map_err(|m: String| {
                let named = match &target {
                    Some(t) => format!("{m}, or {:?} (the [target])", t.name),
                    None => m,
                };
                at(span.clone(), named)
            })?
        };
        let metric: Metric = s.metric.parse().map_err(|m: String| at(span.clone(), m))?;
        if the_target && !metric.of_targets() {
            return Err(at(
                span,
                format!(
                    "metric {:?} is not measured for a [target]: expected latency.<stat>, throughput_rps, errors, requests, status_429, refreshes, lost_updates or audit.<figure>",
                    s.metric
                ),
            ));
        }
        if !the_target && matches!(metric, Metric::Audit(_)) {
            return Err(at(
                span,
                format!(
                    "{:?} is a figure of a [target]'s audit: expected `strategy` to name the scenario's [target]",
                    s.metric
                ),
            ));
        }
        let check = match (s.at_most, s.at_least, s.approx) {
            (Some(b), None, None) => Check::AtMost(b.value()),
            (None, Some(b), None) => Check::AtLeast(b.value()),
            (None, None, Some(b)) => Check::Approx {
                value: b.value(),
                tolerance: s.tolerance.map(|t| t.0).unwrap_or(0.01),
            },
            _ => {
                return Err(at(
                    span,
                    "an [[expect]] needs exactly one of `at_most`, `at_least` or `approx`".into(),
                ))
            }
        };
        if s.tolerance.is_some() && s.approx.is_none() {
            return Err(at(span, "`tolerance` only applies to `approx`".into()));
        }
        expectations.push(Expectation {
            strategy,
            metric,
            check,
            mode: s.mode,
            note: s.note.clone(),
        });
    }
    for r in &spec.reference {
        if r.strategy != "all" {
            r.strategy
                .parse::<StrategyName>()
                .map_err(|m| InputError::at(path, text, None, format!("[[reference]]: {m}")))?;
        }
        r.metric
            .parse::<Metric>()
            .map_err(|m| InputError::at(path, text, None, format!("[[reference]]: {m}")))?;
    }

    let load_plan = LoadPlan {
        model: load.model,
        requests,
        users: load.users.0 as u32,
        hot_user_share: load.hot_user_share.0,
        think_time: load.think_time.0,
        arrival: load.arrival,
        stages,
        models: load.models.iter().map(|m| Arc::from(m.as_str())).collect(),
    };
    let watchdog = spec
        .watchdog
        .map(|s| s.0)
        .unwrap_or_else(|| default_watchdog(&load_plan, &costs, &upstream));
    let sweep = match &spec.sweep {
        Some(sw) => Some(super::sweep::validate(path, text, sw, load.model, load.rate.is_some())?),
        None => None,
    };
    let name = spec.name.get_ref().trim().to_string();
    if name.is_empty() || name.contains(['/', '\\']) {
        return Err(at(
            spec.name.span(),
            "`name` must be a non-empty name without slashes (it names report files)".into(),
        ));
    }

    Ok(Plan {
        name,
        description: spec.description,
        path: path.to_path_buf(),
        sha256: hex(&Sha256::digest(text.as_bytes())),
        seed: spec.seed,
        mode: spec.mode,
        strategies,
        policy,
        credentials,
        token_lifetime: spec.pool.token_lifetime.get_ref().0,
        expired: spec.pool.expired.get_ref().clone(),
        expire_all_at: spec.pool.expire_all_at.map(|s| s.0),
        store: spec.pool.store,
        options: StrategyOptions {
            record_outcomes: spec.pool.record_outcomes,
            permits_per_credential: spec.pool.permits_per_credential.0 as usize,
            shards: spec.pool.shards.map(|s| s.0 as usize).unwrap_or(0),
            daily_limit: spec.pool.daily_limit.map(|d| d.0),
            redis_rtt,
        },
        costs,
        load: load_plan,
        upstream,
        watchdog,
        expectations,
        references: spec.reference,
        sweep,
        target,
        fleet,
        warnings,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `[fleet]`'s plan and modelled round trip, or the error at the key that is out of bounds.
fn fleet_plan(
    f: &FleetSpec,
    at: &dyn Fn(std::ops::Range<usize>, String) -> InputError,
) -> Result<(FleetPlan, Duration), InputError> {
    let instances = f.instances.get_ref().0;
    if instances > MAX_INSTANCES {
        return Err(at(
            f.instances.span(),
            format!("`fleet.instances` = {instances}: expected at most {MAX_INSTANCES}"),
        ));
    }
    let rtt = match &f.redis_rtt {
        Some(r) if r.get_ref().0 > MAX_REDIS_RTT => {
            return Err(at(
                r.span(),
                format!(
                    "`fleet.redis_rtt` = {}: a Redis round trip of more than {} is no Redis anyone runs; expected at most that",
                    format_duration(r.get_ref().0),
                    format_duration(MAX_REDIS_RTT)
                ),
            ))
        }
        Some(r) => r.get_ref().0,
        None => DEFAULT_REDIS_RTT,
    };
    let plan = FleetPlan {
        instances: instances as usize,
        spread: f.spread,
    };
    Ok((plan, rtt))
}

/// `["all"]` or strategy names, in report order, without repeats.
pub fn resolve_strategies(names: &[String]) -> Result<Vec<StrategyName>, String> {
    if names.is_empty() {
        return Err("`strategies` is empty: expected strategy names or [\"all\"]".into());
    }
    let mut out = Vec::new();
    for n in names {
        if n == "all" {
            out.extend_from_slice(StrategyName::ALL);
        } else {
            out.push(n.parse::<StrategyName>()?);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A watchdog far beyond any plausible finish: ten times a serial execution of every request.
pub(crate) fn default_watchdog(load: &LoadPlan, costs: &Costs, upstream: &UpstreamModel) -> Duration {
    let per_request = costs.check_rotation
        + costs.load_credential
        + costs.check_quota
        + costs.file_lock * 2
        + (costs.file_read + costs.toml_parse) * 2
        + costs.state_update
        + costs.toml_dump
        + costs.file_write
        + costs.log_line * 10
        + costs.fsync * 2
        + costs.event_loop_stall
        + upstream.api_latency.mean()
        + upstream.refresh_latency.mean()
        + Duration::from_millis(1);
    let arrival_span: Duration = load
        .stages
        .iter()
        .map(|(d, a, b)| {
            if *d == Duration::MAX {
                Duration::from_secs_f64(load.requests as f64 / a.max(*b).max(1e-9))
            } else {
                *d
            }
        })
        .sum();
    let think = load.think_time * (load.requests.min(1_000_000) as u32);
    (per_request * (load.requests.min(1_000_000) as u32) * 10 + arrival_span * 2 + think + Duration::from_secs(60))
        .min(Duration::from_secs(30 * 24 * 3600))
}

/// `pool.refresh_backoff` and `pool.refresh_backoff_max`, checked: a positive first ban, a
/// longest one no shorter, and no longest one without a first.
/// An error is the offending key's span and what was expected.
fn refresh_backoff(
    pool: &super::spec::PoolSpec,
) -> Result<Option<crate::model::RefreshBackoff>, (std::ops::Range<usize>, String)> {
    let ms = |s: &toml::Spanned<crate::duration::Span>| s.get_ref().0.as_millis() as i64;
    let Some(first) = &pool.refresh_backoff else {
        return match &pool.refresh_backoff_max {
            Some(max) => Err((
                max.span(),
                "`pool.refresh_backoff_max` without `pool.refresh_backoff`: expected `refresh_backoff = \"1s\"` (the first ban) beside it".into(),
            )),
            None => Ok(None),
        };
    };
    if ms(first) <= 0 {
        return Err((
            first.span(),
            "`pool.refresh_backoff` must be at least 1ms: expected e.g. \"1s\" (leave it out for the proxy's permanent disable)".into(),
        ));
    }
    let max_ms = match &pool.refresh_backoff_max {
        Some(max) if ms(max) < ms(first) => {
            return Err((
                max.span(),
                "`pool.refresh_backoff_max` is shorter than `pool.refresh_backoff`: expected the longest ban to be at least the first".into(),
            ))
        }
        Some(max) => ms(max),
        None => DEFAULT_REFRESH_BACKOFF_MAX_MS.max(ms(first)),
    };
    Ok(Some(crate::model::RefreshBackoff {
        first_ms: ms(first),
        max_ms,
    }))
}

/// The longest backed-off ban when `pool.refresh_backoff_max` is not given: 10 minutes.
const DEFAULT_REFRESH_BACKOFF_MAX_MS: i64 = 600_000;
