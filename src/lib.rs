//! # credpool
//!
//! A concurrency simulation and benchmark harness for shared OAuth credential pools.
//!
//! The crate is laid out the way a request flows:
//!
//! - [`model`]: the pure domain (accounts, policy, pool state transitions). No locks, no I/O.
//! - [`sync`]: the one place that names thread primitives (std/parking_lot, or loom's).
//! - [`future`]: the boxed future of every `dyn` async trait (stores, token endpoints, shared
//!   pools), below every layer that names it.
//! - [`store`]: `accounts.toml` persistence in four modes (naive, locked, durable, group_commit).
//! - [`strategy`]: how concurrent requests share the pool: one file per strategy, one trait.
//! - [`upstream`]: the token endpoint and API, simulated in virtual time or served over HTTP.
//! - [`mock`]: `credpool upstream`, a stateful mock of Google (tokens, 401s, 429 bodies, SSE, journal).
//! - [`scenario`]: scenario files -> validated plans -> runs on a virtual or wall clock.
//! - [`metrics`]: per-phase HdrHistograms, counters, the consistency audit, fairness, refresh
//!   herds and the harness's self-audit.
//! - [`analysis`]: predictions (exact FIFO, Little's law) set beside measurements, and the
//!   statistics that tell a real change from noise over repetitions.
//! - [`report`]: terminal table, JSON, CSV, `.hgrm` and the HTML report with SVG charts.
//! - [`target`]: any proxy under test: its process group, placeholders, protocols and verdicts.
//! - [`fleet`]: several instances sharing one pool through Redis (or its in-memory model).
//! - [`torture`]: `credpool torture`, crash-testing a store mode with real processes and SIGKILL.
//! - [`serve`]: `credpool serve`, one strategy and the store behind HTTP (lease API, reverse
//!   proxy, admin, metrics).
//! - [`cli`]: the `credpool` command line.
//!
//! Supporting pieces: [`secret`] (tokens that cannot be printed), [`duration`] (`"30ms"`-style
//! durations), [`input_error`] (errors located at file:line:column), [`costs`] (charging each
//! modelled step where it happens), [`pacing`] (real-time charges kept to deadlines), [`fuzzing`] (the fuzz targets' bodies, for `fuzz/` and CI).

pub mod analysis;
pub mod cli;
pub mod clock;
pub mod costs;
pub mod duration;
pub mod fleet;
pub mod future;
pub mod fuzzing;
pub mod input_error;
pub mod metrics;
pub mod mock;
pub mod model;
pub mod pacing;
pub mod report;
pub mod scenario;
pub mod secret;
pub mod serve;
pub mod store;
pub mod strategy;
pub mod sync;
pub mod target;
pub mod torture;
pub mod upstream;
