//! `index.html`: the report people decide by. One self-contained file (inline CSS and SVG, no
//! script, font or image from anywhere), a function of the [`Summary`] alone.
//!
//! Layout: a header saying whether every expectation held; a matrix of scenarios × strategies
//! with each cell's p99 and throughput (linking to the scenario); the run's [`findings`] (the
//! analysis, the shipped code's defects and their remedies) when it has any; then one section per
//! scenario
//! with its table of figures, its charts (see [`crate::report::charts`]), its predictions,
//! expectations and references, its [`fairness`] table (with the refresh herd and the self-audit),
//! and a reproducibility block. Every piece of text that came from a
//! file or a run goes through [`escape::text`].

pub mod compare;
pub mod escape;
pub mod fairness;
pub mod findings;
pub mod latest;
pub mod sweep;
pub mod target_audit;

use super::charts::{self, Figure, Palette};
use super::format;
use super::summary::{ResultSummary, ScenarioSummary, Summary};
use crate::metrics::LatencyHistogram;
use escape::text as esc;
use std::fmt::Write;
use std::path::Path;

pub const FILE: &str = "index.html";
pub(crate) const STYLE: &str = include_str!("style.css");

/// Writes `index.html` into `dir`.
pub fn write(dir: &Path, summary: &Summary) -> std::io::Result<()> {
    crate::report::write_file(&dir.join(FILE), render(summary).as_bytes())
}

/// The opening of a page: doctype, charset, title and the inline style sheet.
pub(crate) fn page_start(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"credpool\">\n<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n",
        esc(title)
    );
}

pub(crate) fn page_end(out: &mut String) {
    out.push_str("</main>\n</body>\n</html>\n");
}

/// The whole page.
pub fn render(summary: &Summary) -> String {
    let palette = Palette::for_summary(summary);
    let anchors = escape::anchors("s-", summary.scenarios.iter().map(|s| s.name.as_str()));
    let hgrm_paths = crate::report::hgrm::paths(summary);
    let mut out = String::with_capacity(256 * 1024);
    page_start(&mut out, &format!("credpool report — {}", summary.started_at));
    header(&mut out, summary, &palette);
    matrix(&mut out, summary, &palette, &anchors);
    findings::section(&mut out, summary, &palette, &anchors);
    sweep::index_section(&mut out, summary, &palette);
    for (i, s) in summary.scenarios.iter().enumerate() {
        scenario(&mut out, summary, s, &palette, &anchors[i], &hgrm_paths[i]);
    }
    footer(&mut out, summary);
    page_end(&mut out);
    out
}

/// A small square in the strategy's chart colour, beside its name in tables.
fn swatch(palette: &Palette, strategy: &str) -> String {
    let c = palette.style(strategy).color;
    format!(
        "<span class=\"swatch\" style=\"background:rgb({},{},{})\"></span>",
        c.0, c.1, c.2
    )
}

/// The strategy that replays the shipped code is set apart: it is a measurement of what shipped,
/// not a design to choose.
fn is_shipped(strategy: &str) -> bool {
    strategy == crate::report::findings::SHIPPED
}

/// The class attribute of a table row of `strategy`.
fn shipped_row(strategy: &str) -> &'static str {
    if is_shipped(strategy) {
        " class=\"shipped\""
    } else {
        ""
    }
}

/// A strategy's name in a table: its swatch, its name, and for the shipped code what it is.
fn strategy_cell(palette: &Palette, strategy: &str) -> String {
    format!(
        "{}<code>{}</code>{}",
        swatch(palette, strategy),
        esc(strategy),
        if is_shipped(strategy) {
            "<small class=\"shipped-label\">the shipped code, not a design</small>"
        } else {
            ""
        }
    )
}

/// The run at a glance: size, time, version, and whether every expectation held.
fn header(out: &mut String, summary: &Summary, palette: &Palette) {
    let failures = summary.failures();
    let deadlocks: usize = summary
        .scenarios
        .iter()
        .flat_map(|s| &s.results)
        .filter(|r| r.deadlock.is_some())
        .count();
    let results: usize = summary.scenarios.iter().map(|s| s.results.len()).sum();
    let _ = write!(
        out,
        "<header class=\"card\">\n<h1>credpool report</h1>\n<p class=\"sub\">{} scenario{} × {} strateg{} ({} results) · started {} · wall time {} · credpool {} ({})</p>\n",
        summary.scenarios.len(),
        if summary.scenarios.len() == 1 { "" } else { "s" },
        palette.names().len(),
        if palette.names().len() == 1 { "y" } else { "ies" },
        results,
        esc(&summary.started_at),
        esc(&format::duration(summary.wall_time_s * 1e3)),
        esc(&summary.credpool_version),
        esc(&summary.git_revision),
    );
    out.push_str("<p>");
    if failures.is_empty() {
        out.push_str("<span class=\"pill ok\">every expectation held</span>");
    } else {
        let _ = write!(
            out,
            "<span class=\"pill fail\">{} expectation{} failed</span>",
            failures.len(),
            if failures.len() == 1 { "" } else { "s" }
        );
    }
    if deadlocks > 0 {
        let _ = write!(
            out,
            " <span class=\"pill fail\">{deadlocks} run{} hung (deadlock)</span>",
            if deadlocks == 1 { "" } else { "s" }
        );
    }
    out.push_str("</p>\n");
    if !failures.is_empty() {
        out.push_str("<ul class=\"note\">\n");
        for f in &failures {
            let _ = writeln!(out, "<li>{}</li>", esc(f));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<p class=\"legend-note\">Strategies: ");
    let names: Vec<String> = palette
        .names()
        .iter()
        .map(|n| format!("{}<code>{}</code>", swatch(palette, n), esc(n)))
        .collect();
    out.push_str(&names.join(" &nbsp; "));
    out.push_str(". Latencies count from each request's intended start; all figures come from <code>summary.json</code> in this folder.</p>\n</header>\n");
}

/// The load in words: "burst load (closed loop)", "open loop", "stages load (open loop)".
fn load_words(s: &ScenarioSummary) -> String {
    match (s.load_model.as_str(), s.closed_loop) {
        ("closed", true) => "closed loop".into(),
        ("open", false) => "open loop".into(),
        (m, closed) => format!("{m} load ({})", if closed { "closed loop" } else { "open loop" }),
    }
}

/// How far a cell's p99 is from the best in its row, as a tint class (r0 best .. r4 ≥ 10×).
fn tint(ratio: f64) -> &'static str {
    if ratio <= 1.05 {
        "r0"
    } else if ratio <= 1.5 {
        "r1"
    } else if ratio <= 3.0 {
        "r2"
    } else if ratio < 10.0 {
        "r3"
    } else {
        "r4"
    }
}

fn matrix(out: &mut String, summary: &Summary, palette: &Palette, anchors: &[String]) {
    out.push_str("<section class=\"card\" id=\"matrix\">\n<h2>Scenarios × strategies</h2>\n");
    out.push_str("<p class=\"sub\">Each cell: the p99 latency (bold) and the throughput. Shading compares p99 with the best strategy of the row (×k: k times the best p99). Click a scenario for its charts.</p>\n");
    out.push_str("<div class=\"table-wrap\"><table class=\"matrix\">\n<thead><tr><th>scenario</th>");
    for n in palette.names() {
        if is_shipped(n) {
            let _ = write!(
                out,
                "<th class=\"shipped\">{}{}<small class=\"shipped-label\">the shipped code, not a design</small></th>",
                swatch(palette, n),
                esc(n)
            );
        } else {
            let _ = write!(out, "<th>{}{}</th>", swatch(palette, n), esc(n));
        }
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (s, anchor) in summary.scenarios.iter().zip(anchors) {
        let best = s
            .results
            .iter()
            .filter(|r| r.requests > 0)
            .map(|r| r.latency_ms.p99)
            .fold(f64::INFINITY, f64::min);
        let _ = write!(
            out,
            "<tr><td><a href=\"#{}\">{}</a><small>{} · {}</small></td>",
            esc(anchor),
            esc(&s.name),
            esc(&format!("{} load", s.load_model)),
            esc(&s.mode)
        );
        for n in palette.names() {
            match s.results.iter().find(|r| &r.strategy == n) {
                None => out.push_str("<td class=\"text\"><span class=\"note\" style=\"padding:8px 10px;display:block\">not run</span></td>"),
                Some(r) => {
                    // A run in which no request completed has no latency to compare: worst shade.
                    let ratio = if r.requests == 0 { f64::INFINITY } else if best > 0.0 && best.is_finite() { r.latency_ms.p99 / best } else { 1.0 };
                    let mut flags = String::new();
                    if r.failed_expectations().next().is_some() {
                        flags.push_str("<span class=\"flag\" title=\"an expectation failed\">✗ expectation</span>");
                    }
                    if r.deadlock.is_some() {
                        flags.push_str("<span class=\"flag\">deadlock</span>");
                    }
                    if r.lost_updates > 0 {
                        let _ = write!(flags, "<span class=\"flag\">{} lost</span>", r.lost_updates);
                    }
                    let relative = if s.results.len() > 1 && ratio > 1.05 && ratio.is_finite() { format!(" · ×{}", format::significant(ratio, 2)) } else { String::new() };
                    let _ = write!(
                        out,
                        "<td class=\"{}{}\"><a href=\"#{}\"><b class=\"head\">{}</b>{}<small>{} req/s{}</small></a></td>",
                        tint(ratio),
                        if is_shipped(n) { " shipped" } else { "" },
                        esc(anchor),
                        if r.requests == 0 { "—".to_string() } else { esc(&format::duration(r.latency_ms.p99)) },
                        flags,
                        esc(&format::rate(r.throughput_rps)),
                        relative
                    );
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n</section>\n");
}

/// The best value of a column (lowest latency, highest throughput), when there is more than one
/// strategy to compare.
fn best_of(results: &[ResultSummary], value: impl Fn(&ResultSummary) -> f64, lower_is_better: bool) -> Option<f64> {
    // A run in which no request completed has no figures to be best at.
    let completed: Vec<&ResultSummary> = results.iter().filter(|r| r.requests > 0).collect();
    if completed.len() < 2 {
        return None;
    }
    let vals = completed.into_iter().map(value);
    Some(if lower_is_better {
        vals.fold(f64::INFINITY, f64::min)
    } else {
        vals.fold(f64::NEG_INFINITY, f64::max)
    })
}

fn stats_table(out: &mut String, s: &ScenarioSummary, palette: &Palette) {
    type Col = (&'static str, fn(&ResultSummary) -> f64);
    let latency: [Col; 7] = [
        ("min", |r| r.latency_ms.min),
        ("mean", |r| r.latency_ms.mean),
        ("p50", |r| r.latency_ms.p50),
        ("p90", |r| r.latency_ms.p90),
        ("p99", |r| r.latency_ms.p99),
        ("p99.9", |r| r.latency_ms.p999),
        ("max", |r| r.latency_ms.max),
    ];
    out.push_str("<div class=\"table-wrap\"><table class=\"stats\">\n<thead><tr class=\"group\"><th></th><th colspan=\"7\">latency (ms)</th><th colspan=\"4\"></th></tr>\n<tr><th>strategy</th>");
    for (name, _) in &latency {
        let _ = write!(out, "<th>{name}</th>");
    }
    out.push_str("<th>req/s</th><th>errors</th><th>refreshes</th><th>lost updates</th></tr></thead>\n<tbody>\n");
    let bests: Vec<Option<f64>> = latency.iter().map(|(_, f)| best_of(&s.results, f, true)).collect();
    let best_rps = best_of(&s.results, |r| r.throughput_rps, false);
    for r in &s.results {
        let _ = write!(
            out,
            "<tr{}><td>{}</td>",
            shipped_row(&r.strategy),
            strategy_cell(palette, &r.strategy)
        );
        for ((_, f), best) in latency.iter().zip(&bests) {
            if r.requests == 0 {
                out.push_str("<td title=\"no request completed\">—</td>");
                continue;
            }
            let v = f(r);
            let class = if best.is_some_and(|b| v == b) {
                " class=\"best\""
            } else {
                ""
            };
            let _ = write!(
                out,
                "<td{class} title=\"{}\">{}</td>",
                esc(&format::duration(v)),
                format::ms(v)
            );
        }
        let class = if best_rps.is_some_and(|b| r.throughput_rps == b) {
            " class=\"best\""
        } else {
            ""
        };
        let bad = |v: u64| if v > 0 { " class=\"bad\"" } else { "" };
        let _ = writeln!(
            out,
            "<td{class}>{}</td><td{}>{}</td><td>{}</td><td{}>{}</td></tr>",
            format::rate(r.throughput_rps),
            bad(r.errors),
            r.errors,
            r.refreshes,
            bad(r.lost_updates + r.resurrected_accounts + r.stale_tokens),
            audit_words(r),
        );
    }
    out.push_str("</tbody></table></div>\n");
    if s.results.len() > 1 {
        out.push_str("<p class=\"legend-note\">Bold: the best strategy in that column. Hover a latency for it in its own unit.</p>\n");
    }
    counters_table(out, s);
}

/// The lost updates, with the other audit findings when there are any.
fn audit_words(r: &ResultSummary) -> String {
    let mut words = r.lost_updates.to_string();
    if r.resurrected_accounts > 0 {
        let _ = write!(words, " (+{} resurrected)", r.resurrected_accounts);
    }
    if r.stale_tokens > 0 {
        let _ = write!(
            words,
            " (+{} stale token{})",
            r.stale_tokens,
            if r.stale_tokens == 1 { "" } else { "s" }
        );
    }
    words
}

/// The other counters, folded away: useful when digging, noise when deciding.
fn counters_table(out: &mut String, s: &ScenarioSummary) {
    type Col = (&'static str, fn(&ResultSummary) -> u64);
    let cols: [Col; 13] = [
        ("requests", |r| r.requests),
        ("429 answers", |r| r.status_429),
        ("no credential", |r| r.exhausted),
        ("refresh failures", |r| r.refresh_failures),
        ("disables", |r| r.disables),
        ("store updates", |r| r.store_updates),
        ("acknowledged", |r| r.acknowledged_updates),
        ("store writes", |r| r.store_writes),
        ("fsyncs", |r| r.fsyncs),
        ("resurrected", |r| r.resurrected_accounts),
        ("stale tokens", |r| r.stale_tokens),
        ("served disabled", |r| r.served_disabled),
        ("rotation skips", |r| r.rotation_skips),
    ];
    out.push_str("<details><summary class=\"legend-note\">More counters (requests, 429s, store writes, fsyncs, …)</summary>\n<div class=\"table-wrap\"><table>\n<thead><tr><th>strategy</th>");
    for (name, _) in &cols {
        let _ = write!(out, "<th>{name}</th>");
    }
    out.push_str("<th>mean in flight</th></tr></thead>\n<tbody>\n");
    for r in &s.results {
        let _ = write!(
            out,
            "<tr{}><td><code>{}</code></td>",
            shipped_row(&r.strategy),
            esc(&r.strategy)
        );
        for (_, f) in &cols {
            let _ = write!(out, "<td>{}</td>", f(r));
        }
        let _ = writeln!(out, "<td>{}</td></tr>", format::significant(r.mean_in_flight, 3));
    }
    out.push_str("</tbody></table></div>\n</details>\n");
}

/// A chart and its caption, or the reason it could not be drawn.
pub(crate) fn figure(out: &mut String, result: Result<Figure, String>) {
    match result {
        Ok(f) => {
            let _ = write!(
                out,
                "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
                f.svg,
                esc(&f.caption)
            );
        }
        Err(e) => {
            let _ = writeln!(out, "<p class=\"chart-error\">{}</p>", esc(&e));
        }
    }
}

fn scenario_charts(out: &mut String, s: &ScenarioSummary, palette: &Palette) {
    let histograms: Vec<(&ResultSummary, Result<LatencyHistogram, String>)> = s
        .results
        .iter()
        .map(|r| (r, LatencyHistogram::from_base64_v2(&r.histogram_v2)))
        .collect();
    let mut series = Vec::new();
    for (r, h) in &histograms {
        match h {
            Ok(h) => series.push(charts::spectrum::Series {
                label: r.strategy.clone(),
                style: palette.style(&r.strategy),
                histogram: h,
            }),
            Err(e) => {
                let _ = writeln!(
                    out,
                    "<p class=\"chart-error\">{}: histogram_v2: {}</p>",
                    esc(&r.strategy),
                    esc(e)
                );
            }
        }
    }
    figure(
        out,
        charts::spectrum::draw(&format!("{}: latency by percentile", s.name), &series),
    );

    let axis = if s.closed_loop {
        charts::timeline::Axis::RequestNumber
    } else {
        charts::timeline::Axis::ArrivalTime
    };
    let timeline: Vec<charts::timeline::Series<'_>> = s
        .results
        .iter()
        .map(|r| charts::timeline::Series {
            label: r.strategy.clone(),
            style: palette.style(&r.strategy),
            points: &r.timeline,
            requests: r.requests,
        })
        .collect();
    let sampled = s.results.iter().any(|r| r.timeline_sampled);
    let title = format!(
        "{}: latency of each request{}",
        s.name,
        if sampled { " (sample)" } else { "" }
    );
    figure(out, charts::timeline::draw(&title, axis, &timeline));

    let mut pair = String::new();
    let mut figures = 0;
    let rows: Vec<charts::phases::Row<'_>> = s
        .results
        .iter()
        .map(|r| charts::phases::Row {
            label: r.strategy.clone(),
            phases_ms: &r.phases_ms,
            total_ms: &r.latency_ms,
        })
        .collect();
    figure(
        &mut pair,
        charts::phases::draw(&format!("{}: where the time went", s.name), &rows),
    );
    figures += 1;
    if !s.closed_loop {
        let tp: Vec<charts::throughput::Series<'_>> = s
            .results
            .iter()
            .map(|r| charts::throughput::Series {
                label: r.strategy.clone(),
                style: palette.style(&r.strategy),
                counts: &r.throughput_counts,
                bucket_s: r.throughput_bucket_s,
            })
            .collect();
        figure(
            &mut pair,
            charts::throughput::draw(&format!("{}: throughput over time", s.name), &tp),
        );
        figures += 1;
    }
    let mut predictions = String::new();
    let mut units: Vec<&str> = Vec::new();
    for p in s.results.iter().flat_map(|r| &r.predictions) {
        if !units.contains(&p.unit.as_str()) {
            units.push(&p.unit);
        }
    }
    for unit in units {
        let rows: Vec<charts::prediction::Row<'_>> = s
            .results
            .iter()
            .flat_map(|r| {
                r.predictions
                    .iter()
                    .filter(|p| p.unit == unit)
                    .map(move |p| charts::prediction::Row {
                        strategy: r.strategy.clone(),
                        prediction: p,
                    })
            })
            .collect();
        figure(
            &mut predictions,
            charts::prediction::draw(&format!("{}: predicted vs measured ({unit})", s.name), unit, &rows),
        );
    }
    let _ = write!(
        out,
        "<div class=\"pair{}\">\n{pair}</div>\n{predictions}",
        if figures == 1 { " single" } else { "" }
    );
}

/// A value of `metric` for people: a duration for latency metrics, a number otherwise.
fn metric_value(metric: &str, v: f64) -> String {
    let latency = metric
        .parse::<crate::metrics::expectation::Metric>()
        .is_ok_and(|m| m.is_latency());
    if latency {
        format::duration4(v)
    } else {
        let s = format::significant(v, 4);
        // Trailing zeros only after a decimal point: 100 stays 100, 0 stays 0.
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

fn scenario_tables(out: &mut String, s: &ScenarioSummary, palette: &Palette) {
    let predictions: Vec<(&ResultSummary, &crate::analysis::Prediction)> = s
        .results
        .iter()
        .flat_map(|r| r.predictions.iter().map(move |p| (r, p)))
        .collect();
    if !predictions.is_empty() {
        out.push_str("<h3>Predictions</h3>\n<div class=\"table-wrap\"><table>\n<thead><tr><th class=\"text\">strategy</th><th class=\"text\">prediction</th><th>predicted</th><th>measured</th><th>error</th><th class=\"text\">basis</th></tr></thead>\n<tbody>\n");
        for (r, p) in predictions {
            let value = |v: f64| {
                if p.unit == "ms" {
                    format::duration4(v)
                } else {
                    format!("{} {}", format::significant(v, 4), p.unit)
                }
            };
            let err = p.relative_error();
            let _ = writeln!(
                out,
                "<tr{}><td>{}</td><td class=\"text\"><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
                shipped_row(&r.strategy),
                strategy_cell(palette, &r.strategy),
                esc(&p.name),
                esc(&value(p.predicted)),
                esc(&value(p.measured)),
                if err.is_finite() { format!("{:+.2}%", err * 100.0) } else { "—".into() },
                esc(&p.basis)
            );
        }
        out.push_str("</tbody></table></div>\n");
    }
    let expectations: Vec<(&ResultSummary, &crate::metrics::expectation::ExpectationResult)> = s
        .results
        .iter()
        .flat_map(|r| r.expectations.iter().map(move |e| (r, e)))
        .collect();
    if !expectations.is_empty() {
        out.push_str("<h3>Expectations</h3>\n<div class=\"table-wrap\"><table>\n<thead><tr><th class=\"text\">strategy</th><th class=\"text\">metric</th><th class=\"text\">expected</th><th>measured</th><th>result</th><th class=\"text\">note</th></tr></thead>\n<tbody>\n");
        for (r, e) in expectations {
            let _ = writeln!(
                out,
                "<tr{}><td>{}</td><td class=\"text\"><code>{}</code></td><td class=\"text\">{}</td><td>{}</td><td{}>{}</td><td class=\"text\">{}</td></tr>",
                shipped_row(&r.strategy),
                strategy_cell(palette, &r.strategy),
                esc(&e.metric),
                esc(&e.bound),
                esc(&metric_value(&e.metric, e.value)),
                if e.passed { "" } else { " class=\"bad\"" },
                if e.passed { "✓ held" } else { "✗ FAILED" },
                esc(&e.note)
            );
        }
        out.push_str("</tbody></table></div>\n");
    }
    if !s.references.is_empty() {
        out.push_str("<h3>References</h3>\n<p class=\"legend-note\">Figures from elsewhere (the analysis, the real proxy) beside what credpool measured.</p>\n<div class=\"table-wrap\"><table>\n<thead><tr><th class=\"text\">source</th><th class=\"text\">strategy</th><th class=\"text\">metric</th><th>reference</th><th>credpool</th><th class=\"text\">note</th></tr></thead>\n<tbody>\n");
        for reference in &s.references {
            let measured = s
                .results
                .iter()
                .find(|r| r.strategy == reference.strategy)
                .and_then(|r| crate::report::lookup(r, &reference.metric));
            let _ = writeln!(
                out,
                "<tr><td class=\"text\">{}</td><td class=\"text\"><code>{}</code></td><td class=\"text\"><code>{}</code></td><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
                esc(&reference.source),
                esc(&reference.strategy),
                esc(&reference.metric),
                esc(&metric_value(&reference.metric, reference.value.value())),
                measured.map(|m| esc(&metric_value(&reference.metric, m))).unwrap_or_else(|| "not run".into()),
                esc(&reference.note)
            );
        }
        out.push_str("</tbody></table></div>\n");
    }
}

fn scenario(
    out: &mut String,
    summary: &Summary,
    s: &ScenarioSummary,
    palette: &Palette,
    anchor: &str,
    hgrm: &[std::path::PathBuf],
) {
    let _ = write!(
        out,
        "<section class=\"card scenario\" id=\"{a}\">\n<h2><a href=\"#{a}\">{}</a></h2>\n",
        esc(&s.name),
        a = esc(anchor)
    );
    if !s.description.is_empty() {
        let _ = writeln!(out, "<p class=\"lead\">{}</p>", esc(&s.description));
    }
    let requests: Vec<u64> = s.results.iter().map(|r| r.requests).collect();
    let requests = match (requests.iter().min(), requests.iter().max()) {
        (Some(a), Some(b)) if a == b => format!("{a} requests per strategy"),
        (Some(a), Some(b)) => format!("{a}–{b} requests per strategy"),
        _ => "no results".into(),
    };
    let _ = writeln!(
        out,
        "<ul class=\"meta\"><li>{} time</li><li>{}</li><li>{} credential{}</li><li>store: {}</li><li>{}</li></ul>",
        esc(&s.mode),
        esc(&load_words(s)),
        s.credentials,
        if s.credentials == 1 { "" } else { "s" },
        esc(&s.store),
        esc(&requests)
    );
    for r in &s.results {
        if let Some(d) = &r.deadlock {
            deadlock(out, r, d);
        }
        for e in r.failed_expectations() {
            let _ = writeln!(
                out,
                "<p class=\"alert\"><b>{}: expectation failed:</b> <code>{}</code> expected {}, measured {}</p>",
                esc(&r.strategy),
                esc(&e.metric),
                esc(&e.bound),
                esc(&metric_value(&e.metric, e.value))
            );
        }
        if !r.file_readable {
            let _ = writeln!(
                out,
                "<p class=\"alert\"><b>{}:</b> the accounts file could not be read back after the run.</p>",
                esc(&r.strategy)
            );
        } else if r.file_empty {
            let _ = writeln!(
                out,
                "<p class=\"alert warn\"><b>{}:</b> the accounts file held no accounts after the run.</p>",
                esc(&r.strategy)
            );
        }
    }
    stats_table(out, s, palette);
    scenario_charts(out, s, palette);
    scenario_tables(out, s, palette);
    target_audit::section(out, s);
    fairness::section(out, s);
    reproducibility(out, summary, s, hgrm);
    out.push_str("<p class=\"legend-note\"><a href=\"#matrix\">↑ back to the matrix</a></p>\n</section>\n");
}

/// A run the watchdog stopped: its message, where the unfinished requests were, whether the
/// scenario expected it, and what its latencies still cover.
fn deadlock(out: &mut String, r: &ResultSummary, message: &str) {
    let expected = r.expectations.iter().any(|e| e.metric == "deadlocks" && e.passed);
    let _ = write!(
        out,
        "<div class=\"alert{}\">\n<p><b>{} hung{}:</b> {}</p>\n",
        if expected { " expected" } else { "" },
        esc(&r.strategy),
        if expected {
            " <span class=\"pill expected\">expected</span>"
        } else {
            ""
        },
        esc(message)
    );
    if !r.stuck.is_empty() {
        out.push_str("<table class=\"stuck\">\n<thead><tr><th class=\"text\">step where requests were stuck</th><th>requests</th></tr></thead>\n<tbody>\n");
        for s in &r.stuck {
            let _ = writeln!(
                out,
                "<tr><td class=\"text\"><code>{}</code></td><td>{}</td></tr>",
                esc(&s.step),
                s.requests
            );
        }
        out.push_str("</tbody></table>\n");
    }
    let _ = writeln!(
        out,
        "<p class=\"legend-note\">{}</p>\n</div>",
        match r.requests {
            0 => "No request completed before the watchdog stopped the run: it has no latency figures.".to_string(),
            n => format!(
                "Its latencies cover only the {n} request{} that completed before the watchdog stopped the run.",
                if n == 1 { "" } else { "s" }
            ),
        }
    );
}

fn reproducibility(out: &mut String, summary: &Summary, s: &ScenarioSummary, hgrm: &[std::path::PathBuf]) {
    let strategies: Vec<&str> = s.results.iter().map(|r| r.strategy.as_str()).collect();
    let command = format!(
        "credpool run {} --seed {} --mode {} --strategy {}",
        s.file,
        s.seed,
        s.mode,
        strategies.join(",")
    );
    let links: Vec<String> = s
        .results
        .iter()
        .zip(hgrm)
        .map(|(r, p)| {
            let href = p.to_string_lossy().replace('\\', "/");
            format!("<a href=\"{}\">{}</a>", esc(&href), esc(&r.strategy))
        })
        .collect();
    let rows: [(&str, String); 10] = [
        ("scenario file", esc(&s.file)),
        ("sha256", esc(&s.sha256)),
        ("seed", s.seed.to_string()),
        ("mode", esc(&s.mode)),
        ("re-run", format!("<code>{}</code>", esc(&command))),
        (
            "credpool",
            format!(
                "{} (git {})",
                esc(&summary.credpool_version),
                esc(&summary.git_revision)
            ),
        ),
        (
            "machine",
            format!(
                "{} cores, {} {}",
                summary.machine.cores,
                esc(&summary.machine.os),
                esc(&summary.machine.arch)
            ),
        ),
        ("run started", esc(&summary.started_at)),
        (
            "wall time",
            format!(
                "{} for this scenario, {} for the run",
                esc(&format::duration(s.wall_time_s * 1e3)),
                esc(&format::duration(summary.wall_time_s * 1e3))
            ),
        ),
        ("HdrHistogram files", links.join(" · ")),
    ];
    out.push_str("<h3>Reproduce</h3>\n<dl class=\"repro\">\n");
    for (k, v) in rows {
        let _ = writeln!(out, "<dt>{k}</dt><dd>{v}</dd>");
    }
    out.push_str("</dl>\n");
}

fn footer(out: &mut String, summary: &Summary) {
    let _ = write!(
        out,
        "<footer class=\"card\">\n<h3 style=\"margin-top:0\">This run</h3>\n<dl class=\"repro\">\n\
         <dt>command</dt><dd>{}</dd>\n<dt>credpool</dt><dd>{} (git {})</dd>\n<dt>machine</dt><dd>{} cores, {} {}</dd>\n\
         <dt>started</dt><dd>{}</dd>\n<dt>wall time</dt><dd>{}</dd>\n<dt>files</dt><dd><a href=\"{}\">{}</a> (everything, with HdrHistogram V2 histograms) · <a href=\"{}\">{}</a> (one row per scenario and strategy){} · <code>hgrm/</code> (percentile distributions for HdrHistogram's plotting tools)</dd>\n</dl>\n\
         <p>Regenerate this page with <code>credpool report DIR</code>; compare two runs with <code>credpool compare OLD NEW</code>.</p>\n</footer>\n",
        esc(&summary.command.join(" ")),
        esc(&summary.credpool_version),
        esc(&summary.git_revision),
        summary.machine.cores,
        esc(&summary.machine.os),
        esc(&summary.machine.arch),
        esc(&summary.started_at),
        esc(&format::duration(summary.wall_time_s * 1e3)),
        crate::report::json::FILE,
        crate::report::json::FILE,
        crate::report::csv::FILE,
        crate::report::csv::FILE,
        if findings::present(&summary.findings) {
            format!(
                " · <a href=\"{f}\">{f}</a> (the findings, as Markdown)",
                f = crate::report::findings::FILE
            )
        } else {
            String::new()
        },
    );
}
