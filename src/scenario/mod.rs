//! Scenarios: TOML files that describe a workload, checked into a plan and run.
//!
//! - [`spec`]: the file format, exactly (serde types).
//! - [`plan`]: validation and the checked plan.
//! - [`metric`]: metric names, expectations and their checks.
//! - [`arrivals`]: when requests arrive and from whom.
//! - [`runner`]: one scenario × one strategy, virtual or real.
//! - [`repeat`]: one scenario N times over derived seeds (`--repeat`).
//! - [`suite`]: finding scenario files and running many.

pub mod arrivals;
pub mod metric;
pub mod plan;
pub mod repeat;
pub mod runner;
pub mod spec;
pub mod suite;

pub use plan::Plan;
pub use spec::Mode;
