//! Statistics over repetitions: is the difference between two sets of runs real or noise?
//!
//! Requests inside one run are not independent (they share queues, locks and refreshes), so
//! nothing here treats requests as samples: the unit is the *repetition* (one whole run with its
//! own seed), and each repetition contributes one value per figure (its p99, its mean, its
//! throughput). docs/statistics.md states the method and the verdict rule.
//!
//! - [`mann_whitney`]: the two-sided Mann-Whitney U test (exact without ties for small samples,
//!   the normal approximation with tie and continuity correction otherwise).
//! - [`bootstrap`]: a seeded percentile-bootstrap confidence interval of the relative change of
//!   the mean.
//! - [`verdict`]: the rule that turns both into `improved`, `regressed` or `no_change`.
//! - [`normal`]: the standard normal's tail, for the approximation.

pub mod bootstrap;
pub mod mann_whitney;
pub mod normal;
pub mod verdict;
