//! The statistics of `credpool compare`: Mann-Whitney p-values against scipy's (fixtures), the
//! verdict's false-alarm rate in A/A comparisons of real runs, and the detection of a 5% slower
//! upstream.

mod common;

use credpool::analysis::stats::mann_whitney::{self, Method};

#[derive(serde::Deserialize)]
struct Fixtures {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    x: Vec<f64>,
    y: Vec<f64>,
    u: f64,
    p_asymptotic: f64,
    p_exact: Option<f64>,
}

fn close(got: f64, want: f64, what: &str) {
    let err = (got - want).abs() / want.abs().max(1e-300);
    assert!(
        err < 1e-9 || (got - want).abs() < 1e-15,
        "{what}: got {got}, scipy {want}"
    );
}

#[test]
fn p_values_match_scipy() {
    let text = std::fs::read_to_string("tests/fixtures/mann_whitney.json").unwrap();
    let f: Fixtures = serde_json::from_str(&text).unwrap();
    assert!(f.cases.len() >= 30);
    let mut exact = 0;
    for c in &f.cases {
        let a = mann_whitney::test_with(&c.x, &c.y, Method::Asymptotic).unwrap();
        assert_eq!(a.u, c.u, "{}: U", c.name);
        close(a.p_value, c.p_asymptotic, &format!("{} asymptotic", c.name));
        let small = c.x.len() + c.y.len() <= mann_whitney::EXACT_MAX_TOTAL;
        match c.p_exact.filter(|_| small) {
            Some(p) => {
                let e = mann_whitney::test_with(&c.x, &c.y, Method::Exact).unwrap();
                close(e.p_value, p, &format!("{} exact", c.name));
                // Without ties and at this size, the automatic choice is the exact test.
                assert_eq!(
                    mann_whitney::test(&c.x, &c.y).unwrap().method,
                    Method::Exact,
                    "{}",
                    c.name
                );
                exact += 1;
            }
            None => {
                // Ties, or too large for the exact distribution: the approximation.
                assert!(
                    mann_whitney::test_with(&c.x, &c.y, Method::Exact).is_none(),
                    "{}",
                    c.name
                );
                assert_eq!(mann_whitney::test(&c.x, &c.y).unwrap().method, Method::Asymptotic);
            }
        }
    }
    assert!(exact >= 20, "{exact} exact cases");
}

use credpool::analysis::stats::verdict::{Rule, Verdict};
use credpool::report::summary::ScenarioSummary;
use credpool::report::verdicts::{self, StatVerdict};
use credpool::scenario::plan::{self, Plan};
use credpool::scenario::repeat;
use credpool::strategy::StrategyName;

/// An open load through lock_free with a lognormal upstream whose median is `median_ms`
/// (the p99 three times it): per-repetition figures vary with the seed.
fn open_load(median_ms: f64, requests: u32) -> Plan {
    plan::parse(
        std::path::Path::new("t.toml"),
        &format!(
            r#"
name = "stats"
mode = "virtual"
seed = 1
strategies = ["lock_free"]
[pool]
credentials = 2
record_outcomes = false
[load]
model = "open"
rate = 50
requests = {requests}
[upstream]
api_latency = {{ dist = "lognormal", median = "{median_ms}ms", p99 = "{p99}ms" }}
"#,
            p99 = median_ms * 3.0
        ),
    )
    .unwrap()
}

/// `n` repetitions of `plan` from base seed `seed`, as `credpool run --repeat n --seed seed`.
fn repeated(plan: &Plan, seed: u64, n: u32) -> ScenarioSummary {
    let plan = repeat::reseeded(plan, seed);
    let reps = repeat::run_repetitions(&plan, &[StrategyName::LockFree], n, 2, None).unwrap();
    ScenarioSummary::from_repetitions(&reps)
}

fn judge(old: &ScenarioSummary, new: &ScenarioSummary, rule: &Rule) -> Vec<StatVerdict> {
    verdicts::judge("stats", &old.results[0], &new.results[0], rule)
}

/// A/A: two sets of repetitions of the same scenario on independent seeds, many times. The
/// Mann-Whitney test must flag (p < alpha) about alpha of them and no more; the verdict, which
/// also needs the change to clear the noise threshold, flags no more than that.
///
/// 200 trials at alpha = 0.05: if the test holds its level, the number flagged is Binomial(200,
/// p) with p the test's size (the exact test is discrete: with 8 repetitions a side its size at
/// 0.05 is 0.0499). The acceptance interval is [1, 21]: P(X >= 22) = 0.00048 at p = 0.05
/// (scipy.stats.binom.sf(21, 200, 0.05)), and the lower bound only guards against a test that
/// never fires (P(X = 0) = 3.5e-5). CREDPOOL_LONG=1 runs those 200 trials; the default runs 40,
/// with the interval [0, 7] (P(X >= 8) = 0.00071).
#[test]
fn a_a_comparisons_flag_about_alpha_and_no_more() {
    let long = std::env::var_os("CREDPOOL_LONG").is_some();
    let (trials, n, upper) = if long { (200u64, 8, 21) } else { (40, 8, 7) };
    let lower = if long { 1 } else { 0 };
    let rule = Rule::default();
    let plan = open_load(100.0, 40);
    let mut flagged = vec![0usize; verdicts::FIGURES.len()];
    let mut verdicts_flagged = vec![0usize; verdicts::FIGURES.len()];
    for t in 0..trials {
        let old = repeated(&plan, 1_000 + 2 * t, n);
        let new = repeated(&plan, 1_001 + 2 * t, n);
        for (i, v) in judge(&old, &new, &rule).iter().enumerate() {
            assert_eq!(v.old_values.len(), n as usize);
            flagged[i] += (v.assessment.p_value.unwrap() < rule.alpha) as usize;
            verdicts_flagged[i] += matches!(v.verdict(), Verdict::Improved | Verdict::Regressed) as usize;
        }
    }
    for (i, (figure, _, _)) in verdicts::FIGURES.iter().enumerate() {
        eprintln!(
            "{figure}: {} of {trials} A/A trials with p < {}, {} with a verdict",
            flagged[i], rule.alpha, verdicts_flagged[i]
        );
        assert!(
            (lower..=upper).contains(&flagged[i]),
            "{figure}: {} of {trials} flagged, outside [{lower}, {upper}]",
            flagged[i]
        );
        assert!(verdicts_flagged[i] <= flagged[i]);
    }
}

/// A 5% slower upstream (every latency draw 5% longer: median and p99 both scaled) is detected
/// as `regressed` on the mean and the median, with 10 repetitions of each run on the same seeds
/// (as two `credpool run --repeat 10` would give); the same runs compared with themselves give
/// no verdict; one repetition each is descriptive only.
#[test]
fn a_five_percent_slower_upstream_is_detected() {
    let rule = Rule::default();
    let old = repeated(&open_load(100.0, 300), 7, 10);
    let new = repeated(&open_load(105.0, 300), 7, 10);
    let v = judge(&old, &new, &rule);
    for figure in ["mean", "p50"] {
        let x = v.iter().find(|x| x.figure == figure).unwrap();
        eprintln!("{figure}: {:?} {}", x.assessment.change, x.assessment.reason);
        assert_eq!(x.verdict(), Verdict::Regressed, "{figure}: {}", x.assessment.reason);
        let c = x.assessment.change.unwrap();
        assert!(c.low > 0.02 && c.low < 0.05 && c.high > 0.05, "{figure}: {c:?}");
    }
    assert!(judge(&old, &old, &rule)
        .iter()
        .all(|x| x.verdict() == Verdict::NoChange));
    let one_old = repeated(&open_load(100.0, 300), 7, 1);
    let one_new = repeated(&open_load(105.0, 300), 7, 1);
    assert!(judge(&one_old, &one_new, &rule)
        .iter()
        .all(|x| x.verdict() == Verdict::Descriptive));
}
