//! Modelled step costs, charged where a strategy performs the step.
//!
//! A scenario gives each step of the proxy's request path a duration. A strategy calls
//! [`Costs::charge`] at the exact point where it performs that step, inside or outside its lock,
//! so the same cost produces different latencies under different strategies. Under tokio's paused
//! clock a charge advances virtual time exactly; on the wall clock it really waits, up to a
//! deadline kept by [`crate::pacing`] so that timer overshoot does not accumulate. With all costs
//! zero nothing is charged and the native Rust code is what is measured.

use crate::pacing::Pace;
use std::time::Duration;

/// One step of the request path that has a configurable cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Decide whether to rotate to the next account.
    CheckRotation,
    /// Load the current credential (the Python code reads it from the file).
    LoadCredential,
    /// Check quota and model-series bans.
    CheckQuota,
    /// Take (and release) the store's file lock.
    FileLock,
    /// Read `accounts.toml` (and, where no [`Step::TomlParse`] cost is given, parse it).
    FileRead,
    /// Parse the text read into a document (the shipped proxy's `toml.loads`: 1.03 ms measured).
    TomlParse,
    /// Modify the parsed state in memory.
    StateUpdate,
    /// Serialise the document to text (the shipped proxy's `toml.dumps`: 0.21 ms measured).
    TomlDump,
    /// Write `accounts.toml` (temp file and rename, or in place).
    FileWrite,
    /// One fsync (of the file or of its directory).
    Fsync,
    /// Work that blocks the whole event loop, not only the lock holder (building an HTTP client
    /// synchronously in the single-threaded Python proxy).
    EventLoopStall,
    /// One log line written by the shipped proxy (0.04 ms measured; about seven per state update).
    LogLine,
}

/// The cost of every step. Zero by default: the native code, nothing modelled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Costs {
    pub check_rotation: Duration,
    pub load_credential: Duration,
    pub check_quota: Duration,
    pub file_lock: Duration,
    pub file_read: Duration,
    pub toml_parse: Duration,
    pub state_update: Duration,
    pub toml_dump: Duration,
    pub file_write: Duration,
    pub fsync: Duration,
    pub event_loop_stall: Duration,
    pub log_line: Duration,
    /// How a charge waits: plain sleeps by default, a real-time run's deadlines when
    /// [`Costs::paced`].
    pub pace: Pace,
}

impl Costs {
    pub fn of(&self, step: Step) -> Duration {
        match step {
            Step::CheckRotation => self.check_rotation,
            Step::LoadCredential => self.load_credential,
            Step::CheckQuota => self.check_quota,
            Step::FileLock => self.file_lock,
            Step::FileRead => self.file_read,
            Step::TomlParse => self.toml_parse,
            Step::StateUpdate => self.state_update,
            Step::TomlDump => self.toml_dump,
            Step::FileWrite => self.file_write,
            Step::Fsync => self.fsync,
            Step::EventLoopStall => self.event_loop_stall,
            Step::LogLine => self.log_line,
        }
    }

    /// Spends the step's cost on the current clock. A zero cost does not yield, so the native
    /// code path is not perturbed by an extra scheduling point.
    pub async fn charge(&self, step: Step) {
        let d = self.of(step);
        if !d.is_zero() {
            self.pace.spend(d).await;
        }
    }

    /// The selection path of the seed's model: rotation check, credential load, quota check.
    pub async fn charge_selection(&self) {
        self.charge(Step::CheckRotation).await;
        self.charge(Step::LoadCredential).await;
        self.charge(Step::CheckQuota).await;
    }

    /// Reading the accounts file and parsing it: every store's read.
    pub async fn charge_read(&self) {
        self.charge(Step::FileRead).await;
        self.charge(Step::TomlParse).await;
    }

    /// Every cost × `k`: what a virtual run spends on tokio's clock (see [`crate::clock`]).
    pub fn scaled(self, k: u32) -> Costs {
        let s = |d: Duration| d.saturating_mul(k);
        Costs {
            check_rotation: s(self.check_rotation),
            load_credential: s(self.load_credential),
            check_quota: s(self.check_quota),
            file_lock: s(self.file_lock),
            file_read: s(self.file_read),
            toml_parse: s(self.toml_parse),
            state_update: s(self.state_update),
            toml_dump: s(self.toml_dump),
            file_write: s(self.file_write),
            fsync: s(self.fsync),
            event_loop_stall: s(self.event_loop_stall),
            log_line: s(self.log_line),
            pace: self.pace,
        }
    }

    /// The same costs, charged against `pace`'s deadlines.
    pub fn paced(self, pace: Pace) -> Costs {
        Costs { pace, ..self }
    }

    /// The same costs with the file costs at zero: for a test that measures what the strategy
    /// alone charges, with a store that costs nothing.
    pub fn without_file_costs(mut self) -> Costs {
        self.file_lock = Duration::ZERO;
        self.file_read = Duration::ZERO;
        self.toml_parse = Duration::ZERO;
        self.state_update = Duration::ZERO;
        self.toml_dump = Duration::ZERO;
        self.file_write = Duration::ZERO;
        self.fsync = Duration::ZERO;
        self
    }
}
