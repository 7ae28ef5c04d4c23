//! `[target] intercept = true`: credpool as the target's HTTPS proxy, so a proxy that hard-codes
//! Google's host names (`https://oauth2.googleapis.com/token`) still reaches the mock, and any
//! other host it calls is refused and counted (`unmocked_requests`).
//!
//! - [`ca`]: the run's throwaway certificate authority and the leaf certificates it signs.
//! - [`proxy`]: the forward proxy on a loopback port: `CONNECT` to one of [`GOOGLE_HOSTS`] is
//!   answered with TLS under a leaf for that host and the bytes inside are relayed to the mock;
//!   anything else gets `403` and is counted.
//!
//! [`GOOGLE_HOSTS`] is the one list of host names served from the mock (docs/target.md repeats
//! it).

pub mod ca;
pub mod proxy;

/// Google's host names an intercepting run serves from the mock, on port 443. The mock answers
/// them all on one surface: `/token` (OAuth), `/v1beta/models/...` (Gemini API) and
/// `/v1internal:...` (Code Assist).
pub const GOOGLE_HOSTS: &[&str] = &[
    "oauth2.googleapis.com",
    "generativelanguage.googleapis.com",
    "cloudcode-pa.googleapis.com",
];
