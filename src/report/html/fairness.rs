//! A scenario's fairness, refresh-herd and self-audit table (definitions in docs/statistics.md):
//! who got served, what refreshes did to the requests, and whether the harness kept up. Results
//! from files written before these figures existed show a dash.

use super::escape::text as esc;
use super::shipped_row;
use crate::metrics::self_audit::SATURATION_RULE;
use crate::report::format;
use crate::report::summary::ScenarioSummary;
use std::fmt::Write;

fn opt(v: Option<f64>, digits: i32) -> String {
    v.map_or("—".into(), |v| format::significant(v, digits))
}

pub fn section(out: &mut String, s: &ScenarioSummary) {
    if s.results
        .iter()
        .all(|r| r.fairness.is_none() && r.herd.is_none() && r.self_audit.is_none())
    {
        return;
    }
    let _ = write!(
        out,
        "<h3>Fairness, refresh herd, self-audit</h3>\n<p class=\"legend-note\">Jain's index is 1 when every share is equal and k/n when k of n get equal shares: over the pool's accounts by share of upstream calls, over the users that sent requests by successes. A user is <b>starved</b> when it had requests in the system and no success for longer than the run's window: ten times its median latency, and at least 1 s (so a slow upstream alone is not starvation). <b>Herd</b>: the most requests held up by one refresh (the one that made it included), the most refreshes of one account at once, refreshes per token expiry, and refreshes begun while the newest token had more than the refresh window left (wasted). <b>Start lag</b>: how late requests started against their intended start (real mode: the load generator's lateness; virtual mode: the virtual clock's divergence, within its timer tick). <b>Timer lag</b> (real mode): how late the runtime fired a probe timer due every 5 ms. <b>Saturated</b>: {}; the latencies of a saturated run include the harness's own delay. <b>Dropped</b>: samples left out, counted. Definitions: docs/statistics.md.</p>\n",
        esc(SATURATION_RULE)
    );
    out.push_str("<div class=\"table-wrap\"><table>\n<thead><tr><th class=\"text\">strategy</th><th>Jain accounts</th><th>Jain users</th><th>worst / median user p99</th><th>starved users</th><th>longest wait for a success</th><th>herd: requests on one refresh</th><th>refreshes of one account at once</th><th>refreshes per expiry</th><th>wasted refreshes</th><th>start lag p99 / max</th><th>timer lag p99 / max</th><th>saturated</th><th>dropped samples</th><th>repetitions</th></tr></thead>\n<tbody>\n");
    for r in &s.results {
        let _ = write!(
            out,
            "<tr{}><td class=\"text\"><code>{}</code></td>",
            shipped_row(&r.strategy),
            esc(&r.strategy)
        );
        match &r.fairness {
            Some(f) => {
                let _ = write!(
                    out,
                    "<td>{}</td><td>{}</td><td>{}</td><td{}>{} of {} <small class=\"note\">(window {})</small></td><td>{}</td>",
                    opt(f.jain_accounts, 3),
                    opt(f.jain_users, 3),
                    opt(f.worst_to_median_p99, 3),
                    if f.starved_users > 0 { " class=\"bad\"" } else { "" },
                    f.starved_users,
                    f.users,
                    esc(&format::duration(f.starvation_window_ms)),
                    esc(&format::duration(f.longest_success_gap_ms))
                );
            }
            None => out.push_str(&"<td>—</td>".repeat(5)),
        }
        match &r.herd {
            Some(h) => {
                let _ = write!(
                    out,
                    "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                    h.max_waiters,
                    h.max_overlapping,
                    opt(h.refreshes_per_expiry, 3),
                    h.wasted
                );
            }
            None => out.push_str(&"<td>—</td>".repeat(4)),
        }
        match &r.self_audit {
            Some(a) => {
                let timer_lag = a.timer_lag_ms.as_ref().map_or("—".into(), |t| {
                    format!("{} / {}", format::duration(t.p99), format::duration(t.max))
                });
                let saturated = match &a.saturation {
                    Some(s) if s.saturated => format!("<td class=\"bad\">yes: {}</td>", esc(&s.over.join(", "))),
                    Some(_) => "<td>no</td>".into(),
                    None => "<td>—</td>".into(),
                };
                let _ = write!(
                    out,
                    "<td title=\"{}\">{} / {}</td><td>{}</td>{}<td{}>{}</td>",
                    esc(&a.start_lag_kind),
                    esc(&format::duration(a.start_lag_ms.p99)),
                    esc(&format::duration(a.start_lag_ms.max)),
                    esc(&timer_lag),
                    saturated,
                    if a.dropped.total > 0 { " class=\"bad\"" } else { "" },
                    a.dropped.total
                );
            }
            None => out.push_str(&"<td>—</td>".repeat(4)),
        }
        let _ = writeln!(out, "<td>{}</td></tr>", r.repetitions.len().max(1));
    }
    out.push_str("</tbody></table></div>\n");
}
