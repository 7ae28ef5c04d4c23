//! The report's "Findings" section: `summary.findings` (see [`crate::report::findings`]) drawn as
//! tables, after the matrix: how the model compares with the figures measured on the shipped
//! code and with the analysis' figures; each defect of the shipped code, how big it is in
//! `as_shipped` and which strategy on which store mode removes it at what cost (with the rule
//! "removed" follows from); and the analysis' claims with a verdict and its rule. The section
//! renders what the findings hold and nothing else: no number or verdict here is computed anew,
//! so it always agrees with `findings.md` and the terminal.

use super::{esc, metric_value, swatch};
use crate::report::charts::Palette;
use crate::report::findings::{self, CalibrationRow, Claim, Defect, Findings};
use crate::report::format;
use crate::report::summary::Summary;
use std::fmt::Write;

/// Whether a run has findings to show.
pub fn present(f: &Findings) -> bool {
    !(f.calibration.is_empty() && f.defects.is_empty() && f.analysis.is_empty())
}

/// The section, when the run has findings; nothing otherwise.
pub(super) fn section(out: &mut String, summary: &Summary, palette: &Palette, anchors: &[String]) {
    let f = &summary.findings;
    if !present(f) {
        return;
    }
    let anchor = |scenario: &str| -> Option<&str> {
        summary
            .scenarios
            .iter()
            .position(|s| s.name == scenario)
            .map(|i| anchors[i].as_str())
    };
    let _ = write!(
        out,
        "<section class=\"card findings\" id=\"findings\">\n<h2><a href=\"#findings\">Findings</a></h2>\n\
         <p class=\"sub\">Where the analysis was right and wrong, the defects of the code as it shipped \
         (<code>{}</code>, its replica), and which credpool strategy and store mode removes each one at what cost. \
         Every figure comes from this run; the same tables as Markdown: <a href=\"{}\">{}</a>.</p>\n",
        findings::SHIPPED,
        findings::FILE,
        findings::FILE
    );
    if !f.calibration.is_empty() {
        calibration(out, &f.calibration, &anchor);
    }
    if !f.defects.is_empty() {
        defects(out, summary, &f.defects, palette, &anchor);
    }
    if !f.analysis.is_empty() {
        claims(out, &f.analysis);
    }
    out.push_str("</section>\n");
}

/// A scenario's name, linked to its section when it is in this run.
fn scenario_link<'a>(name: &str, anchor: &impl Fn(&str) -> Option<&'a str>) -> String {
    match anchor(name) {
        Some(a) => format!("<a href=\"#{}\">{}</a>", esc(a), esc(name)),
        None => esc(name),
    }
}

fn or_dash(metric: &str, v: Option<f64>) -> String {
    v.map(|v| esc(&metric_value(metric, v))).unwrap_or_else(|| "—".into())
}

fn calibration<'a>(out: &mut String, rows: &[CalibrationRow], anchor: &impl Fn(&str) -> Option<&'a str>) {
    let _ = write!(
        out,
        "<h3>Measured on the shipped code, the analysis, and the model</h3>\n\
         <p class=\"legend-note\">real: measured on the proxy's code (a30aa35); analysis: the figure the analysis gave; \
         model: what <code>{}</code> measured here with the per-step costs measured on the real code (never fitted to a total). \
         Hover a row for how the real figure was measured.</p>\n\
         <div class=\"table-wrap\"><table class=\"calibration\">\n<thead><tr><th class=\"text\">scenario</th><th class=\"text\">metric</th>\
         <th>real</th><th>analysis</th><th>model</th><th>model vs real</th><th class=\"text\">bound</th></tr></thead>\n<tbody>\n",
        findings::SHIPPED
    );
    for r in rows {
        let error = r
            .relative_error
            .filter(|e| e.is_finite())
            .map(|e| format!("{:+.1}%", e * 100.0))
            .unwrap_or_else(|| "—".into());
        let bound = match (&r.bound, r.within_bound) {
            (Some(b), Some(true)) => format!("{} <span class=\"ok\">✓ ok</span>", esc(b)),
            (Some(b), Some(false)) => format!("{} <span class=\"missed\">✗ missed</span>", esc(b)),
            (Some(b), None) => esc(b),
            (None, _) => "—".into(),
        };
        let title = if r.note.is_empty() {
            String::new()
        } else {
            format!(" title=\"{}\"", esc(&r.note))
        };
        let _ = writeln!(
            out,
            "<tr{title}><td class=\"text\">{}</td><td class=\"text\"><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"text\">{bound}</td></tr>",
            scenario_link(&r.scenario, anchor),
            esc(&r.metric),
            or_dash(&r.metric, r.real),
            or_dash(&r.metric, r.analysis),
            or_dash(&r.metric, r.modelled),
            error,
        );
    }
    out.push_str("</tbody></table></div>\n");
}

fn defects<'a>(
    out: &mut String,
    summary: &Summary,
    defects: &[Defect],
    palette: &Palette,
    anchor: &impl Fn(&str) -> Option<&'a str>,
) {
    out.push_str("<h3>Defects of the shipped code, and what removes them</h3>\n");
    for d in defects {
        let _ = write!(
            out,
            "<div class=\"defect\">\n<p class=\"defect-head\"><code>{}</code> {} <span class=\"note\">(metric <code>{}</code>; {})</span></p>\n<ul class=\"shown\">\n",
            esc(&d.id),
            esc(&d.defect),
            esc(&d.metric),
            esc(&d.rule)
        );
        for s in &d.shipped {
            let of = s.out_of.map(|n| format!(" of {n}")).unwrap_or_default();
            let stuck = if s.stuck_at.is_empty() {
                String::new()
            } else {
                format!("; requests stuck: {}", esc(&s.stuck_at.join(", ")))
            };
            // A hung run's latencies cover only the requests that completed.
            let completed = summary
                .scenarios
                .iter()
                .find(|x| x.name == s.scenario)
                .and_then(|x| x.results.iter().find(|r| r.strategy == findings::SHIPPED))
                .map(|r| r.requests);
            let cost = match completed {
                Some(0) if !s.stuck_at.is_empty() => "no request completed".to_string(),
                Some(n) if !s.stuck_at.is_empty() => format!(
                    "mean {} over the {n} requests that completed",
                    format::duration(s.mean_ms)
                ),
                _ => format!(
                    "mean {}, {} req/s",
                    format::duration(s.mean_ms),
                    format::rate(s.throughput_rps)
                ),
            };
            let _ = writeln!(
                out,
                "<li><code>{}</code> in {}: <b>{}{of}</b>{stuck} <span class=\"note\">({})</span></li>",
                findings::SHIPPED,
                scenario_link(&s.scenario, anchor),
                esc(&metric_value(&d.metric, s.value)),
                esc(&cost),
            );
        }
        out.push_str("</ul>\n");
        if d.remedies.iter().all(|r| r.removed.is_none()) {
            performance(out, summary, d, palette, anchor);
        } else {
            remedies(out, d, palette, anchor);
        }
        out.push_str("</div>\n");
    }
}

/// A defect that is present or absent: per scenario, how many strategies removed it and the
/// cheapest of those.
fn remedies<'a>(out: &mut String, d: &Defect, palette: &Palette, anchor: &impl Fn(&str) -> Option<&'a str>) {
    out.push_str("<div class=\"table-wrap\"><table>\n<thead><tr><th class=\"text\">scenario</th><th class=\"text\">store</th><th class=\"text\">removed by</th>\
                  <th class=\"text\">cheapest remedy</th><th>its value</th><th>mean</th><th>max</th><th>req/s</th></tr></thead>\n<tbody>\n");
    for r in d.by_scenario() {
        let total = r.removed.len() + r.kept.len();
        let mut removed = format!("{} of {total}", r.removed.len());
        if !r.kept.is_empty() {
            let kept: Vec<String> = r
                .kept
                .iter()
                .map(|k| format!("<code>{}</code>", esc(&k.strategy)))
                .collect();
            let _ = write!(
                removed,
                " <small class=\"note\">(still there: {})</small>",
                kept.join(", ")
            );
        }
        let cells = match r.cheapest {
            Some(c) => format!(
                "<td class=\"text nowrap\">{}<code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                swatch(palette, &c.strategy),
                esc(&c.strategy),
                esc(&metric_value(&d.metric, c.value)),
                esc(&format::duration(c.mean_ms)),
                esc(&format::duration(c.max_ms)),
                esc(&format::rate(c.throughput_rps)),
            ),
            None => "<td class=\"text bad\">none</td><td></td><td></td><td></td><td></td>".into(),
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"text\">{}</td><td class=\"text\"><code>{}</code></td><td class=\"text{}\">{removed}</td>{cells}</tr>",
            scenario_link(r.scenario, anchor),
            esc(r.store),
            if r.removed.is_empty() { " bad" } else { "" },
        );
    }
    out.push_str("</tbody></table></div>\n");
}

/// A performance figure (no "absent"): the value of every strategy, the shipped code first.
fn performance<'a>(
    out: &mut String,
    summary: &Summary,
    d: &Defect,
    palette: &Palette,
    anchor: &impl Fn(&str) -> Option<&'a str>,
) {
    out.push_str("<div class=\"table-wrap\"><table>\n<thead><tr><th class=\"text\">scenario</th><th class=\"text\">store</th><th class=\"text\">strategy</th>");
    let _ = write!(
        out,
        "<th><code>{}</code></th><th>mean</th><th>max</th><th>req/s</th></tr></thead>\n<tbody>\n",
        esc(&d.metric)
    );
    for r in d.by_scenario() {
        let shipped = summary
            .scenarios
            .iter()
            .find(|s| s.name == r.scenario)
            .and_then(|s| s.results.iter().find(|x| x.strategy == findings::SHIPPED));
        let rows = shipped
            .map(|x| {
                (
                    x.strategy.as_str(),
                    crate::report::lookup(x, &d.metric).unwrap_or_default(),
                    x.latency_ms.mean,
                    x.latency_ms.max,
                    x.throughput_rps,
                )
            })
            .into_iter()
            .chain(
                r.removed
                    .iter()
                    .chain(&r.kept)
                    .map(|x| (x.strategy.as_str(), x.value, x.mean_ms, x.max_ms, x.throughput_rps)),
            );
        for (i, (strategy, value, mean, max, rps)) in rows.enumerate() {
            let (scenario, store) = if i == 0 {
                (
                    scenario_link(r.scenario, anchor),
                    format!("<code>{}</code>", esc(r.store)),
                )
            } else {
                (String::new(), String::new())
            };
            let _ = writeln!(
                out,
                "<tr{}><td class=\"text\">{scenario}</td><td class=\"text\">{store}</td><td class=\"text nowrap\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                super::shipped_row(strategy),
                super::strategy_cell(palette, strategy),
                esc(&metric_value(&d.metric, value)),
                esc(&format::duration(mean)),
                esc(&format::duration(max)),
                esc(&format::rate(rps)),
            );
        }
    }
    out.push_str("</tbody></table></div>\n");
}

/// A verdict in three classes, each with a word and a symbol (readable without colour).
fn verdict_class(verdict: &str) -> (&'static str, &'static str) {
    let v = verdict.to_lowercase();
    match (v.contains("right"), v.contains("wrong")) {
        (true, true) => ("mixed", "◐ mixed"),
        (false, true) => ("wrong", "✗ wrong"),
        (true, false) => ("right", "✓ right"),
        (false, false) => ("mixed", "◐ open"),
    }
}

fn claims(out: &mut String, claims: &[Claim]) {
    out.push_str("<h3>The analysis, claim by claim</h3>\n<div class=\"table-wrap\"><table class=\"claims\">\n<thead><tr><th class=\"text\">the analysis said</th><th class=\"text\">verdict</th><th class=\"text\">by the rule</th><th class=\"text\">this run</th></tr></thead>\n<tbody>\n");
    for c in claims {
        let (class, word) = verdict_class(&c.verdict);
        // The verdict in full, when it says more than its class.
        let detail = if word.ends_with(c.verdict.as_str()) {
            String::new()
        } else {
            format!("<small>{}</small>", esc(&c.verdict))
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"text\">{}</td><td class=\"text\"><span class=\"verdict {class}\">{word}</span>{detail}</td><td class=\"text\"><small>{}</small></td><td class=\"text\">{}</td></tr>",
            esc(&c.claim),
            esc(&c.rule),
            esc(&c.evidence)
        );
    }
    out.push_str("</tbody></table></div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_fall_in_three_classes() {
        assert_eq!(verdict_class("wrong").0, "wrong");
        assert_eq!(verdict_class("right").0, "right");
        assert_eq!(verdict_class("right in kind, wrong in size").0, "mixed");
        assert_eq!(verdict_class("right arithmetic, wrong premise").0, "mixed");
    }

    #[test]
    fn counts_keep_their_zeros() {
        assert_eq!(metric_value("lost_updates", 0.0), "0");
        assert_eq!(metric_value("lost_updates", 100.0), "100");
        assert_eq!(metric_value("throughput_rps", 131.26), "131.3");
        assert_eq!(metric_value("throughput_rps", 2.5), "2.5");
    }
}
