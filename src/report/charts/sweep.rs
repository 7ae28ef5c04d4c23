//! Load-sweep charts: latency against offered load (with the SLO and the knee marked), and
//! throughput against concurrency with the fitted Universal Scalability Law curve.
//!
//! Latency is on a log axis (a sweep runs from idle to overload: milliseconds to minutes); the
//! load axis is linear, as the levels were chosen. The SLO is a dashed horizontal line, each knee
//! a dotted vertical line in its series' colour with a labelled marker.

use super::{
    chart_err, draw_line, log_ticks, marker, mesh_style, render, with_key, Figure, GlyphKind, KeyItem, Marker,
    SeriesStyle, AXIS, HALF, INK, TICK_FONT, TITLE_FONT, WIDE,
};
use crate::analysis::usl::{self, UslFit};
use crate::report::format;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One line of (load, value) points.
pub struct Line {
    pub label: String,
    pub style: SeriesStyle,
    pub points: Vec<(f64, f64)>,
}

/// A knee to mark: the load, the latency there, and the series style.
pub struct KneeMark {
    pub offered: f64,
    pub latency_ms: f64,
    pub style: SeriesStyle,
}

/// The SLO line's style: dashed, dark grey.
const SLO: SeriesStyle = SeriesStyle {
    color: RGBColor(90, 96, 105),
    dash: Some((8, 4)),
    marker: Marker::Cross,
};

/// Latency (log axis) against offered load: one line per series, the SLO and the knees.
pub fn latency(
    title: &str,
    x_desc: &str,
    lines: &[Line],
    slo_ms: Option<f64>,
    knees: &[KneeMark],
    wide: bool,
) -> Result<Figure, String> {
    let all: Vec<(f64, f64)> = lines.iter().flat_map(|l| l.points.iter().copied()).collect();
    if all.is_empty() {
        return Err("no sweep points".into());
    }
    let x_max = all.iter().map(|p| p.0).fold(0.0, f64::max) * 1.05;
    let lo = all
        .iter()
        .map(|p| p.1)
        .chain(slo_ms)
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min)
        .max(1e-3);
    let hi = all.iter().map(|p| p.1).chain(slo_ms).fold(0.0, f64::max).max(lo * 1.01);
    let (y_lo, y_hi) = (super::nice_bound(lo / 1.1, false), super::nice_bound(hi * 1.1, true));
    let y_ticks = log_ticks(y_lo, y_hi);
    let mut key: Vec<KeyItem> = lines
        .iter()
        .map(|l| KeyItem::new(l.label.clone(), GlyphKind::Line(l.style)))
        .collect();
    if slo_ms.is_some() {
        key.push(KeyItem::new("p99 SLO", GlyphKind::Line(SLO)));
    }
    let size = if wide { WIDE } else { HALF };
    let svg = render(size, title, |root, dashes| {
        let plot = with_key(root, &key)?;
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", TITLE_FONT))
            .margin(14)
            .x_label_area_size(46)
            .y_label_area_size(74)
            .build_cartesian_2d(
                0.0..x_max,
                super::ticked::<_, plotters::coord::combinators::LogCoord<f64>>(
                    (y_lo..y_hi).log_scale(),
                    y_ticks.clone(),
                ),
            )
            .map_err(chart_err)?;
        let x_fmt = |v: &f64| super::tick(*v);
        let y_fmt = |y: &f64| format::duration_tick(*y);
        mesh_style(&mut chart, x_desc, "latency (log scale)")
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_labels(8)
            .draw()
            .map_err(chart_err)?;
        if let Some(slo) = slo_ms {
            draw_line(&mut chart, dashes, vec![(0.0, slo), (x_max, slo)], SLO)?;
        }
        for k in knees {
            let dotted = SeriesStyle {
                dash: Some((2, 4)),
                ..k.style
            };
            draw_line(&mut chart, dashes, vec![(k.offered, y_lo), (k.offered, y_hi)], dotted)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("knee {}", super::tick(k.offered)),
                    (k.offered, k.latency_ms),
                    ("sans-serif", TICK_FONT)
                        .into_font()
                        .color(&INK)
                        .pos(Pos::new(HPos::Right, VPos::Bottom)),
                )))
                .map_err(chart_err)?;
        }
        for l in lines {
            let pts: Vec<(f64, f64)> = l.points.iter().copied().filter(|p| p.1 > 0.0).collect();
            draw_line(&mut chart, dashes, pts.clone(), l.style)?;
            chart
                .draw_series(pts.into_iter().map(|p| marker(l.style.marker, p, 4, l.style.color)))
                .map_err(chart_err)?;
        }
        for k in knees {
            chart
                .draw_series(std::iter::once(marker(
                    Marker::Ring,
                    (k.offered, k.latency_ms),
                    8,
                    AXIS,
                )))
                .map_err(chart_err)?;
        }
        Ok(())
    })?;
    let slo = slo_ms.map_or(String::new(), |s| {
        format!(" The dashed line is the p99 objective ({}).", format::duration(s))
    });
    Ok(Figure {
        svg,
        caption: format!(
            "Latency at each offered level, on a log scale.{slo} A ring and a dotted line mark the knee Kneedle finds in the p99 curve (sensitivity {}): past it, latency climbs much faster than load.",
            crate::analysis::kneedle::DEFAULT_SENSITIVITY
        ),
    })
}

/// One strategy's concurrency sweep: measured throughput and its USL fit.
pub struct UslSeries<'a> {
    pub label: String,
    pub style: SeriesStyle,
    /// (users, throughput rps).
    pub measured: Vec<(f64, f64)>,
    pub fit: Option<&'a UslFit>,
}

/// Throughput against concurrency: measured points as markers, the USL curve as a line.
pub fn throughput_usl(title: &str, series: &[UslSeries<'_>]) -> Result<Figure, String> {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.measured.iter().copied()).collect();
    if all.is_empty() {
        return Err("no sweep points".into());
    }
    let n_max = all.iter().map(|p| p.0).fold(1.0, f64::max);
    let x_max = n_max * 1.05;
    let curves: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| match s.fit {
            Some(f) => (0..=200)
                .map(|i| {
                    let n = 1.0 + (n_max - 1.0) * f64::from(i) / 200.0;
                    (n, usl::throughput(n, f.sigma, f.kappa, f.lambda))
                })
                .collect(),
            None => Vec::new(),
        })
        .collect();
    let y_max = all
        .iter()
        .chain(curves.iter().flatten())
        .map(|p| p.1)
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.15;
    let mut key = Vec::new();
    for s in series {
        key.push(KeyItem::new(format!("{} measured", s.label), GlyphKind::Marks(s.style)));
        if s.fit.is_some() {
            key.push(KeyItem::new(format!("{} USL fit", s.label), GlyphKind::Line(s.style)));
        }
    }
    let svg = render(WIDE, title, |root, dashes| {
        let plot = with_key(root, &key)?;
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", TITLE_FONT))
            .margin(14)
            .x_label_area_size(46)
            .y_label_area_size(74)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(chart_err)?;
        let fmt = |v: &f64| super::tick(*v);
        mesh_style(&mut chart, "concurrent users", "throughput (requests per second)")
            .x_label_formatter(&fmt)
            .y_label_formatter(&fmt)
            .x_labels(8)
            .y_labels(6)
            .draw()
            .map_err(chart_err)?;
        for (s, c) in series.iter().zip(&curves) {
            if !c.is_empty() {
                draw_line(&mut chart, dashes, c.clone(), s.style)?;
            }
            chart
                .draw_series(s.measured.iter().map(|p| marker(s.style.marker, *p, 5, s.style.color)))
                .map_err(chart_err)?;
        }
        Ok(())
    })?;
    Ok(Figure {
        svg,
        caption: "Throughput each number of closed-loop users achieved (markers) and the Universal Scalability Law fitted to it by least squares (lines): X(N) = λN / (1 + σ(N − 1) + κN(N − 1)). σ is contention, κ coherency; the fitted coefficients are in the table."
            .into(),
    })
}
