//! The terminal table printed after a run: one block per scenario.

use super::summary::{ResultSummary, ScenarioSummary, Summary};
use std::fmt::Write;

/// Milliseconds with precision that fits the magnitude (µs resolution below 10 ms).
pub fn ms(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v < 10.0 {
        format!("{v:.3}")
    } else if v < 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn row(r: &ResultSummary) -> String {
    let l = &r.latency_ms;
    format!(
        "  {:<13} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10.1} {:>6} {:>5} {:>5}{}",
        r.strategy,
        ms(l.min),
        ms(l.mean),
        ms(l.p50),
        ms(l.p99),
        ms(l.p999),
        ms(l.max),
        r.throughput_rps,
        r.errors,
        r.refreshes,
        r.lost_updates,
        if r.deadlock.is_some() { "  DEADLOCK" } else { "" }
    )
}

/// The faults a strategy saw, when it saw any: refresh failures by kind, disables, 429s, requests
/// that found no credential.
fn faults_line(r: &ResultSummary) -> Option<String> {
    if r.refresh_failures + r.disables + r.status_429 + r.exhausted == 0 {
        return None;
    }
    Some(format!(
        "  {} faults: {} refresh failures ({} timeouts, {} HTTP errors, {} invalid_grant), {} disables, {} answers 429, {} requests without a credential",
        r.strategy,
        r.refresh_failures,
        r.refresh_timeouts,
        r.refresh_server_errors,
        r.refresh_invalid_grants,
        r.disables,
        r.status_429,
        r.exhausted
    ))
}

/// Renders one scenario's block.
pub fn scenario_block(s: &ScenarioSummary) -> String {
    let mut out = String::new();
    let loop_kind = if s.closed_loop { "closed loop" } else { "open loop" };
    let _ = writeln!(
        out,
        "\n{} ({}, {} load, {}, {} credentials, store {})",
        s.name, s.mode, s.load_model, loop_kind, s.credentials, s.store
    );
    if !s.description.is_empty() {
        let _ = writeln!(out, "  {}", s.description);
    }
    let _ = writeln!(
        out,
        "  {:<13} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>6} {:>5} {:>5}",
        "strategy (ms)", "min", "mean", "p50", "p99", "p99.9", "max", "req/s", "errors", "refr", "lost"
    );
    for r in &s.results {
        let _ = writeln!(out, "{}", row(r));
    }
    for r in &s.results {
        if let Some(line) = faults_line(r) {
            let _ = writeln!(out, "{line}");
        }
    }
    for r in &s.results {
        for p in &r.predictions {
            let _ = writeln!(
                out,
                "  {:<13} predicted {}: {} {u}, measured {} {u} ({:+.2}%)",
                r.strategy,
                p.name,
                ms(p.predicted),
                ms(p.measured),
                p.relative_error() * 100.0,
                u = p.unit
            );
        }
        for e in &r.expectations {
            let _ = writeln!(
                out,
                "  {:<13} expect {} {}: {} {}",
                r.strategy,
                e.metric,
                e.bound,
                ms(e.value),
                if e.passed { "ok" } else { "FAILED" }
            );
        }
        if let Some(d) = &r.deadlock {
            let _ = writeln!(out, "  {:<13} {d}", r.strategy);
        }
    }
    for reference in &s.references {
        let measured = s
            .results
            .iter()
            .find(|r| r.strategy == reference.strategy)
            .and_then(|r| crate::report::lookup(r, &reference.metric));
        let _ = writeln!(
            out,
            "  reference ({}): {} {} = {}{}",
            reference.source,
            reference.strategy,
            reference.metric,
            ms(reference.value.value()),
            measured
                .map(|m| format!("; credpool measured {}", ms(m)))
                .unwrap_or_default()
        );
    }
    out
}

pub fn render(summary: &Summary) -> String {
    summary.scenarios.iter().map(scenario_block).collect()
}
