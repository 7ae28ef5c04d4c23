//! Scenario files: every shipped scenario is valid, and every kind of mistake is refused with the
//! file, line and column and a sentence saying what was expected.

use credpool::scenario::plan;
use std::path::Path;

const GOOD: &str = r#"
name = "t"
[pool]
credentials = 3
[load]
model = "burst"
requests = 10
"#;

fn err(text: &str) -> String {
    plan::parse(Path::new("s.toml"), text).unwrap_err().to_string()
}

#[test]
fn every_shipped_scenario_is_valid() {
    let mut n = 0;
    for entry in std::fs::read_dir("scenarios").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            plan::load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 10, "expected the shipped scenarios, found {n}");
}

#[test]
fn minimal_scenario_gets_defaults() {
    let p = plan::parse(Path::new("s.toml"), GOOD).unwrap();
    assert_eq!(p.credentials, 3);
    assert_eq!(p.policy.calls_per_rotation, 100);
    assert_eq!(p.seed, 1);
    assert!(!p.strategies.is_empty());
}

#[test]
fn unknown_key_is_located() {
    let e = err(&GOOD.replace("requests = 10", "requests = 10\nrequets = 5"));
    assert!(e.starts_with("s.toml:8:1: "), "{e}");
    assert!(e.contains("unknown field `requets`"), "{e}");
}

#[test]
fn wrong_type_is_located() {
    let e = err(&GOOD.replace("credentials = 3", "credentials = \"three\""));
    assert!(e.starts_with("s.toml:4:15: "), "{e}");
}

#[test]
fn zero_credentials_are_refused() {
    let e = err(&GOOD.replace("credentials = 3", "credentials = 0"));
    assert!(e.starts_with("s.toml:4:15: "), "{e}");
    assert!(e.contains("at least 1"), "{e}");
}

#[test]
fn negative_and_unitless_durations_are_refused() {
    let e = err(&format!("{GOOD}[costs]\ncheck_quota = \"-5ms\"\n"));
    assert!(e.contains("s.toml:9:15") && e.contains("negative"), "{e}");
    let e = err(&format!("{GOOD}[costs]\ncheck_quota = 30\n"));
    assert!(e.contains("write the unit"), "{e}");
    let e = err(&format!("{GOOD}[costs]\ncheck_quota = \"30 parsecs\"\n"));
    assert!(e.contains("unknown unit"), "{e}");
    let e = err(&format!("{GOOD}[costs]\ncheck_quota = \"9999d\"\n"));
    assert!(e.contains("one year"), "{e}");
}

#[test]
fn rates_outside_zero_one_are_refused() {
    let e = err(&format!("{GOOD}[upstream]\nstatus_429_rate = 1.5\n"));
    assert!(e.contains("s.toml:9:19") && e.contains("between 0.0 and 1.0"), "{e}");
    let e = err(&format!("{GOOD}[upstream]\nstatus_429_rate = -0.1\n"));
    assert!(e.contains("between 0.0 and 1.0"), "{e}");
}

#[test]
fn indices_beyond_the_pool_are_refused() {
    let e = err(&GOOD.replace("credentials = 3", "credentials = 3\nexpired = [0, 3]"));
    assert!(e.starts_with("s.toml:5:11: "), "{e}");
    assert!(e.contains("credential 3"), "{e}");
}

#[test]
fn unknown_strategy_and_metric_are_refused() {
    let e = err(&GOOD.replace("name = \"t\"", "name = \"t\"\nstrategies = [\"spinlock\"]"));
    assert!(e.starts_with("s.toml:3:14: ") && e.contains("unknown strategy \"spinlock\""), "{e}");
    let e = err(&format!("{GOOD}[[expect]]\nstrategy = \"all\"\nmetric = \"latency.p42\"\nat_most = \"1s\"\n"));
    assert!(e.contains("s.toml:8:1") && e.contains("unknown metric"), "{e}");
}

#[test]
fn expectation_needs_exactly_one_bound() {
    let e = err(&format!("{GOOD}[[expect]]\nstrategy = \"all\"\nmetric = \"errors\"\n"));
    assert!(e.contains("exactly one of"), "{e}");
}

#[test]
fn open_load_needs_a_rate() {
    let e = err(&GOOD.replace("model = \"burst\"", "model = \"open\""));
    assert!(e.contains("needs `load.rate`"), "{e}");
    let e = err(&GOOD.replace("requests = 10", "requests = 10\nrate = 5"));
    assert!(e.contains("apply to `model = \"open\"` only"), "{e}");
}

#[test]
fn missing_tables_and_syntax_errors_are_located() {
    let e = err("name = \"t\"\n[pool]\ncredentials = 3\n");
    assert!(e.contains("missing field `load`"), "{e}");
    let e = err("name = \"t\n");
    assert!(e.starts_with("s.toml:1:"), "{e}");
}

#[test]
fn absurd_counts_are_refused() {
    let e = err(&GOOD.replace("requests = 10", "requests = 99999999999"));
    assert!(e.contains("absurdly large"), "{e}");
}
