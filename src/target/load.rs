//! A scenario's `[load]` sent to a target, open loop: one task per request, started at its
//! intended start, judged by [`super::protocol`], timed from the intended start.
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
    let intended: Vec<Duration> = if load.is_open() {
        Arrivals::new(load, seed).take(load.requests as usize).collect()
    } else {
        // A burst: every request at once.
        vec![Duration::ZERO; load.requests as usize]
    };
    let start = Instant::now() + Duration::from_millis(20);
    let mut tasks = tokio::task::JoinSet::new();
    for (n, at) in intended.into_iter().enumerate() {
        let client = client.clone();
        let mut endpoint = endpoint.clone();
        endpoint.model = model
            .map(str::to_string)
            .unwrap_or_else(|| model_of(load, n as u64).to_string());
        let endpoint = Arc::new(endpoint);
        tasks.spawn(async move {
            let due = start + at;
            tokio::time::sleep_until(due).await;
            let late = Instant::now().saturating_duration_since(due);
            let (verdict, _) = protocol::call(&client, &endpoint).await;
            (
                verdict,
                late,
                Instant::now().saturating_duration_since(due),
                Instant::now(),
            )
        });
    }
    let mut out = ClientSide::default();
    let mut last = start;
    while let Some(joined) = tasks.join_next().await {
        let Ok((verdict, late, latency, done)) = joined else {
            continue;
        };
        out.requests += 1;
        out.lateness.record(late);
        out.latency.record(latency);
        last = last.max(done);
        let since_start = done.saturating_duration_since(start);
        out.intervals.record(since_start, latency);
        let bucket = (since_start.as_millis() / BUCKET.as_millis()) as usize;
        if out.completions_per_bucket.len() <= bucket {
            out.completions_per_bucket.resize(bucket + 1, 0);
        }
        out.completions_per_bucket[bucket] += 1;
        match verdict {
            Verdict::Success => out.successes += 1,
            Verdict::Status(s) => *out.statuses.entry(s).or_default() += 1,
            Verdict::ClientError(_) => out.client_errors += 1,
            Verdict::Hung => out.hung += 1,
            Verdict::Transport(_) => out.transport_errors += 1,
        }
    }
    out.wall = last.saturating_duration_since(start);
    out
}
