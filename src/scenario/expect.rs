//! One `[[expect]]` row of a scenario file, validated: the strategies it covers ([`Target`]), the
//! metric and bound it checks (the vocabulary of [`crate::metrics::expectation`]) and the mode
//! it is checked in.

use crate::metrics::expectation::{Check, Metric};
use crate::strategy::StrategyName;
use std::str::FromStr;

/// The strategies an `[[expect]]` applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `"all"`: every strategy, `as_shipped` included.
    All,
    /// `"credpool"`: credpool's strategies, i.e. every strategy but `as_shipped`, the replica of
    /// the shipped proxy's defects (for bounds that replica is known to break).
    Credpool,
    /// One strategy by name.
    One(StrategyName),
    /// The scenario's `[target]`, by its `name` (no strategy).
    TheTarget,
}

impl Target {
    pub fn covers(self, s: StrategyName) -> bool {
        match self {
            Target::All => true,
            Target::Credpool => s != StrategyName::AsShipped,
            Target::One(one) => one == s,
            Target::TheTarget => false,
        }
    }
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(Target::All),
            "credpool" => Ok(Target::Credpool),
            name => name
                .parse()
                .map(Target::One)
                .map_err(|e| format!("{e}, or \"all\", or \"credpool\" (every strategy but as_shipped)")),
        }
    }
}

/// One `[[expect]]`, validated.
#[derive(Clone, Debug)]
pub struct Expectation {
    pub strategy: Target,
    pub metric: Metric,
    pub check: Check,
    /// `None`: checked in both modes.
    pub mode: Option<crate::scenario::spec::Mode>,
    pub note: String,
}

impl Expectation {
    /// This expectation checked against `value`, the run's figure for its metric.
    pub fn result(&self, value: f64) -> crate::metrics::expectation::ExpectationResult {
        crate::metrics::expectation::ExpectationResult {
            metric: self.metric.name(),
            bound: self.check.describe(),
            value,
            passed: self.check.holds(value),
            note: self.note.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectation_targets() {
        let credpool: Target = "credpool".parse().unwrap();
        assert!(credpool.covers(StrategyName::LockFree));
        assert!(!credpool.covers(StrategyName::AsShipped));
        assert!("all".parse::<Target>().unwrap().covers(StrategyName::AsShipped));
        assert_eq!("rwlock".parse::<Target>().unwrap(), Target::One(StrategyName::Rwlock));
        assert!("spin".parse::<Target>().unwrap_err().contains("\"credpool\""));
    }
}
