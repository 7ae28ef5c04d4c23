//! The findings in index.html: a run of calibrated `real-*` scenarios puts a Findings section
//! after the matrix, with a calibration row per figure measured on the shipped code, the defects
//! with their remedies, and the analysis' claims; a deadlocked `as_shipped` run shows where its
//! requests were stuck, marked as expected; `as_shipped` is set apart; scenario text is escaped.
//!
//! Runs go through the library (virtual time, two strategies each), each on a thread with a
//! timeout so a broken watchdog fails the test instead of hanging it.

use credpool::report::html;
use credpool::report::summary::{Machine, ScenarioSummary, Summary, SCHEMA_VERSION};
use credpool::scenario::plan::{self, Plan};
use credpool::scenario::suite;
use credpool::strategy::StrategyName;
use std::path::Path;
use std::time::Duration;

const RUN_LIMIT: Duration = Duration::from_secs(60);

fn real(file: &str) -> Plan {
    plan::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(file)).unwrap()
}

/// Runs `plan` with global_mutex and as_shipped on its own thread, failing if it does not end.
fn run(plan: Plan) -> ScenarioSummary {
    let (tx, rx) = std::sync::mpsc::channel();
    let name = plan.name.clone();
    std::thread::spawn(move || {
        let ran = suite::run_scenario(&plan, &[StrategyName::GlobalMutex, StrategyName::AsShipped], None);
        let _ = tx.send(ran.map(|r| ScenarioSummary::from_run(&r)));
    });
    rx.recv_timeout(RUN_LIMIT)
        .unwrap_or_else(|_| panic!("{name}: the run did not end within {RUN_LIMIT:?}"))
        .unwrap()
}

fn summary(scenarios: Vec<ScenarioSummary>) -> Summary {
    let mut s = Summary {
        schema: SCHEMA_VERSION,
        credpool_version: "test".into(),
        git_revision: "test".into(),
        started_at: "2025-01-01T00:00:00Z".into(),
        wall_time_s: 1.0,
        machine: Machine::this(),
        command: vec!["credpool".into(), "run".into()],
        scenarios: Vec::new(),
        findings: Default::default(),
        sweeps: Vec::new(),
    };
    for sc in scenarios {
        s.push(sc);
    }
    s
}

/// The part of `page` between the Findings heading and the first scenario section.
fn findings_section(page: &str) -> &str {
    let start = page.find("id=\"findings\"").expect("a Findings section");
    let end = page[start..].find("</section>").expect("the section ends") + start;
    &page[start..end]
}

#[test]
fn findings_section_follows_the_matrix_with_the_run_figures() {
    let error_reports = run(real("real-error-reports-locked.toml"));
    let failure = run(real("real-refresh-failure.toml"));
    let s = summary(vec![error_reports, failure]);
    assert!(
        !s.findings.calibration.is_empty(),
        "the real-* scenarios have references"
    );
    let page = html::render(&s);

    let matrix = page.find("id=\"matrix\"").unwrap();
    let findings = page.find("id=\"findings\"").unwrap();
    let first_scenario = page.find("class=\"card scenario\"").unwrap();
    assert!(
        matrix < findings && findings < first_scenario,
        "matrix, findings, scenarios"
    );
    let section = findings_section(&page);

    // One calibration row per row of the findings, with the run's own model figure.
    let table = &section[section.find("class=\"calibration\"").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(
        table.matches("<tr").count() - 1,
        s.findings.calibration.len(),
        "{table}"
    );
    let lost = s
        .findings
        .calibration
        .iter()
        .find(|r| r.scenario == "real-error-reports-locked" && r.metric == "lost_updates")
        .expect("the lost-updates calibration row");
    let modelled = lost.modelled.expect("as_shipped ran") as u64;
    assert!(
        section.contains(&format!(
            "<code>lost_updates</code></td><td>99</td><td>0</td><td>{modelled}</td>"
        )),
        "real 99, analysis 0, model {modelled}:\n{section}"
    );
    assert!(section.contains("✓ ok") || section.contains("✗ missed"));

    // The defects: the lost update with its remedy, the deadlock with the steps it hung at.
    let defect = s
        .findings
        .defects
        .iter()
        .find(|d| d.id == "stale-read-lost-update")
        .unwrap();
    let shown = &defect.shipped[0];
    assert!(section.contains(&format!(
        "<b>{}{}</b>",
        shown.value,
        shown.out_of.map(|n| format!(" of {n}")).unwrap_or_default()
    )));
    assert!(section.contains("<code>stale-read-lost-update</code>"));
    assert!(section.contains("1 of 1</td>"), "global_mutex removes it:\n{section}");
    let deadlock = s
        .findings
        .defects
        .iter()
        .find(|d| d.id == "reentrant-deadlock")
        .unwrap();
    assert!(!deadlock.shipped[0].stuck_at.is_empty());
    assert!(section.contains(&format!("requests stuck: {}", deadlock.shipped[0].stuck_at[0])));

    // The claims, each with a verdict readable without colour.
    for c in &s.findings.analysis {
        assert!(section.contains(&credpool::report::html::escape::text(&c.claim)));
    }
    assert!(section.contains("✗ wrong"));
    assert!(section.contains("href=\"findings.md\""));
    assert!(page.contains("the shipped code, not a design"));
}

#[test]
fn a_deadlocked_run_shows_where_its_requests_were_stuck() {
    let failure = run(real("real-refresh-failure.toml"));
    let shipped = failure.results.iter().find(|r| r.strategy == "as_shipped").unwrap();
    assert!(shipped.deadlock.is_some() && !shipped.stuck.is_empty());
    let s = summary(vec![failure.clone()]);
    let page = html::render(&s);
    assert!(page.contains("<b>as_shipped hung <span class=\"pill expected\">expected</span>:</b>"));
    for st in &shipped.stuck {
        assert!(
            page.contains(&format!(
                "<tr><td class=\"text\"><code>{}</code></td><td>{}</td></tr>",
                st.step, st.requests
            )),
            "{st:?}"
        );
    }
    assert!(page.contains(&if shipped.requests == 0 {
        "No request completed before the watchdog stopped the run".to_string()
    } else {
        format!("Its latencies cover only the {} request", shipped.requests)
    }));

    // Without a passed expectation on deadlocks, the same hang is not marked expected.
    let mut unexpected = failure;
    for r in &mut unexpected.results {
        r.expectations.retain(|e| e.metric != "deadlocks");
    }
    let page = html::render(&summary(vec![unexpected]));
    assert!(page.contains("<b>as_shipped hung:</b>"));
    assert!(!page.contains("pill expected"));
}

#[test]
fn findings_text_is_escaped() {
    let mut plan = real("real-error-reports-locked.toml");
    plan.name = "real-error-reports-<b>x</b>&\"".into();
    for r in &mut plan.references {
        r.note = "note <script>alert(1)</script> & \"quoted\"".into();
    }
    let s = summary(vec![run(plan)]);
    assert!(!s.findings.calibration.is_empty() && !s.findings.defects.is_empty());
    let page = html::render(&s);
    let section = findings_section(&page);
    assert!(!page.contains("<b>x</b>") && !page.contains("<script>"));
    assert!(section.contains("real-error-reports-&lt;b&gt;x&lt;/b&gt;&amp;&quot;"));
    assert!(section.contains("title=\"note &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;\""));
}

#[test]
fn no_findings_no_section() {
    let page = html::render(&summary(Vec::new()));
    assert!(!page.contains("id=\"findings\"") && !page.contains("findings.md"));
}

// ---------------------------------------------------------------------------------------------
// Verdicts decided by the figures: every claim, defect removal and calibration bound follows from
// the run's figures by the rule written beside it, so changing the figures changes the verdict.

/// Every scenario a claim is judged on, run once (global_mutex and as_shipped each).
fn claim_scenarios() -> &'static [ScenarioSummary] {
    static RAN: std::sync::OnceLock<Vec<ScenarioSummary>> = std::sync::OnceLock::new();
    RAN.get_or_init(|| {
        [
            "seed-1-burst-100",
            "seed-2-first-token-expired",
            "real-selection-burst-100",
            "real-first-token-expired",
            "real-router-burst-100",
            "real-router-burst-100-group-commit",
            "real-error-reports-locked",
            "real-429-storm-locked",
            "real-refresh-vs-bookkeeping",
            "real-refresh-failure",
            "real-daily-quota",
            "storm-429",
        ]
        .into_iter()
        .map(|name| run(real(&format!("{name}.toml"))))
        .collect()
    })
}

/// `strategy`'s result in scenario `name`, to change its figures.
fn result_of<'a>(
    all: &'a mut [ScenarioSummary],
    name: &str,
    strategy: &str,
) -> &'a mut credpool::report::summary::ResultSummary {
    all.iter_mut()
        .find(|s| s.name == name)
        .and_then(|s| s.results.iter_mut().find(|r| r.strategy == strategy))
        .unwrap_or_else(|| panic!("{name}/{strategy} ran"))
}

/// The verdict on the claim whose prose contains `claim`, in findings computed from `all`.
fn verdict(all: &[ScenarioSummary], claim: &str) -> (String, String) {
    let f = credpool::report::findings::compute(all);
    let c = f
        .analysis
        .iter()
        .find(|c| c.claim.contains(claim))
        .unwrap_or_else(|| panic!("a claim containing {claim:?}"));
    (c.verdict.clone(), c.rule.clone())
}

const LOCK_COST: &str = "holds _operation_lock ~30 ms";
const REFRESH_QUEUE: &str = "every request queue behind it";
const BOTTLENECK: &str = "the bottleneck is _operation_lock";
const NO_LOSS: &str = "there is no data loss";
const NEVER_BLOCKS: &str = "never blocks the event loop";
const TRADE: &str = "trades a few tens of milliseconds";

#[test]
fn verdicts_of_this_run_follow_from_its_figures_with_their_thresholds() {
    let all = claim_scenarios();
    let expected = [
        (LOCK_COST, "right arithmetic, wrong premise", "= 30 ± 10%"),
        (REFRESH_QUEUE, "right in kind, wrong in size", "= 3500 ± 10%"),
        (BOTTLENECK, "wrong", ">= 0.9"),
        (NO_LOSS, "wrong", "<= 0"),
        (NEVER_BLOCKS, "wrong", "<= 100"),
        (TRADE, "wrong", "<= 100"),
    ];
    for (claim, want, threshold) in expected {
        let (got, rule) = verdict(all, claim);
        assert_eq!(got, want, "{claim}: {rule}");
        assert!(rule.contains(threshold), "{claim}: the threshold beside it: {rule}");
        assert!(
            rule.contains("(measured "),
            "{claim}: each test's measured value: {rule}"
        );
    }
    // The markdown and the page show the same rules beside the verdicts.
    let s = summary(all.to_vec());
    let md = credpool::report::findings::markdown(&s.findings);
    let page = html::render(&s);
    for c in &s.findings.analysis {
        assert!(md.contains(&format!("| {} | {} | {} |", c.verdict, c.rule, c.evidence)));
        assert!(findings_section(&page).contains(&credpool::report::html::escape::text(&c.rule)));
    }
}

#[test]
fn no_data_loss_is_right_when_the_shipped_replica_loses_nothing() {
    let mut all = claim_scenarios().to_vec();
    result_of(&mut all, "real-error-reports-locked", "as_shipped").lost_updates = 0;
    result_of(&mut all, "real-429-storm-locked", "as_shipped").file_readable = true;
    result_of(&mut all, "real-refresh-vs-bookkeeping", "as_shipped").stale_tokens = 0;
    assert_eq!(verdict(&all, NO_LOSS).0, "right");
    // One lost update anywhere is data loss.
    result_of(&mut all, "real-refresh-vs-bookkeeping", "as_shipped").stale_tokens = 1;
    assert_eq!(verdict(&all, NO_LOSS).0, "wrong");
}

#[test]
fn the_refresh_queue_is_right_when_its_size_matches_and_wrong_when_nobody_waits() {
    let mut all = claim_scenarios().to_vec();
    let shipped = result_of(&mut all, "real-first-token-expired", "as_shipped");
    let (min, refresh) = (shipped.latency_ms.min, shipped.phases_ms["refresh_wait"].max);
    shipped.latency_ms.max = 3500.0;
    assert_eq!(verdict(&all, REFRESH_QUEUE).0, "right");
    // The fastest request far quicker than the refresh: not everyone queued behind it.
    result_of(&mut all, "real-first-token-expired", "as_shipped")
        .latency_ms
        .min = refresh / 2.0;
    assert_eq!(verdict(&all, REFRESH_QUEUE).0, "wrong");
    result_of(&mut all, "real-first-token-expired", "as_shipped")
        .latency_ms
        .min = min;
    assert_eq!(verdict(&all, REFRESH_QUEUE).0, "right");
}

#[test]
fn the_lock_cost_claim_judges_its_arithmetic_and_its_premise_apart() {
    let mut all = claim_scenarios().to_vec();
    // A shipped selection at 30 ms per call: the premise holds too.
    result_of(&mut all, "real-selection-burst-100", "as_shipped").throughput_rps = 1000.0 / 30.0;
    assert_eq!(verdict(&all, LOCK_COST).0, "right");
    // The model's own arithmetic off by half.
    result_of(&mut all, "seed-1-burst-100", "global_mutex").latency_ms.mean *= 2.0;
    assert_eq!(verdict(&all, LOCK_COST).0, "wrong arithmetic, right premise");
    result_of(&mut all, "real-selection-burst-100", "as_shipped").throughput_rps = 30_000.0;
    assert_eq!(verdict(&all, LOCK_COST).0, "wrong");
}

#[test]
fn the_bottleneck_claim_holds_when_bookkeeping_costs_no_throughput() {
    let mut all = claim_scenarios().to_vec();
    let selection = result_of(&mut all, "real-selection-burst-100", "as_shipped").clone();
    let router = result_of(&mut all, "real-router-burst-100", "as_shipped");
    router.throughput_rps = selection.throughput_rps;
    router.latency_ms.mean = selection.latency_ms.mean + 10.0;
    assert_eq!(verdict(&all, BOTTLENECK).0, "right");
    result_of(&mut all, "real-router-burst-100", "as_shipped")
        .latency_ms
        .mean = selection.latency_ms.mean + 200.0;
    assert_eq!(verdict(&all, BOTTLENECK).0, "right in kind, wrong in size");
}

#[test]
fn never_blocking_holds_in_kind_without_deadlocks_and_in_size_with_short_waits() {
    let mut all = claim_scenarios().to_vec();
    for name in ["real-refresh-failure", "real-daily-quota", "storm-429"] {
        result_of(&mut all, name, "as_shipped").deadlock = None;
    }
    assert_eq!(
        verdict(&all, NEVER_BLOCKS).0,
        "right in kind, wrong in size",
        "the refresh's wait for the lock is over 100 ms"
    );
    for name in [
        "real-refresh-failure",
        "real-daily-quota",
        "storm-429",
        "real-first-token-expired",
    ] {
        let r = result_of(&mut all, name, "as_shipped");
        r.phases_ms.get_mut("lock_wait").expect("a lock_wait phase").max = 40.0;
    }
    assert_eq!(verdict(&all, NEVER_BLOCKS).0, "right");
    result_of(&mut all, "storm-429", "as_shipped").deadlock = Some("hung".into());
    assert_eq!(verdict(&all, NEVER_BLOCKS).0, "wrong");
}

#[test]
fn the_latency_for_safety_trade_holds_when_the_shipped_code_is_safe_and_close() {
    let mut all = claim_scenarios().to_vec();
    let name = "real-router-burst-100-group-commit";
    let best = result_of(&mut all, name, "global_mutex").latency_ms.max;
    let shipped = result_of(&mut all, name, "as_shipped");
    shipped.lost_updates = 0;
    shipped.latency_ms.max = best + 20.0;
    assert_eq!(verdict(&all, TRADE).0, "right");
    result_of(&mut all, name, "as_shipped").latency_ms.max = best + 500.0;
    assert_eq!(verdict(&all, TRADE).0, "right in kind, wrong in size");
}

#[test]
fn a_remedy_is_removed_by_its_figure_and_a_calibration_row_by_its_bound() {
    let mut all = claim_scenarios().to_vec();
    let removed = |all: &[ScenarioSummary]| {
        let f = credpool::report::findings::compute(all);
        let d = f
            .defects
            .into_iter()
            .find(|d| d.id == "stale-read-lost-update")
            .unwrap();
        assert_eq!(d.rule, "removed when lost_updates <= 0");
        d.remedies
            .iter()
            .find(|r| r.scenario == "real-error-reports-locked" && r.strategy == "global_mutex")
            .unwrap()
            .removed
    };
    assert_eq!(removed(&all), Some(true));
    result_of(&mut all, "real-error-reports-locked", "global_mutex").lost_updates = 3;
    assert_eq!(removed(&all), Some(false));

    // The calibration row is within bound exactly when its [[expect]] holds on the figure.
    let within = |plan: Plan| {
        let f = credpool::report::findings::compute(&[run(plan)]);
        let row = f.calibration.into_iter().find(|r| r.metric == "lost_updates").unwrap();
        (row.bound.unwrap(), row.within_bound)
    };
    let plan = real("real-error-reports-locked.toml");
    let (bound, ok) = within(plan.clone());
    assert_eq!((bound.as_str(), ok), ("= 99 ± 0%", Some(true)));
    let mut moved = plan;
    for e in moved
        .expectations
        .iter_mut()
        .filter(|e| e.metric.name() == "lost_updates")
    {
        if let credpool::metrics::expectation::Check::Approx { value, .. } = &mut e.check {
            *value = 50.0;
        }
    }
    let (bound, ok) = within(moved);
    assert_eq!((bound.as_str(), ok), ("= 50 ± 0%", Some(false)));
}
