//! The HTML report's audit table for `[target]` results: each audit's figure, its rule and the
//! verdict that follows from them (the rules are [`crate::target::audit`]'s), beside what the
//! client side and the mock measured, so a verdict can be read against the harness's own figures.

use super::escape::text as esc;
use super::format;
use crate::report::summary::ScenarioSummary;
use std::fmt::Write;

/// The section, or nothing when the scenario has no target.
pub fn section(out: &mut String, s: &ScenarioSummary) {
    for r in &s.results {
        let (Some(a), Some(t)) = (&r.audit, &r.target) else {
            continue;
        };
        let failed = a.violations().count();
        let _ = writeln!(
            out,
            "<h3>Target audit: {}</h3>\n<p class=\"legend-note\">From the mock's journal and the target's accounts file, never from the target's own claims: {} of {} verdicts fail. Client side: {} ok, {} client errors (2xx carrying an error), {} hung, {} transport errors, other statuses {}. The mock's own service time: p50 {}, p99 {} over {} upstream requests; generator lateness p99 {}.{}{}</p>",
            esc(&r.strategy),
            failed,
            a.verdicts.len(),
            t.successes,
            t.client_errors,
            t.hung,
            t.transport_errors,
            esc(&format!("{:?}", t.statuses)),
            esc(&format::duration4(t.mock_service_ms.p50)),
            esc(&format::duration4(t.mock_service_ms.p99)),
            t.upstream_requests,
            r.self_audit
                .as_ref()
                .map(|h| esc(&format::duration4(h.start_lag_ms.p99)))
                .unwrap_or_else(|| "—".into()),
            saturation_note(r.self_audit.as_ref()),
            if t.killed { " The target ignored SIGTERM and was killed." } else { "" }
        );
        out.push_str("<div class=\"table-wrap\"><table>\n<thead><tr><th class=\"text\">audit</th><th>value</th><th class=\"text\">rule</th><th>verdict</th></tr></thead>\n<tbody>\n");
        for v in &a.verdicts {
            let _ = writeln!(
                out,
                "<tr><td class=\"text\"><code>{}</code></td><td>{}</td><td class=\"text\">{}</td><td{}>{}</td></tr>",
                esc(&v.audit),
                esc(&format::significant(v.value, 4)),
                esc(&v.rule),
                if v.pass { "" } else { " class=\"bad\"" },
                if v.pass { "✓ PASS" } else { "✗ FAIL" }
            );
        }
        out.push_str("</tbody></table></div>\n");
    }
}

/// The self-audit's timer lag and, when its rule says so, that the harness was saturated.
fn saturation_note(audit: Option<&crate::metrics::self_audit::SelfAudit>) -> String {
    let Some(a) = audit else {
        return String::new();
    };
    let mut note = a
        .timer_lag_ms
        .as_ref()
        .map(|t| format!("; timer lag p99 {}", esc(&format::duration4(t.p99))))
        .unwrap_or_default();
    if let Some(s) = a.saturation.as_ref().filter(|s| s.saturated) {
        let _ = write!(
            note,
            ". <b class=\"bad\">Saturated</b> ({}: {}): the figures include the harness's own delay",
            esc(&s.rule),
            esc(&s.over.join(", "))
        );
    }
    note
}
