//! Checks on a fleet run's recorded history: the safety rules of docs/fleet.md stated on events,
//! so any run (a modelled fleet, N `credpool serve` processes) can be judged after the fact.
//!
//! A [`History`] is a list of [`Event`]s, each placed by `began`/`at`, numbers from one
//! monotonic sequence of the recorder (not wall time, so "completed before it began" is exact).
//! [`check`] returns every [`Violation`] of:
//!
//! 1. **generations strictly increase**: each account's committed refreshes go to ever higher
//!    generations, in the order they completed;
//! 2. **at most one committed refresh per generation**: two commits from the same generation of
//!    one account are a lost fence (two instances both refreshed one token);
//! 3. **no acquisition of an excluded account**: no acquisition that began after a disable of its
//!    account, or a ban of its account for its series, had completed (and while the ban runs);
//! 4. **no resurrected account**: nothing happens to an account after its deletion completed.

use std::collections::HashMap;

/// One recorded event. `account` is the pool index; sequence numbers order events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A lease of `account` for `series`, asked for at sequence `began`, at `at_ms`.
    Acquired {
        account: usize,
        series: Option<String>,
        began: u64,
        at_ms: i64,
    },
    /// A refresh of `account` from generation `from` committed as generation `to`, at `at`.
    Committed {
        account: usize,
        from: u64,
        to: u64,
        at: u64,
    },
    /// A disable of `account` completed (written to the shared state) at `at`.
    Disabled { account: usize, at: u64 },
    /// An enable of `account` completed at `at`.
    Enabled { account: usize, at: u64 },
    /// A ban of `account` for `series` until `until_ms` completed at `at`.
    Banned {
        account: usize,
        series: String,
        until_ms: i64,
        at: u64,
    },
    /// `account` was deleted at `at`.
    Deleted { account: usize, at: u64 },
}

/// A run's history, in any order (each event carries its place in the sequence).
#[derive(Clone, Debug, Default)]
pub struct History {
    pub events: Vec<Event>,
}

/// One broken rule, with the account and sequence numbers that show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    GenerationNotIncreasing {
        account: usize,
        previous: u64,
        committed: u64,
    },
    TwoCommitsFromOneGeneration {
        account: usize,
        generation: u64,
    },
    AcquiredWhileExcluded {
        account: usize,
        began: u64,
        excluded_at: u64,
    },
    Resurrected {
        account: usize,
        deleted_at: u64,
        seen_at: u64,
    },
}

/// Every violation of the module comment's four rules.
pub fn check(history: &History) -> Vec<Violation> {
    let mut out = Vec::new();
    let seq = |e: &Event| match e {
        Event::Acquired { began, .. } => *began,
        Event::Committed { at, .. }
        | Event::Disabled { at, .. }
        | Event::Enabled { at, .. }
        | Event::Banned { at, .. }
        | Event::Deleted { at, .. } => *at,
    };
    let account_of = |e: &Event| match e {
        Event::Acquired { account, .. }
        | Event::Committed { account, .. }
        | Event::Disabled { account, .. }
        | Event::Enabled { account, .. }
        | Event::Banned { account, .. }
        | Event::Deleted { account, .. } => *account,
    };
    let mut events: Vec<&Event> = history.events.iter().collect();
    events.sort_by_key(|e| seq(e));

    // 1 and 2: commits per account, in completion order.
    let mut last_generation: HashMap<usize, u64> = HashMap::new();
    let mut commits_from: HashMap<(usize, u64), u32> = HashMap::new();
    for e in &events {
        if let Event::Committed { account, from, to, .. } = e {
            if let Some(&previous) = last_generation.get(account) {
                if *to <= previous {
                    out.push(Violation::GenerationNotIncreasing {
                        account: *account,
                        previous,
                        committed: *to,
                    });
                }
            }
            last_generation.insert(*account, *to);
            let n = commits_from.entry((*account, *from)).or_insert(0);
            *n += 1;
            if *n == 2 {
                out.push(Violation::TwoCommitsFromOneGeneration {
                    account: *account,
                    generation: *from,
                });
            }
        }
    }

    // 3 and 4: walk the sequence keeping each account's exclusions and deletion.
    let mut disabled_at: HashMap<usize, u64> = HashMap::new();
    let mut bans: HashMap<(usize, String), (i64, u64)> = HashMap::new();
    let mut deleted_at: HashMap<usize, u64> = HashMap::new();
    for e in &events {
        let account = account_of(e);
        if let Some(&deleted) = deleted_at.get(&account) {
            out.push(Violation::Resurrected {
                account,
                deleted_at: deleted,
                seen_at: seq(e),
            });
            continue;
        }
        match e {
            Event::Disabled { at, .. } => {
                disabled_at.entry(account).or_insert(*at);
            }
            Event::Enabled { .. } => {
                disabled_at.remove(&account);
            }
            Event::Banned {
                series, until_ms, at, ..
            } => {
                let ban = bans.entry((account, series.clone())).or_insert((*until_ms, *at));
                ban.0 = ban.0.max(*until_ms);
            }
            Event::Deleted { at, .. } => {
                deleted_at.insert(account, *at);
            }
            Event::Acquired {
                series, began, at_ms, ..
            } => {
                let banned = series
                    .as_ref()
                    .and_then(|s| bans.get(&(account, s.clone())))
                    .filter(|(until, _)| *at_ms < *until)
                    .map(|(_, at)| *at);
                if let Some(excluded_at) = disabled_at.get(&account).copied().or(banned) {
                    out.push(Violation::AcquiredWhileExcluded {
                        account,
                        began: *began,
                        excluded_at,
                    });
                }
            }
            Event::Committed { .. } => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acquired(account: usize, began: u64) -> Event {
        Event::Acquired {
            account,
            series: Some("gemini".into()),
            began,
            at_ms: 1_000,
        }
    }

    fn committed(account: usize, from: u64, to: u64, at: u64) -> Event {
        Event::Committed { account, from, to, at }
    }

    #[test]
    fn a_clean_history_passes() {
        let h = History {
            events: vec![
                acquired(0, 1),
                committed(0, 10, 11, 2),
                committed(0, 11, 12, 3),
                Event::Disabled { account: 1, at: 4 },
                acquired(0, 5),
                Event::Banned {
                    account: 0,
                    series: "gemini".into(),
                    until_ms: 900,
                    at: 6,
                },
                acquired(0, 7),
                Event::Deleted { account: 2, at: 8 },
            ],
        };
        assert_eq!(check(&h), vec![]);
    }

    #[test]
    fn each_rule_broken_is_reported() {
        let h = History {
            events: vec![
                committed(0, 10, 11, 1),
                committed(0, 10, 11, 2),
                Event::Disabled { account: 1, at: 3 },
                acquired(1, 4),
                Event::Banned {
                    account: 2,
                    series: "gemini".into(),
                    until_ms: 5_000,
                    at: 5,
                },
                acquired(2, 6),
                Event::Deleted { account: 3, at: 7 },
                acquired(3, 8),
            ],
        };
        assert_eq!(
            check(&h),
            vec![
                Violation::GenerationNotIncreasing {
                    account: 0,
                    previous: 11,
                    committed: 11
                },
                Violation::TwoCommitsFromOneGeneration {
                    account: 0,
                    generation: 10
                },
                Violation::AcquiredWhileExcluded {
                    account: 1,
                    began: 4,
                    excluded_at: 3
                },
                Violation::AcquiredWhileExcluded {
                    account: 2,
                    began: 6,
                    excluded_at: 5
                },
                Violation::Resurrected {
                    account: 3,
                    deleted_at: 7,
                    seen_at: 8
                },
            ]
        );
    }

    #[test]
    fn an_acquisition_that_began_before_the_disable_completed_is_not_a_violation() {
        let h = History {
            events: vec![acquired(1, 3), Event::Disabled { account: 1, at: 4 }],
        };
        assert_eq!(check(&h), vec![]);
    }
}
