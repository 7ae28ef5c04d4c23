//! Scenarios: TOML files that describe a workload, checked into a plan and run.
//!
//! - [`spec`]: the file format, exactly (serde types).
//! - [`plan`]: validation and the checked plan.
//! - [`metric`]: metric names, expectations and their checks.
//! - [`arrivals`]: when requests arrive and from whom.
//! - [`runner`]: one scenario × one strategy, virtual or real.
//! - [`http_load`]: the arrival process sent over HTTP to a server on loopback (open loop).
//! - [`suite`]: finding scenario files and running many.

pub mod arrivals;
pub mod http_load;
pub mod metric;
pub mod plan;
pub mod runner;
pub mod spec;
pub mod suite;

pub use plan::Plan;
pub use spec::Mode;
