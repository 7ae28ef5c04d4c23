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
