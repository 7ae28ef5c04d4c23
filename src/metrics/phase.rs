//! Where a request's time goes.

use serde::{Deserialize, Serialize};

/// The phases of one request. `lock_wait + hold + refresh_wait` is the acquisition; then the
/// upstream call; then the outcome bookkeeping. With an open load, `queued` is the time between
/// the intended start and the moment the request was actually issued (zero in virtual time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    LockWait,
    Hold,
    RefreshWait,
    Upstream,
    Bookkeeping,
}

impl Phase {
    pub const ALL: [Phase; 5] = [Phase::LockWait, Phase::Hold, Phase::RefreshWait, Phase::Upstream, Phase::Bookkeeping];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::LockWait => "lock_wait",
            Phase::Hold => "hold",
            Phase::RefreshWait => "refresh_wait",
            Phase::Upstream => "upstream",
            Phase::Bookkeeping => "bookkeeping",
        }
    }

    /// A label for charts and tables.
    pub fn label(self) -> &'static str {
        match self {
            Phase::LockWait => "lock/queue wait",
            Phase::Hold => "holding the lock",
            Phase::RefreshWait => "refresh wait",
            Phase::Upstream => "upstream call",
            Phase::Bookkeeping => "bookkeeping",
        }
    }
}

impl std::str::FromStr for Phase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            format!("unknown phase {s:?}: expected one of lock_wait, hold, refresh_wait, upstream, bookkeeping")
        })
    }
}
