//! Loom model checks of credpool's production concurrency code.
//!
//! Built only with the `loom` cargo feature (`required-features` in Cargo.toml), which makes
//! `credpool::sync` loom's: every mutex, RW lock, atomic, `Arc` and snapshot cell the strategy
//! cores and the stores share between threads is then a loom primitive, and `loom::model`
//! explores every interleaving of the *production* code driven from 2-3 threads.
//!
//! One module per subject; each module's comment says what its models prove. docs/model-checking.md
//! has the commands (CI's bounded run and the full-depth one) and the
//! table of what is covered by loom and what by the randomized schedule tests.
//!
//! Run: `LOOM_MAX_PREEMPTIONS=2 CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
//! CARGO_TARGET_DIR=target/loom cargo test --release --features loom --test loom_tests`.

mod support;

mod disable;
mod fleet;
mod negative_controls;
mod queue_pool;
mod rotation;
mod sharded;
mod single_flight;
mod snapshot;
mod store;
