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
