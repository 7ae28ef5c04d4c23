//! A scenario's `[load]` sent to a target: open loop (one task per request, started at its
//! intended start, timed from it), a burst, or closed users (each sending its next request when
//! the previous one is answered, after `think_time`, timed from the send); each answer judged by
//! [`super::protocol`].
//!
//! Why not [`crate::scenario::http_load`]'s fixed set of keep-alive connections: a target can
//! hang a request forever (200 headers, then nothing), and a hung request would hold its
//! connection and delay every later arrival on it, turning a target's defect into the
//! generator's lateness. Here each request is independent and bounded by the target's `timeout`,
//! so the run ends by itself whatever the target does. Lateness (actual send minus intended start)
//! is still recorded, so a verdict is never an artefact of the generator.

use super::protocol::{self, Endpoint, Verdict};
use crate::metrics::histogram::LatencyHistogram;
use crate::metrics::intervals::IntervalRecorder;
use crate::scenario::arrivals::{model_of, Arrivals};
use crate::scenario::plan::LoadPlan;
use crate::scenario::spec::LoadModel;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What the load saw, client side.
#[derive(Debug, Default)]
pub struct ClientSide {
    pub requests: u64,
    pub successes: u64,
    /// Non-2xx answers by status.
    pub statuses: std::collections::BTreeMap<u16, u64>,
    /// 2xx answers whose body was an error, truncated or empty.
    pub client_errors: u64,
    /// No complete answer within the timeout.
    pub hung: u64,
    pub transport_errors: u64,
    /// From each intended start to the whole answer (successes and failures alike; a hung
    /// request counts its timeout).
    pub latency: LatencyHistogram,
    /// From each intended start to its send.
    pub lateness: LatencyHistogram,
    /// The latencies per second of the run (by when each request finished, counted from the
    /// first intended start), the same recorder built-in strategies' runs fill: the `.hlog`
    /// interval log's source.
    pub intervals: IntervalRecorder,
    /// First intended start to the last answer.
    pub wall: Duration,
    /// Completions per [`BUCKET`], for the report's throughput chart.
    pub completions_per_bucket: Vec<u64>,
}

/// Width of [`ClientSide::completions_per_bucket`].
pub const BUCKET: Duration = Duration::from_millis(100);

/// Sends `load` (arrivals seeded by `seed`) to `endpoint`. `model`: the target's model name,
/// else the load's models in turn.
pub async fn drive(endpoint: &Endpoint, load: &LoadPlan, seed: u64, model: Option<&str>) -> ClientSide {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(256)
        .build()
        .expect("a plain HTTP client builds");
    let start = Instant::now() + Duration::from_millis(20);
    // Request `n`'s endpoint: the target's model, else the load's models in turn.
    let endpoint_for = {
        let (endpoint, load, model) = (endpoint.clone(), load.clone(), model.map(str::to_string));
        Arc::new(move |n: u64| {
            let mut endpoint = endpoint.clone();
            endpoint.model = model.clone().unwrap_or_else(|| model_of(&load, n).to_string());
            Arc::new(endpoint)
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    if load.model == LoadModel::Closed {
        // `users` clients, each sending its next request when the previous one is answered (and
        // `think_time` has passed), as the runner's closed users do: a request's intended start
        // is when its user sends it.
        let next = Arc::new(AtomicU64::new(0));
        for _ in 0..load.users {
            let (client, next) = (client.clone(), next.clone());
            let load = load.clone();
            let endpoint_for = endpoint_for.clone();
            tasks.spawn(async move {
                let mut answers = Vec::new();
                tokio::time::sleep_until(start).await;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= load.requests {
                        break;
                    }
                    let due = Instant::now();
                    let (verdict, _) = protocol::call(&client, &endpoint_for(n)).await;
                    let done = Instant::now();
                    answers.push((verdict, Duration::ZERO, done.saturating_duration_since(due), done));
                    if !load.think_time.is_zero() {
                        tokio::time::sleep(load.think_time).await;
                    }
                }
                answers
            });
        }
    } else {
        let intended: Vec<Duration> = if load.is_open() {
            Arrivals::new(load, seed).take(load.requests as usize).collect()
        } else {
            // A burst: every request at once.
            vec![Duration::ZERO; load.requests as usize]
        };
        for (n, at) in intended.into_iter().enumerate() {
            let client = client.clone();
            let endpoint = endpoint_for(n as u64);
            tasks.spawn(async move {
                let due = start + at;
                tokio::time::sleep_until(due).await;
                let late = Instant::now().saturating_duration_since(due);
                let (verdict, _) = protocol::call(&client, &endpoint).await;
                let done = Instant::now();
                vec![(verdict, late, done.saturating_duration_since(due), done)]
            });
        }
    }
    let mut out = ClientSide::default();
    let mut last = start;
    while let Some(joined) = tasks.join_next().await {
        let Ok(answers) = joined else {
            continue;
        };
        for (verdict, late, latency, done) in answers {
            last = last.max(done);
            out.record(verdict, late, latency, done.saturating_duration_since(start));
        }
    }
    out.wall = last.saturating_duration_since(start);
    out
}

impl ClientSide {
    /// One answer: its verdict, how late it was sent, its latency, and when it finished since
    /// the first intended start.
    fn record(&mut self, verdict: Verdict, late: Duration, latency: Duration, since_start: Duration) {
        self.requests += 1;
        self.lateness.record(late);
        self.latency.record(latency);
        self.intervals.record(since_start, latency);
        let bucket = (since_start.as_millis() / BUCKET.as_millis()) as usize;
        if self.completions_per_bucket.len() <= bucket {
            self.completions_per_bucket.resize(bucket + 1, 0);
        }
        self.completions_per_bucket[bucket] += 1;
        match verdict {
            Verdict::Success => self.successes += 1,
            Verdict::Status(s) => *self.statuses.entry(s).or_default() += 1,
            Verdict::ClientError(_) => self.client_errors += 1,
            Verdict::Hung => self.hung += 1,
            Verdict::Transport(_) => self.transport_errors += 1,
        }
    }
}
