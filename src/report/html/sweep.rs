//! `sweep.html`: one load sweep. A header with the method (levels, SLO, seeds), a table of the
//! capacity figures per strategy (sustainable rate, knee, USL coefficients), the charts (p99 of
//! every strategy against load; each strategy's percentiles against load; for concurrency sweeps
//! throughput against users with the USL curve) and each strategy's points. A function of the
//! [`SweepReport`] alone.

use super::escape::text as esc;
use super::{figure, page_end, page_start};
use crate::analysis::sweep::StrategySweep;
use crate::report::charts::sweep::{self as chart, KneeMark, Line, UslSeries};
use crate::report::charts::{series_style, Palette};
use crate::report::format;
use crate::report::sweep::SweepReport;
use std::fmt::Write;

pub const FILE: &str = "sweep.html";

fn opt_rate(v: Option<f64>) -> String {
    v.map_or("—".into(), format::rate)
}

fn level_words(r: &SweepReport) -> (&'static str, &'static str) {
    if r.kind == "users" {
        ("concurrent users (closed loop)", "users")
    } else {
        ("offered load (requests per second)", "offered rps")
    }
}

pub fn render(r: &SweepReport) -> String {
    let palette = Palette::new(r.strategies.iter().map(|s| s.strategy.as_str()));
    let (x_desc, x_short) = level_words(r);
    let mut out = String::with_capacity(128 * 1024);
    page_start(&mut out, &format!("credpool sweep — {}", r.scenario));
    let _ = write!(
        out,
        "<header class=\"card\">\n<h1>Load sweep: <code>{}</code></h1>\n<p class=\"sub\">{}</p>\n<p>{} {} level{} ({}) × {} strateg{} × {} seed{} ({}), {} mode. Every strategy sees the same arrivals and upstream draws at each level and seed.</p>\n",
        esc(&r.scenario),
        esc(&r.description),
        r.levels.len(),
        // "rate" or "users" level(s): the kind names the swept quantity.
        esc(r.kind.as_str().trim_end_matches('s')),
        if r.levels.len() == 1 { "" } else { "s" },
        // Levels are what the scenario wrote (5, 7.5, 120): shortest exact form, not 4 digits.
        esc(&r.levels.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")),
        r.strategies.len(),
        if r.strategies.len() == 1 { "y" } else { "ies" },
        r.seeds.len(),
        if r.seeds.len() == 1 { "" } else { "s" },
        esc(&r.seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
        esc(&r.mode),
    );
    let method = if r.kind == "rates" {
        format!(
            "p99 objective: {}. A rate is <em>sustainable</em> when its p99 meets the objective and at least {}% of the requests that arrived before the last arrival completed by then, and every lower rate swept is too.",
            esc(&r.slo_p99_ms.map_or("none set".to_string(), format::duration)),
            r.keep_up * 100.0
        )
    } else {
        "Each level is a closed loop of that many users; the Universal Scalability Law is fitted to throughput against users by least squares.".to_string()
    };
    let _ = write!(
        out,
        "<p class=\"legend-note\">{method} The knee is Kneedle's (sensitivity S = {}) on the p99 curve, looked for when p99 at least doubles over the sweep. Ran on {} thread{} in {}; figures in <code>sweep.json</code>.</p>\n</header>\n",
        r.knee_sensitivity,
        r.execution.jobs,
        if r.execution.jobs == 1 { "" } else { "s" },
        esc(&format::duration(r.execution.wall_time_s * 1e3)),
    );

    // Capacity at a glance.
    out.push_str(
        "<section class=\"card\">\n<h2>Capacity</h2>\n<div class=\"table-wrap\"><table>\n<thead><tr><th>strategy</th>",
    );
    if r.kind == "rates" {
        out.push_str("<th>sustainable rps</th><th>highest throughput</th>");
    } else {
        out.push_str("<th>highest throughput</th><th>USL σ</th><th>USL κ</th><th>USL λ</th><th>N*</th><th>R²</th>");
    }
    let _ = write!(
        out,
        "<th>knee ({})</th><th>p99 at knee</th></tr></thead>\n<tbody>\n",
        esc(x_short)
    );
    for s in &r.strategies {
        let best = s.points.iter().map(|p| p.throughput_rps).fold(0.0, f64::max);
        let _ = write!(out, "<tr><td>{}</td>", strategy_cell(&palette, &s.strategy));
        if r.kind == "rates" {
            let _ = write!(
                out,
                "<td>{}</td><td>{}</td>",
                opt_rate(s.sustainable_rps),
                format::rate(best)
            );
        } else {
            let _ = write!(out, "<td>{}</td>", format::rate(best));
            match &s.usl {
                Some(u) => {
                    let _ = write!(
                        out,
                        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                        format::significant(u.sigma, 3),
                        format::significant(u.kappa, 3),
                        format::rate(u.lambda),
                        u.n_star.map_or("∞".into(), |n| format::significant(n, 3)),
                        format::significant(u.r_squared, 4)
                    );
                }
                None => out.push_str("<td colspan=\"5\">no fit (fewer than three levels)</td>"),
            }
        }
        match &s.knee {
            Some(k) => {
                let _ = writeln!(
                    out,
                    "<td>{}</td><td>{}</td></tr>",
                    format::significant(k.offered, 4),
                    format::duration(k.p99_ms)
                );
            }
            None => out.push_str("<td>none found</td><td>—</td></tr>\n"),
        }
    }
    out.push_str("</tbody></table></div>\n</section>\n");

    // Charts.
    let _ = writeln!(
        out,
        "<section class=\"card\">\n<h2>Latency against {}</h2>",
        if r.kind == "users" { "concurrency" } else { "load" }
    );
    let lines: Vec<Line> = r
        .strategies
        .iter()
        .map(|s| Line {
            label: s.strategy.clone(),
            style: palette.style(&s.strategy),
            points: s.points.iter().map(|p| (p.offered, p.latency_ms.p99)).collect(),
        })
        .collect();
    let knees: Vec<KneeMark> = r
        .strategies
        .iter()
        .filter_map(|s| {
            s.knee.as_ref().map(|k| KneeMark {
                offered: k.offered,
                latency_ms: k.p99_ms,
                style: palette.style(&s.strategy),
            })
        })
        .collect();
    figure(
        &mut out,
        chart::latency(
            "p99 latency against load, every strategy",
            x_desc,
            &lines,
            r.slo_p99_ms,
            &knees,
            true,
        ),
    );
    out.push_str("<div class=\"pair\">\n");
    for s in &r.strategies {
        figure(&mut out, percentile_chart(r, s, &palette, x_desc));
    }
    out.push_str("</div>\n</section>\n");
    if r.kind == "users" {
        out.push_str("<section class=\"card\">\n<h2>Throughput against concurrency</h2>\n");
        let series: Vec<UslSeries> = r
            .strategies
            .iter()
            .map(|s| UslSeries {
                label: s.strategy.clone(),
                style: palette.style(&s.strategy),
                measured: s.points.iter().map(|p| (p.offered, p.throughput_rps)).collect(),
                fit: s.usl.as_ref(),
            })
            .collect();
        figure(
            &mut out,
            chart::throughput_usl("Throughput against users, with the USL fit", &series),
        );
        out.push_str("</section>\n");
    }

    // Points.
    for s in &r.strategies {
        points_table(&mut out, r, s, &palette);
    }
    page_end(&mut out);
    out
}

/// The run index's "Load sweeps" card: a link per sweep and what it found (nothing when the run
/// had no sweep).
pub(crate) fn index_section(out: &mut String, summary: &crate::report::summary::Summary, palette: &Palette) {
    if summary.sweeps.is_empty() {
        return;
    }
    out.push_str("<section class=\"card\" id=\"sweeps\">\n<h2>Load sweeps</h2>\n<p class=\"sub\">Scenarios with a <code>[sweep]</code> table, run again at each level: the sustainable rate at the p99 objective and the knee of the latency curve. Each page has the charts and every point.</p>\n");
    for l in &summary.sweeps {
        let _ = write!(
            out,
            "<h3><a href=\"{}\">{}</a></h3>\n<p class=\"legend-note\">{} {} ({}), p99 objective {}; data in <a href=\"{}\"><code>{}</code></a>.</p>\n<div class=\"table-wrap\"><table>\n<thead><tr><th>strategy</th><th>sustainable rps</th><th>knee</th></tr></thead>\n<tbody>\n",
            esc(&l.html),
            esc(&l.scenario),
            l.levels.len(),
            esc(&l.kind),
            esc(&l.levels.iter().map(|v| format::significant(*v, 4)).collect::<Vec<_>>().join(", ")),
            esc(&l.slo_p99_ms.map_or("none".to_string(), format::duration)),
            esc(&l.json),
            esc(&l.json),
        );
        for s in &l.strategies {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                strategy_cell(palette, &s.strategy),
                opt_rate(s.sustainable_rps),
                s.knee.map_or("none found".into(), |k| format::significant(k, 4)),
            );
        }
        out.push_str("</tbody></table></div>\n");
    }
    out.push_str("</section>\n");
}

fn strategy_cell(palette: &Palette, strategy: &str) -> String {
    let c = palette.style(strategy).color;
    format!(
        "<span class=\"swatch\" style=\"background:rgb({},{},{})\"></span><code>{}</code>",
        c.0,
        c.1,
        c.2,
        esc(strategy)
    )
}

/// One strategy's p50, p90, p99 and p99.9 against load.
fn percentile_chart(
    r: &SweepReport,
    s: &StrategySweep,
    _palette: &Palette,
    x_desc: &str,
) -> Result<crate::report::charts::Figure, String> {
    type Pick = fn(&crate::metrics::histogram::LatencyStats) -> f64;
    let picks: [(&str, Pick); 4] = [
        ("p50", |l| l.p50),
        ("p90", |l| l.p90),
        ("p99", |l| l.p99),
        ("p99.9", |l| l.p999),
    ];
    let lines: Vec<Line> = picks
        .iter()
        .enumerate()
        .map(|(i, (name, f))| Line {
            label: (*name).into(),
            style: series_style(i),
            points: s.points.iter().map(|p| (p.offered, f(&p.latency_ms))).collect(),
        })
        .collect();
    let knees: Vec<KneeMark> = s
        .knee
        .iter()
        .map(|k| KneeMark {
            offered: k.offered,
            latency_ms: k.p99_ms,
            style: series_style(2),
        })
        .collect();
    chart::latency(
        &format!("{}: percentiles", s.strategy),
        x_desc,
        &lines,
        r.slo_p99_ms,
        &knees,
        false,
    )
}

fn points_table(out: &mut String, r: &SweepReport, s: &StrategySweep, palette: &Palette) {
    let _ = write!(
        out,
        "<section class=\"card\">\n<h2>Points: {}</h2>\n<div class=\"table-wrap\"><table>\n<thead><tr><th>{}</th>",
        strategy_cell(palette, &s.strategy),
        if r.kind == "users" { "users" } else { "offered rps" }
    );
    if r.kind == "rates" {
        out.push_str("<th>arrived rps</th><th>completed share</th>");
    }
    out.push_str("<th>throughput</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>mean in flight</th><th>throughput × mean latency</th><th>errors</th><th>verdict</th></tr></thead>\n<tbody>\n");
    for p in &s.points {
        let _ = write!(out, "<tr><td>{}</td>", format::significant(p.offered, 4));
        if r.kind == "rates" {
            let _ = write!(
                out,
                "<td>{}</td><td>{}</td>",
                opt_rate(p.arrival_rps),
                p.completed_share.map_or("—".into(), |v| format!("{:.2}%", v * 100.0))
            );
        }
        let p99 = if p.repeats > 1 {
            format!(
                "{} <small>({}–{})</small>",
                esc(&format::duration(p.latency_ms.p99)),
                esc(&format::duration(p.p99_range_ms[0])),
                esc(&format::duration(p.p99_range_ms[1]))
            )
        } else {
            esc(&format::duration(p.latency_ms.p99))
        };
        let mut verdict = Vec::new();
        if p.deadlocked {
            verdict.push("hung".to_string());
        }
        match p.meets_slo {
            Some(true) => verdict.push("meets SLO".into()),
            Some(false) => verdict.push("misses SLO".into()),
            None => {}
        }
        if p.keeps_up == Some(false) {
            verdict.push("falls behind".into());
        }
        let _ = writeln!(
            out,
            "<td>{}</td><td>{}</td><td>{}</td><td>{p99}</td><td>{}</td><td>{}</td><td>{} <small>({:+.1}%)</small></td><td>{}</td><td>{}</td></tr>",
            format::rate(p.throughput_rps),
            esc(&format::duration(p.latency_ms.p50)),
            esc(&format::duration(p.latency_ms.p90)),
            esc(&format::duration(p.latency_ms.p999)),
            format::significant(p.mean_in_flight, 4),
            format::significant(p.littles_product, 4),
            p.littles_relative_error * 100.0,
            p.errors,
            esc(&verdict.join(", ")),
        );
    }
    out.push_str("</tbody></table></div>\n");
    if let Some(u) = &s.usl {
        let _ = writeln!(
            out,
            "<p class=\"sub\">USL residuals (measured − fitted, rps): {}; RMSE {}.</p>",
            esc(&u
                .residuals
                .iter()
                .map(|v| format::significant(*v, 3))
                .collect::<Vec<_>>()
                .join(", ")),
            format::significant(u.rmse, 3)
        );
    }
    out.push_str("</section>\n");
}
