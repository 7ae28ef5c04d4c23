//! The one place that names thread-synchronisation primitives.
//!
//! Every piece of production code that shares state between threads takes its mutexes, RW locks,
//! atomics, `Arc` and snapshot cell from here. In a normal build they are `parking_lot`'s locks
//! (the same crate tokio uses internally) and `std`'s atomics; with the `loom` cargo feature they
//! are loom's, so `loom_tests/` explores every interleaving of the *production* code rather than
//! of a copy. (`--cfg credpool_loom` selects them too, but only together with the feature, which
//! is what brings in the loom crate; the feature alone is the supported switch.) Under loom the
//! whole crate's `sync` is loom's: code that is never model-checked (the metrics recorder, the
//! audit) still compiles against it, and must not run outside `loom::model` in such a build.
//!
//! The wrappers give both worlds one API: `lock()` returns the guard directly (a poisoned loom
//! mutex means the model already panicked, so unwrapping loses nothing).
//!
//! ## `SnapshotCell` under loom: what is and is not verified
//!
//! [`SnapshotCell`] stands in for `arc_swap::ArcSwap`, which has no loom support. In a normal build
//! it *is* an `ArcSwap` (lock-free loads). Under loom it is a `loom::sync::RwLock<Arc<T>>`, so
//! every `load`, `store` and `rcu` is a step loom schedules.
//!
//! Verified: the protocol built on the cell, given linearizable `load`/`store`/`rcu` (what
//! arc-swap documents): every order of publications and loads relative to the rest of a core
//! (its tickets, single-flight slots, counters); that a reader always sees one whole published
//! value, never a mix; that concurrent `rcu`s do not lose each other's changes; and that a
//! publication happens-before any load that observes it.
//!
//! Not verified: arc-swap itself (its debt slots, its internal memory orderings, that loads never
//! block; the stand-in's loads may wait for a writer, which changes when a load takes effect but
//! not which values it may return). Nor are two differences in behaviour modelled:
//! arc-swap's `rcu` may run its closure more than once when it loses a race (the stand-in runs it
//! once, under the write lock), so a closure given to `rcu` must compute its value from the
//! current one alone and may only overwrite what it records outside (as `lock_free`'s `complete`
//! does with "newly disabled": the last run is the one published, so its answer is the one
//! kept); and `load`'s guard is an `Arc` clone under loom, not arc-swap's borrowed guard.
//!
//! Async waiting (tokio's `Mutex`, `Notify`, `watch`, `Semaphore`) is deliberately *not* here:
//! loom cannot drive tokio, so every strategy keeps its shared-state core synchronous and short,
//! and waits asynchronously around it.

// The loom crate is an optional dependency that only the feature brings in, so the cfg alone
// cannot build: say so instead of failing on an unresolved `loom::` path.
#[cfg(all(credpool_loom, not(feature = "loom")))]
compile_error!(
    "`--cfg credpool_loom` needs the `loom` feature as well: use `cargo test --features loom --test loom_tests`"
);

#[cfg(not(any(feature = "loom", credpool_loom)))]
mod imp {
    pub use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
    pub use std::sync::Arc;

    /// A mutex whose `lock()` cannot fail (parking_lot has no poisoning).
    #[derive(Debug, Default)]
    pub struct Mutex<T>(parking_lot::Mutex<T>);
    pub type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub fn new(value: T) -> Self {
            Self(parking_lot::Mutex::new(value))
        }
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
        pub fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }

    /// A readers-writer lock whose `read()`/`write()` cannot fail.
    #[derive(Debug, Default)]
    pub struct RwLock<T>(parking_lot::RwLock<T>);
    pub type RwLockReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;
    pub type RwLockWriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;

    impl<T> RwLock<T> {
        pub fn new(value: T) -> Self {
            Self(parking_lot::RwLock::new(value))
        }
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read()
        }
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write()
        }
    }

    /// An atomically replaceable `Arc<T>`: readers never block writers or each other.
    pub struct SnapshotCell<T>(arc_swap::ArcSwap<T>);

    impl<T> SnapshotCell<T> {
        pub fn new(value: Arc<T>) -> Self {
            Self(arc_swap::ArcSwap::new(value))
        }
        /// The current snapshot.
        pub fn load_full(&self) -> Arc<T> {
            self.0.load_full()
        }
        /// The current snapshot, borrowed for a short while without touching its reference count
        /// (arc-swap's debt slots), so readers on many threads do not contend on one counter.
        /// Keep the guard short-lived: a thread holding many falls back to `load_full`'s cost.
        pub fn load(&self) -> SnapshotGuard<T> {
            SnapshotGuard(self.0.load())
        }
        /// Publishes `value` for every later load.
        pub fn store(&self, value: Arc<T>) {
            self.0.store(value)
        }
        /// Replaces the snapshot with `f(current)`, retrying if another writer won the race.
        pub fn rcu<F: FnMut(&Arc<T>) -> T>(&self, mut f: F) -> Arc<T> {
            let mut new = None;
            self.0.rcu(|cur| {
                let v = Arc::new(f(cur));
                new = Some(v.clone());
                v
            });
            new.expect("rcu ran its closure at least once")
        }
    }

    impl<T: std::fmt::Debug> std::fmt::Debug for SnapshotCell<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_tuple("SnapshotCell").field(&self.0.load()).finish()
        }
    }

    /// A borrowed snapshot from [`SnapshotCell::load`].
    pub struct SnapshotGuard<T>(arc_swap::Guard<Arc<T>>);

    impl<T> std::ops::Deref for SnapshotGuard<T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.0
        }
    }

    /// Yields to the scheduler in a spin loop (a no-op hint outside loom).
    pub fn spin_hint() {
        std::hint::spin_loop();
    }
}

#[cfg(any(feature = "loom", credpool_loom))]
mod imp {
    pub use loom::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
    pub use loom::sync::Arc;

    #[derive(Debug)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);
    pub type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().expect("loom mutex poisoned: the model already panicked")
        }
        pub fn into_inner(self) -> T {
            self.0.into_inner().expect("loom mutex poisoned")
        }
    }

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Self::new(T::default())
        }
    }

    #[derive(Debug)]
    pub struct RwLock<T>(loom::sync::RwLock<T>);
    pub type RwLockReadGuard<'a, T> = loom::sync::RwLockReadGuard<'a, T>;
    pub type RwLockWriteGuard<'a, T> = loom::sync::RwLockWriteGuard<'a, T>;

    impl<T> RwLock<T> {
        pub fn new(value: T) -> Self {
            Self(loom::sync::RwLock::new(value))
        }
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().expect("loom rwlock poisoned")
        }
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write().expect("loom rwlock poisoned")
        }
    }

    /// Loom stand-in for `ArcSwap`: a lock around the `Arc`, so loom sees every publication.
    #[derive(Debug)]
    pub struct SnapshotCell<T>(loom::sync::RwLock<Arc<T>>);

    impl<T> SnapshotCell<T> {
        pub fn new(value: Arc<T>) -> Self {
            Self(loom::sync::RwLock::new(value))
        }
        pub fn load_full(&self) -> Arc<T> {
            self.0.read().expect("poisoned").clone()
        }
        /// Under loom a load is a clone of the `Arc` (what loom checks is the publication).
        pub fn load(&self) -> SnapshotGuard<T> {
            SnapshotGuard(self.load_full())
        }
        pub fn store(&self, value: Arc<T>) {
            *self.0.write().expect("poisoned") = value;
        }
        pub fn rcu<F: FnMut(&Arc<T>) -> T>(&self, mut f: F) -> Arc<T> {
            let mut guard = self.0.write().expect("poisoned");
            let new = Arc::new(f(&guard));
            *guard = new.clone();
            new
        }
    }

    /// A borrowed snapshot from [`SnapshotCell::load`].
    pub struct SnapshotGuard<T>(Arc<T>);

    impl<T> std::ops::Deref for SnapshotGuard<T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.0
        }
    }

    pub fn spin_hint() {
        loom::thread::yield_now();
    }
}

pub use imp::*;
