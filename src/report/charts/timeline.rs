//! The per-request timeline: each request's latency against its number (bursts and closed loads,
//! where requests queue in arrival order and a global lock draws a staircase) or against its
//! intended arrival time (open loads, where the load does not wait for the system).
//!
//! It draws the summary's `timeline`, a bounded uniform sample (at most
//! [`crate::metrics::recorder::TIMELINE_SAMPLE`] requests per strategy), and says so when it is a
//! sample. Marks that land on the same few pixels are drawn once and at most [`MAX_MARKS`] per
//! strategy are kept, so the SVG stays small whatever the run's size.

use super::{
    chart_err, marker, mesh_style, render, time_unit, with_key, Figure, GlyphKind, KeyItem, Marker, SeriesStyle, INK,
    TITLE_FONT, WIDE,
};
use crate::metrics::recorder::TimelinePoint;
use plotters::prelude::*;

/// One strategy's sample.
pub struct Series<'a> {
    pub label: String,
    pub style: SeriesStyle,
    pub points: &'a [TimelinePoint],
    /// Requests in the run (the sample may hold fewer).
    pub requests: u64,
}

/// What the horizontal axis counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    RequestNumber,
    ArrivalTime,
}

/// Marks kept per strategy after merging those on the same spot.
pub const MAX_MARKS: usize = 400;
/// Marks closer than this (pixels, both directions) are one mark.
const CELL_PX: f64 = 4.0;

pub fn draw(title: &str, axis: Axis, series: &[Series<'_>]) -> Result<Figure, String> {
    let x_of = |p: &TimelinePoint| match axis {
        Axis::RequestNumber => p.number as f64 + 1.0,
        Axis::ArrivalTime => p.arrival_ms,
    };
    let all = series.iter().flat_map(|s| s.points.iter());
    let (x_hi, y_hi) = all.fold((0.0f64, 0.0f64), |(x, y), p| (x.max(x_of(p)), y.max(p.latency_ms)));
    if series.iter().all(|s| s.points.is_empty()) {
        return Err("no requests were recorded".into());
    }
    let y_unit = time_unit(y_hi);
    let (x_scale, x_desc) = match axis {
        Axis::RequestNumber => (1.0, "request number (arrival order)".to_string()),
        Axis::ArrivalTime => {
            let u = time_unit(x_hi);
            (u.per_ms, format!("intended arrival time ({})", u.name))
        }
    };
    let x_max = (x_hi * x_scale * 1.02).max(1.0);
    let y_max = (y_hi * y_unit.per_ms * 1.08).max(1e-3);
    // Approximate plot area, for merging marks on the same spot.
    let (plot_w, plot_h) = (f64::from(WIDE.0) - 110.0, f64::from(WIDE.1) - 100.0);

    let mut kept_total = 0usize;
    // Per series: its index and its marks (x, y, ok).
    type Marks = Vec<(f64, f64, bool)>;
    let mut shown: Vec<(usize, Marks)> = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let mut seen = std::collections::HashSet::new();
        let mut pts: Vec<(f64, f64, bool)> = Vec::new();
        for p in s.points {
            let (x, y) = (x_of(p) * x_scale, p.latency_ms * y_unit.per_ms);
            let cell = (
                (x / x_max * plot_w / CELL_PX) as i64,
                (y / y_max * plot_h / CELL_PX) as i64,
                p.ok,
            );
            if seen.insert(cell) {
                pts.push((x, y, p.ok));
            }
        }
        if pts.len() > MAX_MARKS {
            let step = pts.len().div_ceil(MAX_MARKS);
            pts = pts.into_iter().step_by(step).collect();
        }
        kept_total += pts.len();
        shown.push((i, pts));
    }
    let any_failed = shown.iter().any(|(_, p)| p.iter().any(|(_, _, ok)| !ok));

    let mut key: Vec<KeyItem> = series
        .iter()
        .map(|s| KeyItem::new(s.label.clone(), GlyphKind::Marks(s.style)))
        .collect();
    let failed = SeriesStyle {
        color: INK,
        dash: None,
        marker: Marker::Ring,
    };
    if any_failed {
        key.push(KeyItem::new("failed request (ringed)", GlyphKind::Marks(failed)));
    }
    let svg = render(WIDE, title, |root, _| {
        let plot = with_key(root, &key)?;
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", TITLE_FONT))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(chart_err)?;
        let fmt = |v: &f64| super::tick(*v);
        mesh_style(&mut chart, &x_desc, &format!("latency ({})", y_unit.name))
            .x_label_formatter(&fmt)
            .y_label_formatter(&fmt)
            .x_labels(12)
            .y_labels(8)
            .draw()
            .map_err(chart_err)?;
        for (i, pts) in &shown {
            let style = series[*i].style;
            chart
                .draw_series(
                    pts.iter()
                        .map(|(x, y, _)| marker(style.marker, (*x, *y), 3, style.color)),
                )
                .map_err(chart_err)?;
            chart
                .draw_series(
                    pts.iter()
                        .filter(|p| !p.2)
                        .map(|(x, y, _)| marker(failed.marker, (*x, *y), 6, failed.color)),
                )
                .map_err(chart_err)?;
        }
        Ok(())
    })?;

    // "2000 of 2400 requests for a, b; 2000 of 9000 for c": strategies with the same sample grouped.
    let mut sampled: Vec<((usize, u64), Vec<&str>)> = Vec::new();
    for s in series.iter().filter(|s| (s.points.len() as u64) < s.requests) {
        let key = (s.points.len(), s.requests);
        match sampled.iter_mut().find(|(k, _)| *k == key) {
            Some((_, names)) => names.push(&s.label),
            None => sampled.push((key, vec![&s.label])),
        }
    }
    let sampled: Vec<String> = sampled
        .iter()
        .map(|((n, of), names)| {
            if names.len() == series.len() {
                format!("{n} of {of} requests of each strategy")
            } else {
                format!("{n} of {of} requests for {}", names.join(", "))
            }
        })
        .collect();
    let drawn: usize = series.iter().map(|s| s.points.len()).sum();
    let mut caption = match axis {
        Axis::RequestNumber => "Each mark is one request: its latency against its number in arrival order. A lock that serves one request at a time draws a staircase.".to_string(),
        Axis::ArrivalTime => "Each mark is one request: its latency against the time it was meant to start (the open load does not wait for the system, so queueing shows as rising marks).".to_string(),
    };
    if sampled.is_empty() {
        caption.push_str(" Every request is shown.");
    } else {
        caption.push_str(&format!(
            " A uniform random sample of the requests (reservoir sampling): {}.",
            sampled.join("; ")
        ));
    }
    if kept_total < drawn {
        caption.push_str(&format!(
            " Marks that fall on the same spot are drawn once ({kept_total} marks for {drawn} requests)."
        ));
    }
    Ok(Figure { svg, caption })
}
