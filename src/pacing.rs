//! Real-time pacing: modelled costs charged against deadlines, so that timer overshoot does not
//! accumulate along a queue.
//!
//! On the wall clock a sleep ends up to a timer tick late (tokio's timer rounds up to the next
//! millisecond, and the OS wakes the thread later still). If every charged cost were "now + cost",
//! each step of a request would add its overshoot, and a queue of 100 requests behind one lock
//! would add 300 overshoots: `seed-1-burst-100`'s `global_mutex` took 3378 ms in real time
//! against 3000 ms in virtual time. A [`Pacer`] instead ends each step at its *intended* time:
//! the time it would have ended had every earlier step in its chain ended on time.
//!
//! **The chain.** Each step that ends records how late it woke (its *lateness*: actual end −
//! intended end). A new step follows, and inherits the lateness of, the first of these that ended
//! within [`HANDOFF`] before it starts:
//!
//! 1. its own task's previous step (consecutive steps of one request), or, for a request's first
//!    step, the request's start, as late as the load generator started it;
//! 2. else the latest step of any task: the one whose end let it start, typically the last step
//!    of the task that just released a lock it waited on (the chain crosses the handoff).
//!
//! Its deadline is then `now − lateness + cost`. A step with neither (after real work longer than
//! the window, an HTTP call, a wait on something that is not a timed step) starts a new chain at
//! `now`. A deadline already past is not slept (the task only yields), so a debt larger than one
//! cost, as with sub-millisecond costs, is repaid over the following steps. What remains is one
//! overshoot per chain, at its end, instead of one per step; and that one is cut short by waiting
//! on tokio's timer only until [`SPIN`] before a deadline and yielding from there until it passes
//! (tokio's timer alone wakes on the millisecond tick after the deadline, later on a busy machine).
//!
//! The rule knows nothing of locks: which task released what is not visible here, so rule 2 takes
//! the latest step to end as the one a waiting task follows. When independent tasks end steps at
//! the same moment, a task that starts after a wait may inherit another one's lateness instead of
//! its releaser's; both are a timer's overshoot, so the error stays within one overshoot a handoff
//! and does not accumulate.
//!
//! **Real work on the chain.** Some steps are not slept but done, and the time they take is time
//! the model does not have. Such a step is a [`RealStep`]: it starts at its intended start (now
//! less the lateness it inherits), and its intended end is that start plus its modelled cost;
//! whatever it took beyond that is its lateness, made up by the next step on the chain like any
//! sleep's. Two kinds:
//!
//! - An HTTP call to the loopback mock, whose modelled latency is the whole cost of the call. The
//!   intended start is sent to the mock, which answers a paced call at once and says what its
//!   latency was; the client then holds the answer until the intended start plus that latency
//!   ([`Pace::real_step_due`]), on the same deadline wait as a sleep. The round trip is thus
//!   inside the modelled latency, not added to it, and the answer is not a timer tick late (the
//!   mock's own timer would have been). A free call (`api_latency = "0ms"`) passes its round trip
//!   to the next step (in `queue_pool`, the next holder of the credential).
//! - A real file operation in real mode ([`Pace::real_work`], through
//!   [`crate::store::paced_backend`]): no modelled cost of its own, because the store charges the
//!   scenario's modelled file costs beside it; its whole time is lateness, made up by the next
//!   modelled cost.
//!
//! Only real work that ends its chain leaves its time in the figures.
//!
//! Virtual runs do not pace: on the paused clock a sleep ends exactly on its deadline.

use crate::sync::{Arc, Mutex};
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// How soon after the latest step ended a new step must start to continue its chain. Far above
/// the latency of handing a lock to a waiting task (tens of microseconds, a few milliseconds on a
/// loaded machine), far below the modelled steps a chain is made of (10 ms in the seed scenarios).
pub const HANDOFF: Duration = Duration::from_millis(5);

/// How long before a deadline the timer hands over to yielding (see [`Pacer::spend`]): tokio's
/// timer wakes on the millisecond tick after its deadline, and the OS can add a millisecond more.
/// The yielding costs CPU for at most this long a step.
pub const SPIN: Duration = Duration::from_millis(2);

/// The pace every charged cost keeps: plain sleeps (virtual runs, tests), or a [`Pacer`]'s
/// deadlines (real-time runs).
#[derive(Clone, Debug, Default)]
pub struct Pace(Option<Arc<Pacer>>);

impl Pace {
    /// Deadlines kept by `pacer`, shared by every clone of the pace.
    pub fn deadlines(pacer: Pacer) -> Pace {
        Pace(Some(Arc::new(pacer)))
    }

    /// Spends `cost` (not zero): a plain sleep, or up to the pacer's deadline.
    pub async fn spend(&self, cost: Duration) {
        match &self.0 {
            None => tokio::time::sleep(cost).await,
            Some(pacer) => pacer.spend(cost).await,
        }
    }

    /// See [`Pacer::request_started_late`]; nothing when not paced.
    pub fn request_started_late(&self, lateness: Duration) {
        if let Some(pacer) = &self.0 {
            pacer.request_started_late(lateness);
        }
    }

    /// Starts a step of real work on the chain (see the module comment); `None` when not paced.
    pub fn real_step(&self) -> Option<RealStep> {
        self.0.as_ref().map(|pacer| pacer.real_step())
    }

    /// `step` ended now; `modelled` is the cost the other side charged (its latency), if it said.
    pub fn real_step_ended(&self, step: RealStep, modelled: Option<Duration>) {
        if let Some(pacer) = &self.0 {
            pacer.real_step_ended(step, modelled);
        }
    }

    /// `step`'s work is done and its modelled cost is `modelled`: waits until its intended end
    /// (its intended start plus `modelled`), then ends it. A call answered before it was due thus
    /// ends on time, not early; one answered late ends now, and its lateness is made up by the
    /// next step on the chain.
    pub async fn real_step_due(&self, step: RealStep, modelled: Duration) {
        if let Some(pacer) = &self.0 {
            pacer.real_step_due(step, modelled).await;
        }
    }

    /// Does `work` (real, synchronous work with no modelled cost of its own, such as a file
    /// operation) as a step on the chain: the time it takes becomes lateness that the next
    /// modelled cost makes up. Just `work()` when not paced.
    pub fn real_work<T>(&self, work: impl FnOnce() -> T) -> T {
        match &self.0 {
            None => work(),
            Some(pacer) => {
                let step = pacer.real_step();
                let done = work();
                pacer.real_step_ended(step, Some(Duration::ZERO));
                done
            }
        }
    }
}

/// A step of real work under way (an HTTP call): when it was meant to start.
#[derive(Clone, Copy, Debug)]
pub struct RealStep {
    task: Option<tokio::task::Id>,
    /// Since the pacer's origin.
    intended_start: Duration,
    /// The same moment on the system clock, which the other side of the call shares (the mock
    /// is on this machine): what is sent to it.
    pub intended_start_system: SystemTime,
}

/// Two paces are equal when both are plain sleeps or both are the same pacer.
impl PartialEq for Pace {
    fn eq(&self, other: &Pace) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Pace {}

/// One run's deadlines on tokio's clock (see the module comment).
#[derive(Debug)]
pub struct Pacer {
    origin: Instant,
    /// Steps are told apart by their tokio task.
    chain: Mutex<Chain<tokio::task::Id>>,
}

impl Default for Pacer {
    fn default() -> Pacer {
        Pacer::new()
    }
}

impl Pacer {
    pub fn new() -> Pacer {
        Pacer {
            origin: Instant::now(),
            chain: Mutex::new(Chain::default()),
        }
    }

    /// Spends `cost` up to its intended end (or only yields, when that is already past).
    pub async fn spend(&self, cost: Duration) {
        let task = tokio::task::try_id();
        let now = self.since_origin();
        let deadline = self.chain.lock().deadline(task.as_ref(), now, cost);
        if deadline > now {
            self.wait_until(deadline, now).await;
        } else {
            tokio::task::yield_now().await;
        }
        let woke = self.since_origin();
        self.chain.lock().ended(task, deadline, woke);
    }

    /// Waits until `deadline` (since the origin; `now` is the time it is): tokio's timer to
    /// [`SPIN`] before it, then yields until it has passed, so a chain's last step does not end a
    /// timer tick late. On a paused clock (tests) the spin is bounded by the same span of real
    /// time, and the timer then takes the clock to the deadline exactly.
    async fn wait_until(&self, deadline: Duration, now: Duration) {
        let coarse = deadline.saturating_sub(SPIN);
        if coarse > now {
            tokio::time::sleep_until(self.origin + coarse).await;
        }
        let left = deadline.saturating_sub(self.since_origin());
        let spin_end = std::time::Instant::now() + left;
        while self.since_origin() < deadline && std::time::Instant::now() < spin_end {
            tokio::task::yield_now().await;
        }
        if self.since_origin() < deadline {
            tokio::time::sleep_until(self.origin + deadline).await;
        }
    }

    /// The current task's request started `lateness` after its intended start (the load
    /// generator's own lateness): its first step makes it up, as a step makes up its own task's
    /// previous one (rule 1). Not an end other tasks follow (rule 2): a request that starts is
    /// not what a waiting task waited on.
    pub fn request_started_late(&self, lateness: Duration) {
        let Some(task) = tokio::task::try_id() else {
            return;
        };
        let now = self.since_origin();
        self.chain.lock().started(task, lateness, now);
    }

    /// Starts a step of real work: its intended start is now, less the lateness it inherits.
    pub fn real_step(&self) -> RealStep {
        let task = tokio::task::try_id();
        let now = self.since_origin();
        let system_now = SystemTime::now();
        let intended_start = self.chain.lock().deadline(task.as_ref(), now, Duration::ZERO);
        RealStep {
            task,
            intended_start,
            intended_start_system: system_now - (now - intended_start),
        }
    }

    /// `step` ended now; its intended end is its intended start plus `modelled` (zero when the
    /// other side did not say).
    pub fn real_step_ended(&self, step: RealStep, modelled: Option<Duration>) {
        let woke = self.since_origin();
        let deadline = step.intended_start + modelled.unwrap_or_default();
        self.chain.lock().ended(step.task, deadline, woke);
    }

    /// Waits until `step`'s intended end (its intended start plus `modelled`), then ends it.
    pub async fn real_step_due(&self, step: RealStep, modelled: Duration) {
        let deadline = step.intended_start + modelled;
        let now = self.since_origin();
        if deadline > now {
            self.wait_until(deadline, now).await;
        }
        self.real_step_ended(step, Some(modelled));
    }

    fn since_origin(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// The pacing rule on durations since the pacer's origin, for steps of tasks named by `K`: no
/// clock and no sleep in it, so a test can drive it with a sleeper that overshoots as it likes.
#[derive(Clone, Debug)]
pub struct Chain<K> {
    /// The latest step of any task to end (rule 2).
    latest: End,
    /// Each task's latest step (rule 1); ends older than [`HANDOFF`] are pruned as it grows.
    by_task: HashMap<K, End>,
    /// `by_task`'s size at which it is pruned next (twice its size after the last pruning, so
    /// pruning costs O(1) a step amortised).
    prune_at: usize,
}

/// When a step ended, and how late against its deadline: what a step that follows it makes up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct End {
    at: Duration,
    lateness: Duration,
}

impl End {
    /// The lateness a step starting at `now` inherits from this end, if it follows it.
    fn carried_to(&self, now: Duration) -> Option<Duration> {
        (now >= self.at && now - self.at <= HANDOFF).then_some(self.lateness)
    }
}

impl<K> Default for Chain<K> {
    fn default() -> Self {
        Chain {
            latest: End::default(),
            by_task: HashMap::new(),
            prune_at: 64,
        }
    }
}

impl<K: Hash + Eq> Chain<K> {
    /// The intended end of a step of `cost` that `task` starts at `now`: `now + cost`, less the
    /// lateness of the step it follows (see the module comment).
    pub fn deadline(&self, task: Option<&K>, now: Duration, cost: Duration) -> Duration {
        let own = task.and_then(|t| self.by_task.get(t)).and_then(|e| e.carried_to(now));
        let carried = own.or_else(|| self.latest.carried_to(now)).unwrap_or_default();
        now.saturating_sub(carried) + cost
    }

    /// `task`'s request started at `now`, `lateness` after it was meant to: its first step
    /// follows this (rule 1), no other task's does.
    pub fn started(&mut self, task: K, lateness: Duration, now: Duration) {
        self.by_task.insert(task, End { at: now, lateness });
    }

    /// `task`'s step with `deadline` ended at `now`. Only the latest end of all is kept for rule 2:
    /// a step of another task that ended earlier is not what a waiting task follows.
    pub fn ended(&mut self, task: Option<K>, deadline: Duration, now: Duration) {
        let end = End {
            at: now,
            lateness: now.saturating_sub(deadline),
        };
        if now >= self.latest.at {
            self.latest = end;
        }
        if let Some(task) = task {
            self.by_task.insert(task, end);
            if self.by_task.len() >= self.prune_at {
                self.by_task.retain(|_, e| now.saturating_sub(e.at) <= HANDOFF);
                self.prune_at = (self.by_task.len() * 2).max(64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A sleeper like tokio's on a real machine: it wakes on the millisecond after the deadline,
    /// plus `extra` (the OS's own delay).
    fn wake(deadline: Duration, now: Duration, extra: Duration) -> Duration {
        if deadline <= now {
            return now;
        }
        let ms = deadline.as_nanos().div_ceil(MS.as_nanos()) as u32;
        MS * ms + MS + extra
    }

    /// `requests` tasks queued behind one lock, each spending `steps` costs while it holds it, the
    /// lock handed on `handoff` after the holder's last step; returns when the last one finished.
    fn queue(paced: bool, requests: u32, steps: &[Duration], handoff: Duration, extra: Duration) -> Duration {
        let mut chain = Chain::default();
        let mut now = Duration::ZERO;
        for task in 0..requests {
            for &cost in steps {
                let deadline = if paced {
                    chain.deadline(Some(&task), now, cost)
                } else {
                    now + cost
                };
                now = wake(deadline, now, extra);
                chain.ended(Some(task), deadline, now);
            }
            now += handoff;
        }
        now
    }

    #[test]
    fn a_queue_behind_a_lock_ends_one_overshoot_late_not_one_per_step() {
        let steps = [10 * MS, 10 * MS, 10 * MS];
        let (handoff, extra) = (Duration::from_micros(40), Duration::from_micros(300));
        // The intended end: 100 × 30 ms of steps, plus the handoffs, which are real time too.
        let intended = 100 * (30 * MS + handoff);
        let unpaced = queue(false, 100, &steps, handoff, extra);
        // The fake sleeper does overshoot: "now + cost" drifts by over a millisecond per step.
        assert!(unpaced > intended + 300 * MS, "{unpaced:?}");
        let paced = queue(true, 100, &steps, handoff, extra);
        assert!(paced >= intended, "{paced:?}");
        assert!(
            paced <= intended + 3 * MS,
            "the queue ended at {paced:?}, {intended:?} intended"
        );
    }

    #[test]
    fn costs_shorter_than_the_overshoot_are_repaid_over_the_next_steps() {
        // 100 log lines of 40 µs: each sleep alone would take over a millisecond.
        let steps = vec![Duration::from_micros(40); 100];
        let intended = Duration::from_micros(4000);
        let paced = queue(true, 1, &steps, Duration::ZERO, Duration::ZERO);
        assert!(paced >= intended && paced <= intended + 2 * MS, "{paced:?}");
        let unpaced = queue(false, 1, &steps, Duration::ZERO, Duration::ZERO);
        assert!(unpaced >= 100 * MS, "{unpaced:?}");
    }

    #[test]
    fn a_step_that_starts_after_a_pause_starts_a_new_chain() {
        let mut chain = Chain::default();
        chain.ended(Some(1), 10 * MS, 11 * MS + Duration::from_micros(500));
        // Within the handoff window: the lateness (1.5 ms) is made up, by the task itself or by
        // one that waited on it.
        for task in [Some(&1), Some(&2), None] {
            assert_eq!(
                chain.deadline(task, 12 * MS, 10 * MS),
                20 * MS + Duration::from_micros(500)
            );
        }
        // After real work longer than the window: a fresh chain at "now".
        let later = 11 * MS + Duration::from_micros(500) + HANDOFF + MS;
        assert_eq!(chain.deadline(Some(&1), later, 10 * MS), later + 10 * MS);
        // A step of another task that ended earlier does not replace the latest end.
        chain.ended(Some(3), 5 * MS, 6 * MS);
        assert_eq!(
            chain.deadline(Some(&2), 12 * MS, 10 * MS),
            20 * MS + Duration::from_micros(500)
        );
    }

    #[test]
    fn tasks_stepping_side_by_side_each_make_up_their_own_lateness() {
        // Two requests without a lock between them, one 3 ms late, one on time, ending together.
        let mut chain = Chain::default();
        chain.ended(Some(1), 10 * MS, 13 * MS);
        chain.ended(Some(2), 13 * MS, 13 * MS);
        assert_eq!(chain.deadline(Some(&1), 13 * MS, 10 * MS), 20 * MS);
        assert_eq!(chain.deadline(Some(&2), 13 * MS, 10 * MS), 23 * MS);
        // Ends older than the window are pruned once the map grows.
        for task in 3..200 {
            chain.ended(Some(task), 100 * MS, 100 * MS);
        }
        assert!(chain.by_task.len() < 200, "{} ends kept", chain.by_task.len());
        assert!(!chain.by_task.contains_key(&1));
    }

    #[test]
    fn a_free_calls_round_trip_is_made_up_by_the_next_holders_first_step() {
        let us = Duration::from_micros(1);
        let mut chain = Chain::default();
        // Task 1 ends its last step on time, then calls the mock (modelled latency 0): the call
        // starts at its intended start and takes a 1.5 ms round trip.
        chain.ended(Some(1), 10 * MS, 10 * MS);
        let start = chain.deadline(Some(&1), 10 * MS, Duration::ZERO);
        assert_eq!(start, 10 * MS);
        chain.ended(Some(1), start, 11 * MS + 500 * us);
        // Task 2, handed the credential 0.1 ms later, ends its first step 1.5 ms early.
        assert_eq!(
            chain.deadline(Some(&2), 11 * MS + 600 * us, 10 * MS),
            20 * MS + 100 * us
        );
        // A call whose modelled latency (20 ms) is longer than the round trip ends on time.
        let start = chain.deadline(Some(&3), 30 * MS, Duration::ZERO);
        chain.ended(Some(3), start + 20 * MS, 50 * MS);
        assert_eq!(chain.deadline(Some(&3), 50 * MS, 10 * MS), 60 * MS);
    }

    #[test]
    fn a_request_that_starts_late_makes_it_up_alone() {
        let mut chain = Chain::default();
        chain.started(1, MS, MS + MS / 10);
        assert_eq!(chain.deadline(Some(&1), MS + MS / 10, 10 * MS), 10 * MS + MS / 10);
        // Another task does not follow a request's start.
        assert_eq!(chain.deadline(Some(&2), MS + MS / 10, 10 * MS), 11 * MS + MS / 10);
    }

    #[tokio::test(start_paused = true)]
    async fn on_the_paused_clock_a_paced_step_takes_exactly_its_cost() {
        let pacer = Pacer::new();
        let start = Instant::now();
        for _ in 0..3 {
            pacer.spend(10 * MS).await;
        }
        assert_eq!(start.elapsed(), 30 * MS);
    }
}
