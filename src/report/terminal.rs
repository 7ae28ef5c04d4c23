//! The terminal table printed after a run: one block per scenario.

use super::findings::Findings;
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

/// Jain's index for the table (`-` when the run has none: an older file, or nothing served).
fn jain(v: Option<f64>) -> String {
    v.map_or("-".into(), |j| format!("{j:.2}"))
}

/// The first column's width in a scenario's block: its longest name (a target's may be long).
fn name_width(s: &ScenarioSummary) -> usize {
    s.results.iter().map(|r| r.strategy.len()).max().unwrap_or(0).max(13)
}

fn row(r: &ResultSummary, w: usize) -> String {
    let l = &r.latency_ms;
    let f = r.fairness.as_ref();
    format!(
        "  {:<w$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10.1} {:>6} {:>5} {:>5} {:>5} {:>5} {:>5}{}",
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
        jain(f.and_then(|f| f.jain_accounts)),
        jain(f.and_then(|f| f.jain_users)),
        r.herd.as_ref().map_or("-".into(), |h| h.max_waiters.to_string()),
        if r.deadlock.is_some() { "  DEADLOCK" } else { "" }
    )
}

/// A target's audit: one line of figures from the client side and the mock, then each verdict
/// with its rule.
fn audit_lines(r: &ResultSummary) -> String {
    let (Some(a), Some(t)) = (&r.audit, &r.target) else {
        return String::new();
    };
    let mut out = format!(
        "  {} (target): {} ok, {} client errors, {} hung, {} transport errors, statuses {:?}; mock service p50 {} ms p99 {} ms over {} upstream requests{}\n",
        r.strategy,
        t.successes,
        t.client_errors,
        t.hung,
        t.transport_errors,
        t.statuses,
        ms(t.mock_service_ms.p50),
        ms(t.mock_service_ms.p99),
        t.upstream_requests,
        if t.killed { "; ignored SIGTERM, killed" } else { "" }
    );
    let failed = a.violations().count();
    let _ = writeln!(
        out,
        "  {} audit: {} of {} verdicts FAIL",
        r.strategy,
        failed,
        a.verdicts.len()
    );
    for v in &a.verdicts {
        let _ = writeln!(
            out,
            "    {:<24} {:>9} {} ({})",
            v.audit,
            ms(v.value),
            if v.pass { "PASS" } else { "FAIL" },
            v.rule
        );
    }
    out
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

/// What the harness itself did, when it is worth a line: starved users, a herd with more than
/// one refresh at once or wasted refreshes, dropped samples, a late generator and the timer lag
/// (real mode), and saturation by the self-audit's rule (the number of repetitions is said once
/// per scenario).
fn harness_line(r: &ResultSummary) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(f) = &r.fairness {
        if f.starved_users > 0 {
            parts.push(format!(
                "{} of {} users starved (no success for over {} ms, ten median latencies; longest {} ms)",
                f.starved_users,
                f.users,
                ms(f.starvation_window_ms),
                ms(f.longest_success_gap_ms)
            ));
        }
    }
    if let Some(h) = &r.herd {
        if h.max_overlapping > 1 || h.wasted > 0 {
            parts.push(format!(
                "refresh herd: up to {} refreshes of one account at once, {} wasted, {:.2} per expiry",
                h.max_overlapping,
                h.wasted,
                h.refreshes_per_expiry.unwrap_or(0.0)
            ));
        }
    }
    if let Some(a) = &r.self_audit {
        if a.dropped.total > 0 {
            parts.push(format!("{} samples dropped", a.dropped.total));
        }
        if a.start_lag_kind == "generator_lateness" {
            parts.push(format!(
                "generator lateness p99 {} ms, max {} ms",
                ms(a.start_lag_ms.p99),
                ms(a.start_lag_ms.max)
            ));
        }
        if let Some(t) = &a.timer_lag_ms {
            parts.push(format!("timer lag p99 {} ms, max {} ms", ms(t.p99), ms(t.max)));
        }
        if let Some(s) = a.saturation.as_ref().filter(|s| s.saturated) {
            parts.push(format!(
                "SATURATED ({}; {}): these latencies include the harness's own delay",
                s.over.join(", "),
                s.rule
            ));
        }
    }
    (!parts.is_empty()).then(|| format!("  {} harness: {}", r.strategy, parts.join("; ")))
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
    let w = name_width(s);
    let reps = s.results.iter().map(|r| r.repetitions.len()).max().unwrap_or(0);
    if reps > 1 {
        let _ = writeln!(
            out,
            "  {reps} repetitions per strategy (seeds derived from {}): the table shows repetition 0; every repetition's figures are in summary.json",
            s.seed
        );
    }
    let _ = writeln!(
        out,
        "  {:<w$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>6} {:>5} {:>5} {:>5} {:>5} {:>5}",
        "strategy (ms)",
        "min",
        "mean",
        "p50",
        "p99",
        "p99.9",
        "max",
        "req/s",
        "errors",
        "refr",
        "lost",
        "jainA",
        "jainU",
        "herd"
    );
    for r in &s.results {
        let _ = writeln!(out, "{}", row(r, w));
    }
    for r in &s.results {
        if let Some(line) = faults_line(r) {
            let _ = writeln!(out, "{line}");
        }
        if let Some(line) = harness_line(r) {
            let _ = writeln!(out, "{line}");
        }
    }
    for r in &s.results {
        for p in &r.predictions {
            let _ = writeln!(
                out,
                "  {:<w$} predicted {}: {} {u}, measured {} {u} ({:+.2}%)",
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
                "  {:<w$} expect {} {}: {} {}",
                r.strategy,
                e.metric,
                e.bound,
                ms(e.value),
                if e.passed { "ok" } else { "FAILED" }
            );
        }
        if let Some(d) = &r.deadlock {
            let _ = writeln!(out, "  {:<w$} {d}", r.strategy);
        }
        out.push_str(&audit_lines(r));
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

/// A relative error as a signed percentage.
fn percent(v: f64) -> String {
    format!("{:+.1}%", v * 100.0)
}

fn opt(v: Option<f64>) -> String {
    v.map(ms).unwrap_or_else(|| "-".into())
}

/// The findings block printed after a run (empty when no scenario contributed to it).
pub fn findings(f: &Findings) -> String {
    let mut out = String::new();
    if f.calibration.is_empty() && f.defects.is_empty() && f.analysis.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\nFindings");
    if !f.calibration.is_empty() {
        let _ = writeln!(
            out,
            "\n  Measured on the shipped code (real), the analysis' figure, and as_shipped's model of the code:"
        );
        let _ = writeln!(
            out,
            "  {:<34} {:<16} {:>9} {:>9} {:>9} {:>8}  bound",
            "scenario", "metric", "real", "analysis", "model", "error"
        );
        for r in &f.calibration {
            let bound = match (&r.bound, r.within_bound) {
                (Some(b), Some(ok)) => format!("{b} {}", if ok { "ok" } else { "MISSED" }),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {:<34} {:<16} {:>9} {:>9} {:>9} {:>8}  {bound}",
                r.scenario,
                r.metric,
                opt(r.real),
                opt(r.analysis),
                opt(r.modelled),
                r.relative_error.map(percent).unwrap_or_else(|| "-".into()),
            );
        }
        for r in f.calibration.iter().filter(|r| !r.note.is_empty()) {
            let _ = writeln!(out, "  note, {} {}: {}", r.scenario, r.metric, r.note);
        }
    }
    if !f.defects.is_empty() {
        let _ = writeln!(out, "\n  Defects of the shipped code, and what removes them:");
        for d in &f.defects {
            let _ = writeln!(out, "  [{}] {} ({})", d.id, d.defect, d.rule);
            for s in &d.shipped {
                let of = s.out_of.map(|n| format!(" of {n}")).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "    as_shipped in {}: {} = {}{of} (mean {} ms, {:.0} req/s){}",
                    s.scenario,
                    d.metric,
                    ms(s.value),
                    ms(s.mean_ms),
                    s.throughput_rps,
                    if s.stuck_at.is_empty() {
                        String::new()
                    } else {
                        format!("; stuck: {}", s.stuck_at.join("; "))
                    }
                );
            }
            for r in d.by_scenario() {
                let cost = |x: &crate::report::findings::Remedy| {
                    format!(
                        "{} (mean {} ms, max {} ms, {:.0} req/s)",
                        x.strategy,
                        ms(x.mean_ms),
                        ms(x.max_ms),
                        x.throughput_rps
                    )
                };
                let cheapest = r.cheapest.map(cost).unwrap_or_default();
                let line = if d.remedies.iter().all(|x| x.removed.is_none()) {
                    format!("fastest: {cheapest}")
                } else if r.kept.is_empty() {
                    format!("removed by all {}; cheapest: {cheapest}", r.removed.len())
                } else {
                    let kept: Vec<String> = r
                        .kept
                        .iter()
                        .map(|k| format!("{} ({} = {})", k.strategy, d.metric, ms(k.value)))
                        .collect();
                    format!(
                        "removed by {} of {}{}; still there: {}",
                        r.removed.len(),
                        r.removed.len() + r.kept.len(),
                        if r.cheapest.is_some() {
                            format!(" (cheapest: {cheapest})")
                        } else {
                            String::new()
                        },
                        kept.join(", ")
                    )
                };
                let _ = writeln!(out, "    credpool on {} ({}): {line}", r.store, r.scenario);
            }
        }
    }
    if !f.analysis.is_empty() {
        let _ = writeln!(out, "\n  The analysis, claim by claim:");
        for c in &f.analysis {
            let _ = writeln!(
                out,
                "  - \"{}\": {}. {}\n    rule: {}",
                c.claim,
                c.verdict.to_uppercase(),
                c.evidence,
                c.rule
            );
        }
    }
    out
}
