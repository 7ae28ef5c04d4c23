//! Scenarios: TOML files that describe a workload, checked into a plan and run.
//!
//! - [`spec`]: the file format, exactly (serde types).
//! - [`plan`]: validation and the checked plan.
//! - [`expect`]: an `[[expect]]` row: the strategies it covers, its metric and bound.
//! - [`arrivals`]: when requests arrive and from whom.
//! - [`instances`]: `[fleet] instances = N`: one strategy as N instances behind a load balancer.
//! - [`runner`]: one scenario × one strategy, virtual or real.
//! - [`http_load`]: the arrival process sent over HTTP to a server on loopback (open loop).
//! - [`repeat`]: one scenario N times over derived seeds (`--repeat`).
//! - [`suite`]: finding scenario files and running many.
//! - [`jobs`]: independent runs on every core, results in input order.
//! - [`sweep`]: one scenario at several load levels (`[sweep]`, `credpool sweep`).

pub mod arrivals;
pub mod expect;
pub mod http_load;
pub mod instances;
pub mod jobs;
pub mod plan;
pub mod repeat;
pub mod runner;
pub mod spec;
pub mod suite;
pub mod sweep;
pub mod target_plan;

pub use plan::Plan;
pub use spec::Mode;
