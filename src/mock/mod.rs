//! `credpool upstream`: a stateful mock of Google's OAuth token endpoint and model APIs, on
//! 127.0.0.1, for putting a proxy (or `credpool serve`) under test.
//!
//! Unlike the wiremock upstream of real-mode runs ([`crate::upstream::http`]), this one remembers:
//! every access token it issued belongs to an account and a generation and expires at a known
//! instant, so it answers 401 to an expired, revoked or unknown token and `invalid_grant` to a
//! revoked refresh token, exactly as a proxy would meet them. Latencies, status draws and fault
//! windows come from the same [`UpstreamModel`](crate::upstream::faults::UpstreamModel) as the
//! simulator (keyed draws: common random numbers), plus what only a server on the wire does: the
//! four 429 bodies, connection resets, slow bodies, SSE framing (`[upstream.mock]`).
//!
//! - [`tokens`]: the registry of refresh and access tokens (account, generation, expiry).
//! - [`google`]: Google's JSON shapes (errors, 429 details, answers, token grants).
//! - [`token_endpoint`]: `POST /token`.
//! - [`api`]: `/v1beta/models/{model}:generateContent|streamGenerateContent`, `/v1internal:*`.
//! - [`answers`]: success bodies serialised once per model and shared.
//! - [`body`]: answers spent over time: slow bodies and streams (SSE or a JSON array).
//! - [`admin`]: `/_mock/*`, the harness's surface (stats, journal, revocation), apart from Google's.
//! - [`journal`] and [`models`]: one fixed-size record per request, in bounded memory.
//! - [`server`]: [`Mock`], the accept loop, connection resets and graceful shutdown.
//!
//! The surface is documented in docs/upstream.md.

pub mod admin;
pub mod answers;
pub mod api;
pub mod body;
pub mod google;
pub mod journal;
pub mod models;
pub mod server;
pub mod token_endpoint;
pub mod tokens;

pub use journal::{Journal, JournalFormat, Record};
pub use server::{Mock, Running};
pub use tokens::{SeededAccount, TokenCheck};
