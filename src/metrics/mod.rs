//! Measurements of one run of one strategy: latency histograms per phase, counters, the
//! throughput series, a bounded timeline sample, and the consistency audit of the persisted file.
//!
//! Memory is flat in the number of requests: HdrHistograms (fixed size), a reservoir sample of at
//! most [`recorder::TIMELINE_SAMPLE`] requests for timeline charts, and a throughput series whose
//! buckets widen as the run grows. [`steps`] tells a watchdog where unfinished requests are.
//! [`fairness`] (who got served, bounded by the scenario's users and credentials) and [`herd`]
//! (how many requests one refresh held up) are kept in every run; [`intervals`] keeps one
//! compressed histogram per second of the run, for HdrHistogram interval logs; [`timer_lag`]
//! samples how late the runtime fires timers in a real-time run, for the [`self_audit`].
//! [`expectation`] names the figures (metric names, bounds, an expectation's result) for the
//! scenarios that bound them, the runs that report them and the reports that look them up.
//! [`served`] judges each lease against the store's acknowledged disables (a disabled account
//! served, a rotation that passed an account over). [`history`] checks a fleet run's recorded
//! events against the fleet's safety rules (generations, fences, exclusions, deletions).

pub mod audit;
pub mod expectation;
pub mod fairness;
pub mod herd;
pub mod histogram;
pub mod history;
pub mod intervals;
pub mod phase;
pub mod recorder;
pub mod run;
pub mod self_audit;
pub mod served;
pub mod steps;
pub mod timer_lag;

pub use audit::Audit;
pub use histogram::LatencyHistogram;
pub use phase::Phase;
pub use recorder::Recorder;
pub use run::StrategyRun;
