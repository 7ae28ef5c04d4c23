//! `summary.json`: the complete, re-analysable record of a run.
//!
//! Every figure a report shows comes from here, so `credpool report DIR` can redraw a report from
//! the JSON alone, and `credpool compare` can set two runs side by side. The histograms are kept in
//! HdrHistogram's V2 base64 form. The schema is documented in docs/reports.md; `schema` is bumped
//! whenever a field changes meaning.

use crate::analysis::Prediction;
use crate::metrics::expectation::ExpectationResult;
use crate::metrics::fairness::FairnessSummary;
use crate::metrics::herd::HerdSummary;
use crate::metrics::histogram::LatencyStats;
use crate::metrics::recorder::TimelinePoint;
use crate::metrics::self_audit::SelfAudit;
use crate::metrics::Phase;
use crate::metrics::StrategyRun;
use crate::scenario::spec::ReferenceSpec;
use crate::scenario::suite::ScenarioRun;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub schema: u32,
    pub credpool_version: String,
    pub git_revision: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub wall_time_s: f64,
    pub machine: Machine,
    /// The command line that produced the run.
    pub command: Vec<String>,
    pub scenarios: Vec<ScenarioSummary>,
    /// What the scenarios run so far say about the analysis, the shipped code and the remedies
    /// (recomputed from `scenarios` after each one).
    #[serde(default)]
    pub findings: super::findings::Findings,
    /// The load sweeps of scenarios with a `[sweep]` table, run with them: where their pages are
    /// and what they found. Absent when there were none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweeps: Vec<SweepLink>,
}

/// A load sweep run with the scenarios, as the run's `index.html` links it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepLink {
    pub scenario: String,
    /// `sweep.html`, relative to the run's folder.
    pub html: String,
    /// `sweep.json`, relative to the run's folder.
    pub json: String,
    /// `"rates"` or `"users"`.
    pub kind: String,
    pub levels: Vec<f64>,
    pub slo_p99_ms: Option<f64>,
    /// Per strategy: the sustainable rate (rate sweeps with an SLO) and the knee's level.
    pub strategies: Vec<SweepLinkStrategy>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepLinkStrategy {
    pub strategy: String,
    pub sustainable_rps: Option<f64>,
    pub knee: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub os: String,
    pub arch: String,
}

impl Machine {
    pub fn this() -> Machine {
        Machine {
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioSummary {
    pub name: String,
    pub description: String,
    pub file: String,
    pub sha256: String,
    pub seed: u64,
    pub mode: String,
    pub load_model: String,
    /// Burst and closed loads are closed: a slow system slows its own arrivals.
    pub closed_loop: bool,
    pub credentials: usize,
    pub store: String,
    pub wall_time_s: f64,
    pub references: Vec<ReferenceSpec>,
    pub results: Vec<ResultSummary>,
}

/// One scenario × one strategy.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResultSummary {
    pub scenario: String,
    pub strategy: String,
    pub mode: String,
    pub requests: u64,
    pub errors: u64,
    pub status_429: u64,
    /// Requests that found no usable credential.
    pub exhausted: u64,
    pub throughput_rps: f64,
    pub latency_ms: LatencyStats,
    /// Per phase: lock_wait, hold, refresh_wait, upstream, bookkeeping.
    pub phases_ms: BTreeMap<String, LatencyStats>,
    pub refreshes: u64,
    pub refresh_failures: u64,
    /// `refresh_failures` by kind: what the token endpoint did.
    #[serde(default)]
    pub refresh_invalid_grants: u64,
    #[serde(default)]
    pub refresh_server_errors: u64,
    #[serde(default)]
    pub refresh_timeouts: u64,
    pub disables: u64,
    pub store_updates: u64,
    pub store_writes: u64,
    pub fsyncs: u64,
    pub lost_updates: u64,
    pub acknowledged_updates: u64,
    pub resurrected_accounts: u64,
    /// Accounts whose last acknowledged refreshed token is not the one on disk.
    #[serde(default)]
    pub stale_tokens: u64,
    /// Requests sent with an account whose disable the store had already acknowledged.
    #[serde(default)]
    pub served_disabled: u64,
    /// Accounts a change of account passed over though they could serve (`metrics::served`).
    #[serde(default)]
    pub rotation_skips: u64,
    /// The most acquisitions of one account in a row, fleet-wide (absent from older files).
    #[serde(default)]
    pub longest_turn: u64,
    /// The most leases of one account over the fewest (absent from older files).
    #[serde(default)]
    pub account_calls_ratio: Option<f64>,
    pub file_readable: bool,
    pub file_empty: bool,
    /// The longest series ban the final file holds, hours past the run's end (0: none left).
    /// Absent from files written before it.
    #[serde(default)]
    pub longest_ban_hours: f64,
    /// `as_shipped`: usage-counter increments not yet flushed at the run's end (lost by a crash
    /// then); 0 for every strategy that writes its counts with each request.
    #[serde(default)]
    pub usage_unflushed: u64,
    /// The watchdog's report when the run hung.
    pub deadlock: Option<String>,
    /// When the run hung: how many unfinished requests were at each step the strategy marked.
    #[serde(default)]
    pub stuck: Vec<crate::metrics::steps::StuckAt>,
    pub predictions: Vec<Prediction>,
    pub expectations: Vec<ExpectationResult>,
    pub mean_in_flight: f64,
    pub wall_time_s: f64,
    /// Total latency, HdrHistogram V2 (ns), base64.
    pub histogram_v2: String,
    /// Per-phase histograms, same encoding.
    pub phase_histograms_v2: BTreeMap<String, String>,
    /// A uniform sample of at most 2000 requests, for timeline charts.
    pub timeline: Vec<TimelinePoint>,
    /// True when `timeline` is a sample rather than every request.
    pub timeline_sampled: bool,
    pub throughput_bucket_s: f64,
    /// Completions per bucket, from the start of the run.
    pub throughput_counts: Vec<u64>,
    /// Total latency per interval of completions (1 s, wider for long runs), compressed V2: what
    /// `hlog/` interval logs are written from. Absent from files written before issue 18.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interval_histograms: Vec<crate::metrics::intervals::IntervalHistogram>,
    // --- fairness, herd, self-audit, repetitions (issue 17). Absent from files written before
    // them, hence optional; `credpool report` and `compare` read both.
    /// Who got served: Jain's indices, the worst user against the median one, starvation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness: Option<FairnessSummary>,
    /// What refreshes did to the requests: herd size, overlap, refreshes per expiry, waste.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub herd: Option<HerdSummary>,
    /// The harness's own lateness and dropped samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_audit: Option<SelfAudit>,
    /// `credpool run --repeat N`: one entry per repetition (its own seed), repetition 0 first,
    /// which is the run every other field of this entry describes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repetitions: Vec<Repetition>,
    // --- target mode (issue 15). Absent from strategies' results and from older files.
    /// A `[target]` result: the audit from the mock's journal and the target's accounts file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<crate::target::audit::TargetAudit>,
    /// A `[target]` result: what the client side and the mock measured besides the latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetFigures>,
}

/// The figures of a target run that a strategy's result has no field for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetFigures {
    pub successes: u64,
    /// Non-2xx answers to clients, by status.
    pub statuses: BTreeMap<u16, u64>,
    pub client_errors: u64,
    pub hung: u64,
    pub transport_errors: u64,
    /// The mock's own service time (its journal: arrival to answer finished), ms.
    pub mock_service_ms: LatencyStats,
    pub upstream_requests: u64,
    /// Whether the target ignored SIGTERM and was killed.
    pub killed: bool,
}

/// The figures of one repetition that `credpool compare` tests (one value per repetition).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Repetition {
    pub seed: u64,
    pub requests: u64,
    pub errors: u64,
    pub throughput_rps: f64,
    pub latency_ms: LatencyStats,
}

impl Repetition {
    pub fn of(seed: u64, run: &StrategyRun) -> Repetition {
        Repetition {
            seed,
            requests: run.recorder.requests,
            errors: run.recorder.errors,
            throughput_rps: run.throughput_rps(),
            latency_ms: run.latency(),
        }
    }

    /// A `[target]` run's repetition figures, as the client saw them.
    pub fn of_target(seed: u64, run: &crate::target::runner::TargetRun) -> Repetition {
        let c = &run.client;
        Repetition {
            seed,
            requests: c.requests,
            errors: c.requests - c.successes,
            throughput_rps: run.throughput_rps(),
            latency_ms: c.latency.stats(),
        }
    }
}

impl ResultSummary {
    pub fn from_run(run: &StrategyRun) -> ResultSummary {
        let r = &run.recorder;
        ResultSummary {
            scenario: run.scenario.clone(),
            strategy: run.strategy.to_string(),
            mode: run.mode.as_str().into(),
            requests: r.requests,
            errors: r.errors,
            status_429: r.status_429,
            exhausted: r.exhausted,
            throughput_rps: run.throughput_rps(),
            latency_ms: run.latency(),
            phases_ms: Phase::ALL
                .iter()
                .map(|p| (p.as_str().to_string(), run.phase(*p)))
                .collect(),
            refreshes: run.stats.refreshes,
            refresh_failures: run.stats.refresh_failures,
            refresh_invalid_grants: run.stats.refresh_invalid_grants,
            refresh_server_errors: run.stats.refresh_server_errors,
            refresh_timeouts: run.stats.refresh_timeouts,
            disables: run.stats.disables,
            store_updates: run.store.updates,
            store_writes: run.store.writes,
            fsyncs: run.store.fsyncs,
            lost_updates: run.audit.lost_updates,
            acknowledged_updates: run.audit.acknowledged,
            resurrected_accounts: run.audit.resurrected,
            stale_tokens: run.audit.stale_tokens,
            served_disabled: run.served.served_disabled,
            rotation_skips: run.served.rotation_skips,
            longest_turn: run.served.longest_turn,
            account_calls_ratio: Some(run.served.account_calls_ratio()).filter(|r| r.is_finite()),
            file_readable: run.audit.file_readable,
            file_empty: run.audit.file_empty,
            longest_ban_hours: run.audit.longest_ban_hours(),
            usage_unflushed: run.stats.usage_unflushed,
            deadlock: run.deadlock.clone(),
            stuck: run.stuck.clone(),
            predictions: run.predictions.clone(),
            expectations: run.expectations.clone(),
            mean_in_flight: r.mean_in_flight(),
            wall_time_s: run.wall_time.as_secs_f64(),
            histogram_v2: r.total.to_base64_v2(),
            phase_histograms_v2: r
                .phases
                .iter()
                .map(|(p, h)| (p.as_str().to_string(), h.to_base64_v2()))
                .collect(),
            timeline: {
                let mut t = r.timeline.clone();
                t.sort_by_key(|p| p.number);
                t
            },
            timeline_sampled: r.requests as usize > r.timeline.len(),
            throughput_bucket_s: r.bucket_width().as_secs_f64(),
            throughput_counts: r.buckets.clone(),
            interval_histograms: r.intervals.intervals(),
            fairness: Some(r.fairness.summary(
                r.last_completion,
                crate::metrics::fairness::starvation_window(std::time::Duration::from_secs_f64(
                    r.total.quantile_ms(0.5) / 1e3,
                )),
            )),
            herd: Some(run.herd.clone()),
            self_audit: Some(SelfAudit::of(run)),
            repetitions: Vec::new(),
            audit: None,
            target: None,
        }
    }

    /// A `[target]` run's result, in the strategy column under the target's name (mode
    /// `target`). Figures a proxy does not expose (phases, store counters, the model's
    /// predictions) are zero or empty; what the audit measured is in `audit`.
    pub fn from_target(plan: &crate::scenario::Plan, run: &crate::target::runner::TargetRun) -> ResultSummary {
        let c = &run.client;
        let a = &run.audit;
        let errors = c.requests - c.successes;
        ResultSummary {
            scenario: plan.name.clone(),
            strategy: run.name.clone(),
            mode: "target".into(),
            requests: c.requests,
            errors,
            status_429: c.statuses.get(&429).copied().unwrap_or(0),
            exhausted: 0,
            throughput_rps: run.throughput_rps(),
            latency_ms: c.latency.stats(),
            phases_ms: BTreeMap::new(),
            refreshes: a.refreshes,
            refresh_failures: 0,
            refresh_invalid_grants: 0,
            refresh_server_errors: 0,
            refresh_timeouts: 0,
            disables: 0,
            store_updates: 0,
            store_writes: 0,
            fsyncs: 0,
            lost_updates: a.lost_updates.unwrap_or(0),
            acknowledged_updates: 0,
            resurrected_accounts: 0,
            stale_tokens: 0,
            served_disabled: 0,
            rotation_skips: 0,
            longest_turn: 0,
            account_calls_ratio: None,
            file_readable: a.lost_updates.is_some(),
            file_empty: false,
            longest_ban_hours: 0.0,
            usage_unflushed: 0,
            deadlock: None,
            stuck: Vec::new(),
            predictions: Vec::new(),
            expectations: Vec::new(),
            mean_in_flight: 0.0,
            wall_time_s: run.wall_time.as_secs_f64(),
            histogram_v2: c.latency.to_base64_v2(),
            phase_histograms_v2: BTreeMap::new(),
            timeline: Vec::new(),
            timeline_sampled: false,
            throughput_bucket_s: crate::target::load::BUCKET.as_secs_f64(),
            throughput_counts: c.completions_per_bucket.clone(),
            interval_histograms: c.intervals.intervals(),
            fairness: None,
            herd: None,
            self_audit: Some(SelfAudit::real_time(&c.lateness, &run.timer_lag)),
            repetitions: Vec::new(),
            audit: Some(a.clone()),
            target: Some(TargetFigures {
                successes: c.successes,
                statuses: c.statuses.clone(),
                client_errors: c.client_errors,
                hung: c.hung,
                transport_errors: c.transport_errors,
                mock_service_ms: run.mock_service.stats(),
                upstream_requests: run.upstream_requests,
                killed: run.killed,
            }),
        }
    }

    pub fn failed_expectations(&self) -> impl Iterator<Item = &ExpectationResult> {
        self.expectations.iter().filter(|e| !e.passed)
    }
}

impl ScenarioSummary {
    pub fn from_run(s: &ScenarioRun) -> ScenarioSummary {
        let p = &s.plan;
        ScenarioSummary {
            name: p.name.clone(),
            description: p.description.clone(),
            file: p.path.display().to_string(),
            sha256: p.sha256.clone(),
            seed: p.seed,
            mode: p.mode.as_str().into(),
            load_model: format!("{:?}", p.load.model).to_lowercase(),
            closed_loop: !p.load.is_open(),
            credentials: p.credentials,
            store: p.store.to_string(),
            wall_time_s: s.wall_time.as_secs_f64(),
            references: p.references.clone(),
            results: s.runs.iter().map(ResultSummary::from_run).collect(),
        }
    }

    /// The repetitions of one scenario (`credpool run --repeat N`, repetition 0 first): the first
    /// in full, and each result's per-repetition figures from all of them (matched by strategy).
    pub fn from_repetitions(reps: &[ScenarioRun]) -> ScenarioSummary {
        let mut out = ScenarioSummary::from_run(&reps[0]);
        for r in &mut out.results {
            r.repetitions = reps
                .iter()
                .filter_map(|rep| {
                    rep.runs
                        .iter()
                        .find(|run| run.strategy.to_string() == r.strategy)
                        .map(|run| Repetition::of(rep.plan.seed, run))
                })
                .collect();
        }
        out.wall_time_s = reps.iter().map(|r| r.wall_time.as_secs_f64()).sum();
        out
    }
}

impl Summary {
    /// Adds a scenario's results and recomputes the findings.
    pub fn push(&mut self, scenario: ScenarioSummary) {
        self.scenarios.push(scenario);
        self.findings = super::findings::compute(&self.scenarios);
    }

    /// Every failed expectation, as `scenario/strategy: metric value (bound)` lines.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.scenarios {
            for r in &s.results {
                for e in r.failed_expectations() {
                    out.push(format!(
                        "{}/{}: {} = {:.3} (expected {})",
                        s.name, r.strategy, e.metric, e.value, e.bound
                    ));
                }
            }
        }
        out
    }
}
