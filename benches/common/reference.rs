//! The reference the `lock_free` strategy is measured against (`benches/strategies.rs`, and the
//! profiling harness `examples/hot_path.rs`): the same bookkeeping as `lock_free`'s fast path
//! under one `parking_lot::Mutex`. On two cores, a short critical section under a good mutex is
//! the practical limit of any design, so `lock_free` is held to within 1.5× of it.
//!
//! It is a benchmark fixture, not a strategy: a healthy pool only (it asserts that no refresh is
//! due), no bans, no persistence.

use credpool::clock::Clock;
use credpool::model::ticket::ticket_position;
use credpool::model::{Account, Change, EpochMs, Outcome, Policy, RefreshDue};
use credpool::strategy::{AcquireError, AcquireTiming, CredentialManager, Env, Lease, Request, StrategyStats};

/// The reference: `lock_free`'s fast-path bookkeeping (a rotation ticket mapped onto the pool,
/// the policy's expiry check, the lease's two reference counts, a success counted on its
/// credential) under one `parking_lot` mutex instead of atomics and a snapshot.
pub struct ParkingLotReference {
    policy: Policy,
    clock: Clock,
    state: parking_lot::Mutex<ReferenceState>,
}

struct ReferenceState {
    ticket: u64,
    accounts: Vec<Account>,
    calls: Vec<u64>,
}

impl ParkingLotReference {
    pub fn new(env: Env) -> Self {
        let calls = vec![0; env.accounts.len()];
        ParkingLotReference {
            policy: env.policy,
            clock: env.clock,
            state: parking_lot::Mutex::new(ReferenceState {
                ticket: 0,
                accounts: env.accounts,
                calls,
            }),
        }
    }
}

impl CredentialManager for ParkingLotReference {
    fn name(&self) -> &'static str {
        "parking_lot_reference"
    }

    async fn acquire(&self, _request: &Request) -> Result<Lease, AcquireError> {
        let now: EpochMs = self.clock.now_ms();
        let mut s = self.state.lock();
        let ticket = s.ticket;
        s.ticket += 1;
        let index =
            ticket_position(ticket, self.policy.calls_per_rotation, s.accounts.len()).ok_or(AcquireError::Exhausted)?;
        let a = &s.accounts[index];
        // The healthy pool of this benchmark never needs a refresh; the check is still made.
        assert_eq!(self.policy.refresh_due(a, now), RefreshDue::No);
        Ok(Lease::new(
            index,
            a.id.clone(),
            a.access_token.clone(),
            AcquireTiming::default(),
        ))
    }

    async fn complete(&self, lease: Lease, _request: &Request, outcome: Outcome) -> Result<(), AcquireError> {
        if outcome == Outcome::Success {
            self.state.lock().calls[lease.index] += 1;
        }
        Ok(())
    }

    fn stats(&self) -> StrategyStats {
        StrategyStats::default()
    }

    async fn accounts(&self) -> Vec<Account> {
        self.state.lock().accounts.clone()
    }

    async fn switch(&self, index: usize, change: &Change) -> bool {
        let a = &mut self.state.lock().accounts[index];
        let was_disabled = a.disabled;
        a.apply(change);
        was_disabled != a.disabled
    }
}
