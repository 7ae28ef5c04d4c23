//! `compare.html`: two runs side by side. Per scenario, the percentile spectrum of each strategy
//! in both runs (OLD dashed with hollow markers, NEW solid, same colour per strategy) and a table
//! of how each figure moved. A function of the [`Comparison`] and the two summaries alone.

use super::escape::text as esc;
use super::{page_end, page_start};
use crate::analysis::stats::verdict::Verdict as RepetitionVerdict;
use crate::metrics::LatencyHistogram;
use crate::report::charts::{self, Marker, Palette, SeriesStyle};
use crate::report::compare::{Comparison, Verdict};
use crate::report::format;
use crate::report::summary::Summary;
use crate::report::verdicts;
use std::fmt::Write;
use std::path::Path;

pub const FILE: &str = "compare.html";

pub fn write(path: &Path, c: &Comparison, old: &Summary, new: &Summary) -> std::io::Result<()> {
    crate::report::write_file(path, render(c, old, new).as_bytes())
}

fn old_style(s: SeriesStyle) -> SeriesStyle {
    SeriesStyle {
        dash: Some((7, 5)),
        marker: Marker::Ring,
        ..s
    }
}

fn new_style(s: SeriesStyle) -> SeriesStyle {
    SeriesStyle {
        dash: None,
        marker: if s.marker == Marker::Ring {
            Marker::Circle
        } else {
            s.marker
        },
        ..s
    }
}

pub fn render(c: &Comparison, old: &Summary, new: &Summary) -> String {
    let palette = Palette::new(
        new.scenarios
            .iter()
            .chain(&old.scenarios)
            .flat_map(|s| s.results.iter().map(|r| r.strategy.as_str())),
    );
    let mut out = String::with_capacity(128 * 1024);
    page_start(&mut out, "credpool comparison");
    let (better, worse, same) = c.tally();
    let _ = write!(
        out,
        "<header class=\"card\">\n<h1>credpool comparison</h1>\n<dl class=\"repro\">\n\
         <dt>old</dt><dd>{} · started {} · credpool {} (git {})</dd>\n<dt>new</dt><dd>{} · started {} · credpool {} (git {})</dd>\n</dl>\n\
         <p><span class=\"pill ok\">{better} better</span> <span class=\"pill fail\">{worse} worse</span> <span class=\"pill\">{same} unchanged (within ±{}%)</span></p>\n",
        esc(&c.old.path),
        esc(&c.old.started_at),
        esc(&c.old.credpool_version),
        esc(&c.old.git_revision),
        esc(&c.new.path),
        esc(&c.new.started_at),
        esc(&c.new.credpool_version),
        esc(&c.new.git_revision),
        crate::report::compare::SAME_WITHIN * 100.0
    );
    for (label, list) in [("Only in old", &c.only_old), ("Only in new", &c.only_new)] {
        if !list.is_empty() {
            let _ = writeln!(
                out,
                "<p class=\"alert warn\"><b>{label}:</b> {}</p>",
                esc(&list.join(", "))
            );
        }
    }
    out.push_str("<p class=\"legend-note\">Each cell: the change from old to new (▲ up, ▼ down; green better, red worse), and old → new below. In the charts, old runs are dashed with hollow markers, new ones solid.</p>\n");
    verdict_method(&mut out, c);
    out.push_str("</header>\n");

    let mut scenarios: Vec<&str> = Vec::new();
    for p in &c.pairs {
        if !scenarios.contains(&p.scenario.as_str()) {
            scenarios.push(&p.scenario);
        }
    }
    let anchors = super::escape::anchors("c-", scenarios.iter().copied());
    for (name, anchor) in scenarios.iter().zip(&anchors) {
        let pairs: Vec<_> = c.pairs.iter().filter(|p| p.scenario == *name).collect();
        let _ = write!(
            out,
            "<section class=\"card\" id=\"{a}\">\n<h2><a href=\"#{a}\">{}</a></h2>\n",
            esc(name),
            a = esc(anchor)
        );
        let mut caveats: Vec<&String> = pairs.iter().flat_map(|p| &p.caveats).collect();
        caveats.dedup();
        for caveat in caveats {
            let _ = writeln!(
                out,
                "<p class=\"alert warn\"><b>Not like for like:</b> {}</p>",
                esc(caveat)
            );
        }
        // The spectrum of both runs.
        let find = |s: &Summary, strategy: &str| {
            s.scenarios
                .iter()
                .find(|x| x.name == *name)
                .and_then(|x| x.results.iter().find(|r| r.strategy == strategy))
                .and_then(|r| LatencyHistogram::from_base64_v2(&r.histogram_v2).ok())
        };
        let hists: Vec<(String, SeriesStyle, LatencyHistogram)> = pairs
            .iter()
            .flat_map(|p| {
                let style = palette.style(&p.strategy);
                [
                    find(old, &p.strategy).map(|h| (format!("{} (old)", p.strategy), old_style(style), h)),
                    find(new, &p.strategy).map(|h| (format!("{} (new)", p.strategy), new_style(style), h)),
                ]
            })
            .flatten()
            .collect();
        let series: Vec<charts::spectrum::Series<'_>> = hists
            .iter()
            .map(|(l, s, h)| charts::spectrum::Series {
                label: l.clone(),
                style: *s,
                histogram: h,
            })
            .collect();
        super::figure(
            &mut out,
            charts::spectrum::draw(&format!("{name}: latency by percentile, old and new"), &series),
        );

        out.push_str("<div class=\"table-wrap\"><table class=\"compare\">\n<thead><tr><th>strategy</th>");
        if let Some(p) = pairs.first() {
            for m in &p.movements {
                let _ = write!(out, "<th>{}</th>", esc(m.metric));
            }
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for p in &pairs {
            let c = palette.style(&p.strategy).color;
            let _ = write!(
                out,
                "<tr><td><span class=\"swatch\" style=\"background:rgb({},{},{})\"></span><code>{}</code></td>",
                c.0,
                c.1,
                c.2,
                esc(&p.strategy)
            );
            for m in &p.movements {
                let (class, arrow) = match (m.verdict(), m.new > m.old) {
                    (Verdict::Same, _) => ("same", ""),
                    (Verdict::Better, true) => ("better", "▲ "),
                    (Verdict::Better, false) => ("better", "▼ "),
                    (Verdict::Worse, true) => ("worse", "▲ "),
                    (Verdict::Worse, false) => ("worse", "▼ "),
                };
                let _ = write!(
                    out,
                    "<td><span class=\"{class}\">{arrow}{}</span><br><small class=\"note\">{} → {}</small></td>",
                    esc(&format::change(m.old, m.new)),
                    esc(&m.show(m.old)),
                    esc(&m.show(m.new))
                );
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody></table></div>\n");
        verdict_table(&mut out, &pairs);
        out.push_str("</section>\n");
    }
    page_end(&mut out);
    out
}

/// The header's statement of the statistics: unit of evidence, test, interval, rule, tally.
fn verdict_method(out: &mut String, c: &Comparison) {
    let all: Vec<_> = c.pairs.iter().flat_map(|p| p.verdicts.iter().cloned()).collect();
    let [improved, regressed, same, descriptive] = verdicts::tally(&all);
    let _ = write!(
        out,
        "<h2>Verdicts over repetitions</h2>\n<p><span class=\"pill ok\">{improved} improved</span> <span class=\"pill fail\">{regressed} regressed</span> <span class=\"pill\">{same} no_change</span> <span class=\"pill\">{descriptive} descriptive only</span></p>\n\
         <p class=\"legend-note\">Requests inside one run are not independent (they share queues, locks and refreshes), so the statistics are over <b>repetitions</b>: each repetition (<code>credpool run --repeat N</code>) is a whole run on its own seed and gives one value per figure. Rule: {}. A run without repetitions gives one value per figure: its comparison is <b>descriptive only</b>, not a verdict. Every entry is in <code>{}</code> beside this page.</p>\n",
        esc(&c.rule.describe()),
        verdicts::FILE
    );
}

/// Per strategy and figure: repetitions, means, change with its interval, p-value, verdict.
fn verdict_table(out: &mut String, pairs: &[&crate::report::compare::Pair]) {
    out.push_str("<div class=\"table-wrap\"><table class=\"compare verdicts\">\n<thead><tr><th>strategy</th><th>figure</th><th>repetitions old / new</th><th>mean old → new</th><th>change (interval)</th><th>p</th><th>verdict</th></tr></thead>\n<tbody>\n");
    for p in pairs {
        for v in &p.verdicts {
            let show = |x: f64| {
                if v.lower_is_better {
                    format::duration(x)
                } else {
                    format::rate(x)
                }
            };
            let change = match v.assessment.change {
                Some(c) if v.verdict() == RepetitionVerdict::Descriptive => format!("{:+.1}%", c.estimate * 100.0),
                Some(c) => format!(
                    "{:+.1}% [{:+.1}%, {:+.1}%]",
                    c.estimate * 100.0,
                    c.low * 100.0,
                    c.high * 100.0
                ),
                None => "—".into(),
            };
            let class = match v.verdict() {
                RepetitionVerdict::Improved => "better",
                RepetitionVerdict::Regressed => "worse",
                _ => "same",
            };
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{} / {}</td><td>{} → {}</td><td>{}</td><td>{}</td><td><span class=\"{class}\" title=\"{}\">{}</span></td></tr>",
                esc(&v.strategy),
                esc(&v.figure),
                v.old_values.len(),
                v.new_values.len(),
                esc(&show(v.old_mean)),
                esc(&show(v.new_mean)),
                esc(&change),
                v.assessment.p_value.map_or("—".into(), |p| format!("{p:.4}")),
                esc(&v.assessment.reason),
                v.verdict().as_str()
            );
        }
    }
    out.push_str("</tbody></table></div>\n");
}
