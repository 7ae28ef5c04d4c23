//! `GET /metrics`: Prometheus text exposition (prometheus-client).
//!
//! Two kinds of figures. What serve counts itself as it goes (requests by route and status, the
//! lease latency histogram, bans and operator disables, proxy retries) lives in registered
//! metrics. What the strategy, the store and the lease table already count (refreshes by outcome,
//! disables, store writes and fsyncs, leases in flight and reclaimed) is read from them at scrape
//! time by a [`Collector`], so nothing is counted twice and nothing can drift.
//!
//! | metric | type | what |
//! |---|---|---|
//! | `credpool_http_requests_total{route,status}` | counter | requests answered, by matched route |
//! | `credpool_lease_seconds` | histogram | time to lease a credential (`POST /v1/lease` and the proxy's leases) |
//! | `credpool_leases_in_flight` | gauge | leases handed out and not completed |
//! | `credpool_leases_reclaimed_total` | counter | leases not completed within the TTL |
//! | `credpool_leases_exhausted_total` | counter | lease requests no credential could serve |
//! | `credpool_refreshes_total{outcome}` | counter | token refreshes: `ok`, `invalid_grant`, `server_error`, `timeout` |
//! | `credpool_disables_total{source}` | counter | accounts disabled: `policy` (failed refresh, auto-ban code), `operator` |
//! | `credpool_bans_total` | counter | 429 outcomes that banned a model series |
//! | `credpool_store_updates_total`, `credpool_store_writes_total`, `credpool_store_fsyncs_total` | counter | the store's tally |
//! | `credpool_store_failures_total` | counter | store updates that failed |
//! | `credpool_proxy_retries_total` | counter | proxied requests retried on another credential after a 429 |
//! | `credpool_fleet_degraded` | gauge | `fleet` only: 1 while serving from the local copy (Redis unreachable) |
//! | `credpool_fleet_degraded_entries_total`, `credpool_fleet_degraded_exits_total` | counter | `fleet` only: degraded mode entered and left |
//! | `credpool_fleet_degraded_acquisitions_total` | counter | `fleet` only: leases served from the local copy |
//! | `credpool_fleet_stale_commits_total` | counter | `fleet` only: refresh commits rejected by the generation fence |
//! | `credpool_fleet_shared_errors_total` | counter | `fleet` only: shared-pool operations without an answer (timeout, unreachable) |
//! | `credpool_fleet_reseeds_total` | counter | `fleet` only: empty shared pools seeded from the accounts file |

use super::leases::LeaseTable;
use super::served::Served;
use super::watched_store::WatchedStore;
use crate::store::AccountStore;
use crate::strategy::CredentialManager;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub status: u16,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RouteLabels, Counter>,
    pub lease_seconds: Histogram,
    pub bans: Counter,
    pub operator_disables: Counter,
    pub proxy_retries: Counter,
}

/// The counters other parts keep, read at scrape time.
struct Tallies {
    strategy: Arc<Served>,
    store: Arc<WatchedStore>,
    leases: Arc<LeaseTable>,
    operator_disables: Counter,
}

/// `Collector` asks for `Debug`; the sources' own state is not worth printing.
impl std::fmt::Debug for Tallies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tallies")
            .field("strategy", &self.strategy.name())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(strategy: Arc<Served>, store: Arc<WatchedStore>, leases: Arc<LeaseTable>) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RouteLabels, Counter>::default();
        registry.register(
            "credpool_http_requests",
            "Requests answered, by matched route and status",
            requests.clone(),
        );
        // 20 µs to about 40 s: a lease takes microseconds, or a refresh's round trip.
        let lease_seconds = Histogram::new(exponential_buckets(20e-6, 2.0, 22));
        registry.register(
            "credpool_lease_seconds",
            "Time to lease a credential, refresh waits included",
            lease_seconds.clone(),
        );
        let bans = Counter::default();
        registry.register("credpool_bans", "429 outcomes that banned a model series", bans.clone());
        let operator_disables = Counter::default();
        let proxy_retries = Counter::default();
        registry.register(
            "credpool_proxy_retries",
            "Proxied requests retried on another credential after a 429",
            proxy_retries.clone(),
        );
        registry.register_collector(Box::new(Tallies {
            strategy,
            store,
            leases,
            operator_disables: operator_disables.clone(),
        }));
        Metrics {
            registry,
            requests,
            lease_seconds,
            bans,
            operator_disables,
            proxy_retries,
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn labelled(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value_label, value) in values {
        let labels = [(label, *value_label)];
        ConstCounter::new(*value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Tallies {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.strategy.stats();
        let failures = s.refresh_invalid_grants + s.refresh_server_errors + s.refresh_timeouts;
        labelled(
            &mut encoder,
            "credpool_refreshes",
            "Token refreshes, by outcome",
            "outcome",
            &[
                ("ok", s.refreshes.saturating_sub(failures)),
                ("invalid_grant", s.refresh_invalid_grants),
                ("server_error", s.refresh_server_errors),
                ("timeout", s.refresh_timeouts),
            ],
        )?;
        labelled(
            &mut encoder,
            "credpool_disables",
            "Accounts disabled, by who disabled them",
            "source",
            &[("policy", s.disables), ("operator", self.operator_disables.get())],
        )?;
        counter(
            &mut encoder,
            "credpool_leases_exhausted",
            "Lease requests no credential could serve",
            s.exhausted,
        )?;
        let st = self.store.stats();
        counter(
            &mut encoder,
            "credpool_store_updates",
            "Store updates acknowledged",
            st.updates,
        )?;
        counter(
            &mut encoder,
            "credpool_store_writes",
            "Whole-file writes of the accounts file",
            st.writes,
        )?;
        counter(
            &mut encoder,
            "credpool_store_fsyncs",
            "fsync calls (file and directory)",
            st.fsyncs,
        )?;
        counter(
            &mut encoder,
            "credpool_store_failures",
            "Store updates that failed",
            self.store.failures(),
        )?;
        gauge(
            &mut encoder,
            "credpool_leases_in_flight",
            "Leases handed out and not completed",
            self.leases.in_flight() as i64,
        )?;
        counter(
            &mut encoder,
            "credpool_leases_reclaimed",
            "Leases not completed within the TTL, reclaimed",
            self.leases.reclaimed(),
        )?;
        if let Some(f) = self.strategy.fleet_figures() {
            gauge(
                &mut encoder,
                "credpool_fleet_degraded",
                "1 while serving from the local copy (the shared pool unreachable)",
                i64::from(f.degraded),
            )?;
            let figures = [
                (
                    "credpool_fleet_degraded_entries",
                    "Degraded mode entered",
                    f.degraded_entries,
                ),
                ("credpool_fleet_degraded_exits", "Degraded mode left", f.degraded_exits),
                (
                    "credpool_fleet_degraded_acquisitions",
                    "Leases served from the local copy",
                    f.degraded_acquisitions,
                ),
                (
                    "credpool_fleet_stale_commits",
                    "Refresh commits rejected by the generation fence",
                    f.stale_commits,
                ),
                (
                    "credpool_fleet_shared_errors",
                    "Shared-pool operations without an answer (timeout or unreachable)",
                    f.shared_errors,
                ),
                (
                    "credpool_fleet_reseeds",
                    "Empty shared pools seeded from the accounts file",
                    f.reseeds,
                ),
            ];
            for (name, help, value) in figures {
                counter(&mut encoder, name, help, value)?;
            }
        }
        Ok(())
    }
}
