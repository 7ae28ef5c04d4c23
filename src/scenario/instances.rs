//! `[fleet] instances = N` in virtual time: N instances of one strategy in one simulation, each a
//! separate strategy value with its own memory, over the run's one store (the accounts file, the
//! system of record) and, for `fleet`, one modelled Redis ([`StrategyName::build_instances`]).
//!
//! [`Instances`] is a [`CredentialManager`] that hands each request to one instance, as a load
//! balancer in front of N processes would ([`Spread`]), and completes it on the same instance:
//! the instance is a function of the request alone, so no lease carries it. Nothing is shared
//! between instances but what the strategy itself shares (the store, the modelled Redis), so an
//! in-process strategy shows, as N instances, exactly the defects N processes would: a refresh
//! per instance for one expiring token, a turn of K calls per instance, a disable learned late.

use crate::model::{Account, Change, Outcome};
use crate::scenario::spec::Spread;
use crate::strategy::{AcquireError, CredentialManager, Lease, Request, StrategyStats};

/// N instances of one strategy behind a load balancer.
pub struct Instances<M> {
    instances: Vec<M>,
    spread: Spread,
}

impl<M: CredentialManager> Instances<M> {
    /// Panics on an empty list (a fleet has at least one instance; the plan checks it).
    pub fn new(instances: Vec<M>, spread: Spread) -> Instances<M> {
        assert!(!instances.is_empty(), "a fleet needs at least one instance");
        Instances { instances, spread }
    }

    fn serving(&self, request: &Request) -> &M {
        &self.instances[instance_of(self.spread, self.instances.len(), request)]
    }
}

/// Which of `n` instances serves `request` under `spread`.
pub fn instance_of(spread: Spread, n: usize, request: &Request) -> usize {
    let key = match spread {
        Spread::RoundRobin => request.number,
        Spread::UserHash => mix(u64::from(request.user)),
    };
    (key % n as u64) as usize
}

/// SplitMix64's finaliser: users 0, 1, 2... spread evenly and without pattern over the instances.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<M: CredentialManager> CredentialManager for Instances<M> {
    const MARKS_STEPS: bool = M::MARKS_STEPS;

    fn name(&self) -> &'static str {
        self.instances[0].name()
    }

    async fn acquire(&self, request: &Request) -> Result<Lease, AcquireError> {
        self.serving(request).acquire(request).await
    }

    async fn complete(&self, lease: Lease, request: &Request, outcome: Outcome) -> Result<(), AcquireError> {
        self.serving(request).complete(lease, request, outcome).await
    }

    /// The fleet's counts: every instance's, added up.
    fn stats(&self) -> StrategyStats {
        self.instances.iter().fold(StrategyStats::default(), |mut sum, s| {
            sum += s.stats();
            sum
        })
    }

    /// Instance 0's view (each instance holds its own; the system of record is the store).
    async fn accounts(&self) -> Vec<Account> {
        self.instances[0].accounts().await
    }

    /// An operator talks to one instance, as to one process of a fleet: instance 0.
    async fn switch(&self, index: usize, change: &Change) -> bool {
        self.instances[0].switch(index, change).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_alternates_and_user_hash_keeps_a_user_on_one_instance() {
        let of = |n: u64, user: u32| Request::new(n, user, "m");
        let seq: Vec<usize> = (0..6).map(|n| instance_of(Spread::RoundRobin, 2, &of(n, 0))).collect();
        assert_eq!(seq, [0, 1, 0, 1, 0, 1]);
        for user in 0..50 {
            let first = instance_of(Spread::UserHash, 2, &of(0, user));
            assert!(
                (1..20).all(|n| instance_of(Spread::UserHash, 2, &of(n, user)) == first),
                "user {user}"
            );
        }
        let on_zero = (0..1000)
            .filter(|&u| instance_of(Spread::UserHash, 2, &of(0, u)) == 0)
            .count();
        assert!((400..600).contains(&on_zero), "{on_zero} of 1000 users on instance 0");
    }
}
