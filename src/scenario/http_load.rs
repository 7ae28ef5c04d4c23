//! An open-loop HTTP load generator: a scenario's arrival process ([`super::arrivals`]) sent to
//! a server on 127.0.0.1 over a fixed number of keep-alive HTTP/1.1 connections.
//!
//! Each request has an intended start from the arrival process. A connection takes the next
//! arrival, waits for its intended start, sends it and reads the whole answer; latency counts from
//! the intended start (so a generator or a server that falls behind shows up in the latency, not
//! as a silently lower offered rate), and **lateness** (the actual send minus the intended start)
//! is recorded separately: it says whether a verdict could be an artefact of the generator.
//!
//! The client is hyper's connection-level HTTP/1.1 client, one task per connection, with no pool,
//! no proxy and no TLS: the least the generator can spend per request. A broken connection is
//! counted and reopened.

use super::arrivals::Arrivals;
use super::plan::LoadPlan;
use crate::metrics::histogram::LatencyHistogram;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What one load run measured.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Requests answered (any status).
    pub answered: u64,
    /// Requests that got no answer (connection refused, reset, closed early).
    pub transport_errors: u64,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// From each request's intended start to the end of its answer.
    pub latency: LatencyHistogram,
    /// From each request's intended start to its send.
    pub lateness: LatencyHistogram,
    /// From the first intended start to the last answer.
    pub wall: Duration,
}

impl LoadResult {
    /// Answers per second of wall time.
    pub fn throughput_rps(&self) -> f64 {
        self.answered as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    fn merge(&mut self, other: LoadResult) {
        self.answered += other.answered;
        self.transport_errors += other.transport_errors;
        for (s, n) in other.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.latency.merge(&other.latency);
        self.lateness.merge(&other.lateness);
    }
}

/// Builds request number `n` (method, path, headers, body; the `Host` header is added).
pub type MakeRequest = dyn Fn(u64) -> hyper::Request<Full<Bytes>> + Send + Sync;

/// Sends `load`'s arrivals (seeded by `seed`) to `addr` (loopback only) over `connections`
/// connections and returns when every request is answered or failed.
pub async fn run(
    addr: SocketAddr,
    load: Arc<LoadPlan>,
    seed: u64,
    connections: usize,
    make: Arc<MakeRequest>,
) -> Result<LoadResult, String> {
    if !addr.ip().is_loopback() {
        return Err(format!("{addr}: the load generator sends to loopback only"));
    }
    // The arrival process is sequential (Poisson gaps, stages): one iterator, shared. Taking the
    // next arrival is a few nanoseconds under the lock, once per request.
    let arrivals = Arc::new(Mutex::new(Arrivals::new(load, seed).enumerate()));
    let start = Instant::now() + Duration::from_millis(20);
    let host = addr.to_string();
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        let arrivals = arrivals.clone();
        let make = make.clone();
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            connection(addr, &host, start, &arrivals, &*make).await
        }));
    }
    let mut total = LoadResult::default();
    for t in tasks {
        total.merge(t.await.map_err(|e| format!("a load connection failed: {e}"))?);
    }
    total.wall = start.elapsed();
    Ok(total)
}

/// The arrival process every connection takes its next request from.
type Shared = Mutex<std::iter::Enumerate<Arrivals<Arc<LoadPlan>>>>;

async fn connect(addr: SocketAddr) -> Option<http1::SendRequest<Full<Bytes>>> {
    let tcp = TcpStream::connect(addr).await.ok()?;
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await.ok()?;
    tokio::spawn(conn);
    Some(sender)
}

async fn connection(addr: SocketAddr, host: &str, start: Instant, arrivals: &Shared, make: &MakeRequest) -> LoadResult {
    let mut out = LoadResult::default();
    let mut sender = None;
    loop {
        let Some((n, at)) = arrivals.lock().next() else {
            break;
        };
        let intended = start + at;
        tokio::time::sleep_until(intended).await;
        if sender.is_none() {
            sender = connect(addr).await;
        }
        let Some(s) = sender.as_mut() else {
            out.transport_errors += 1;
            continue;
        };
        let mut request = make(n as u64);
        if let Ok(h) = hyper::header::HeaderValue::from_str(host) {
            request.headers_mut().insert(hyper::header::HOST, h);
        }
        out.lateness.record(Instant::now().saturating_duration_since(intended));
        let answer = async {
            s.ready().await.ok()?;
            let response = s.send_request(request).await.ok()?;
            let status = response.status().as_u16();
            response.into_body().collect().await.ok()?;
            Some(status)
        }
        .await;
        match answer {
            Some(status) => {
                out.answered += 1;
                *out.statuses.entry(status).or_default() += 1;
                out.latency.record(Instant::now().saturating_duration_since(intended));
            }
            None => {
                out.transport_errors += 1;
                sender = None;
            }
        }
    }
    out
}
