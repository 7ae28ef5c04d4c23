//! # credpool
//!
//! A concurrency simulation and benchmark harness for shared OAuth credential pools.
//!
//! The crate is laid out the way a request flows:
//!
//! - [`model`]: the pure domain (accounts, policy, pool state transitions). No locks, no I/O.
//! - [`sync`]: the one place that names thread primitives (std/parking_lot, or loom's).
//! - [`store`]: `accounts.toml` persistence in four modes (naive, locked, durable, group_commit).
//! - [`strategy`]: how concurrent requests share the pool: one file per strategy, one trait.
//! - [`upstream`]: the token endpoint and API, simulated in virtual time or served over HTTP.
//! - [`scenario`]: scenario files -> validated plans -> runs on a virtual or wall clock.
//! - [`metrics`]: per-phase HdrHistograms, counters and the consistency audit.
//! - [`analysis`]: predictions (exact FIFO, Little's law) set beside measurements.
//! - [`report`]: terminal table, JSON, CSV, `.hgrm` and the HTML report with SVG charts.
//! - [`fleet`]: several instances sharing one pool through Redis (or its in-memory model).
//! - [`torture`]: `credpool torture`, crash-testing a store mode with real processes and SIGKILL.
//! - [`cli`]: the `credpool` command line.
//!
//! Supporting pieces: [`secret`] (tokens that cannot be printed), [`duration`] (`"30ms"`-style
//! durations), [`input_error`] (errors located at file:line:column), [`costs`] (charging each
//! modelled step where it happens), [`fuzzing`] (the fuzz targets' bodies, for `fuzz/` and CI).

pub mod analysis;
pub mod cli;
pub mod clock;
pub mod costs;
pub mod duration;
pub mod fleet;
pub mod fuzzing;
pub mod input_error;
pub mod metrics;
pub mod model;
pub mod report;
pub mod scenario;
pub mod secret;
pub mod store;
pub mod strategy;
pub mod sync;
pub mod torture;
pub mod upstream;
