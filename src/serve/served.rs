//! The strategy one serve process hosts: one of the registry's in-process designs, or `fleet`,
//! an instance of a fleet sharing its pool through Redis (docs/fleet.md).
//!
//! `fleet` is built here rather than by the registry because serve builds it over a real
//! [`RedisPool`] (the registry's scenarios build it over a modelled one, or none), with the
//! `--redis`, `--pool` and `--refresh-lease-ttl` settings only serve has. [`ServedName`] is what
//! `--strategy` and the config file's `strategy` accept: `fleet` first, then any registry name.

use crate::fleet::{RedisPool, RedisTimeouts};
use crate::model::{Account, Change, Outcome};
use crate::strategy::fleet::{Fleet, FleetFigures, FleetOptions};
use crate::strategy::{AcquireError, AnyStrategy, CredentialManager, Env, Lease, Request, StrategyName, StrategyStats};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A strategy name as serve takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServedName {
    Local(StrategyName),
    Fleet,
}

impl ServedName {
    pub fn as_str(self) -> &'static str {
        match self {
            ServedName::Local(name) => name.as_str(),
            ServedName::Fleet => "fleet",
        }
    }
}

impl fmt::Display for ServedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServedName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "fleet" {
            return Ok(ServedName::Fleet);
        }
        // The registry's names include `fleet` (its modelled form, for scenarios): its error
        // already lists every name serve takes.
        StrategyName::from_str(s).map(ServedName::Local)
    }
}

impl<'de> serde::Deserialize<'de> for ServedName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ServedName::from_str(&text).map_err(serde::de::Error::custom)
    }
}

/// The hosted strategy, dispatched by `match` as [`AnyStrategy`] is.
pub enum Served {
    /// Boxed: an in-process design carries its pool; a fleet instance is one `Arc`.
    Local(Box<AnyStrategy>),
    Fleet(Fleet),
}

/// What serve needs to build a fleet instance.
pub struct FleetBuild<'a> {
    pub redis_url: &'a str,
    pub pool: &'a str,
    pub lease_ttl: std::time::Duration,
    pub refresh_timeout: std::time::Duration,
}

impl Served {
    /// Builds `name` over `env`; `fleet` also needs `fleet` (its Redis). Call inside the runtime
    /// (the Redis connection's tasks are spawned on it; it connects lazily, so a Redis that is
    /// down makes the instance start degraded, not fail).
    pub fn build(name: ServedName, env: Env, fleet: Option<FleetBuild<'_>>) -> Result<Served, String> {
        match (name, fleet) {
            (ServedName::Local(name), _) => Ok(Served::Local(Box::new(name.build(env)))),
            (ServedName::Fleet, None) => Err("strategy fleet needs --redis".into()),
            (ServedName::Fleet, Some(f)) => {
                let pool = RedisPool::open(f.redis_url, f.pool, RedisTimeouts::default())?;
                let options = FleetOptions {
                    lease_ttl: f.lease_ttl,
                    refresh_timeout: f.refresh_timeout,
                    ..FleetOptions::default()
                };
                Ok(Served::Fleet(Fleet::new(env, Arc::new(pool), options)))
            }
        }
    }

    /// The fleet's own figures, for `/metrics`; `None` for an in-process strategy.
    pub fn fleet_figures(&self) -> Option<FleetFigures> {
        match self {
            Served::Local(_) => None,
            Served::Fleet(f) => Some(f.figures()),
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Served::Local($s) => $e,
            Served::Fleet($s) => $e,
        }
    };
}

impl CredentialManager for Served {
    const MARKS_STEPS: bool = true;

    fn name(&self) -> &'static str {
        dispatch!(self, s => s.name())
    }

    async fn acquire(&self, request: &Request) -> Result<Lease, AcquireError> {
        dispatch!(self, s => s.acquire(request).await)
    }

    async fn complete(&self, lease: Lease, request: &Request, outcome: Outcome) -> Result<(), AcquireError> {
        dispatch!(self, s => s.complete(lease, request, outcome).await)
    }

    fn stats(&self) -> StrategyStats {
        dispatch!(self, s => s.stats())
    }

    async fn accounts(&self) -> Vec<Account> {
        dispatch!(self, s => s.accounts().await)
    }

    async fn switch(&self, index: usize, change: &Change) -> bool {
        dispatch!(self, s => s.switch(index, change).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_with_fleet_among_them() {
        assert_eq!("fleet".parse::<ServedName>(), Ok(ServedName::Fleet));
        assert_eq!(
            "lock_free".parse::<ServedName>(),
            Ok(ServedName::Local(StrategyName::LockFree))
        );
        let e = "fastest".parse::<ServedName>().unwrap_err();
        assert!(e.contains("unknown strategy") && e.contains("lock_free, fleet"), "{e}");
        assert_eq!(e.matches("fleet").count(), 1, "fleet listed once: {e}");
    }
}
