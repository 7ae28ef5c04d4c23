//! The pure domain: accounts, the policy that governs them, and the pool's state transitions.
//!
//! Nothing here locks, sleeps, reads a file or awaits. Every strategy in [`crate::strategy`]
//! drives the same functions, so strategies can only differ in *when* and *under which lock* a
//! decision is made, never in *what* is decided. That is what makes their measurements comparable.
//!
//! - [`account`]: one credential, typed where credpool models a field.
//! - [`accounts_file`]: an `accounts.toml` document that keeps every field it does not model.
//! - [`policy`]: rotation, refresh margin, series bans, auto-ban codes.
//! - [`refresh_window`]: when a token is refreshed, bounded by its own lifetime.
//! - [`change`]: a state change as data, applied in memory and persisted by the store alike.
//! - [`rate_limit`]: what a 429 body says about when to retry (RetryInfo, ErrorInfo).
//! - [`pool`]: selection and outcome bookkeeping as plain state transitions.
//! - [`rate_limit`]: what a 429 body says about when to retry (RetryInfo, ErrorInfo).
//! - [`ticket`]: rotation as a pure function of a ticket number (for the lock-free strategy).

pub mod account;
pub mod accounts_file;
pub mod change;
pub mod policy;
pub mod pool;
pub mod rate_limit;
pub mod refresh_window;
pub mod ticket;
pub mod time;

pub use account::{Account, AccountId};
pub use accounts_file::AccountsFile;
pub use change::{Change, Outcome, RefreshFailure, TokenGrant};
pub use policy::{Policy, RefreshBackoff, RefreshDue};
pub use pool::{PoolState, Selection};
pub use rate_limit::{parse_error_body, RetryHint};
pub use time::EpochMs;
