//! The percentile spectrum, HdrHistogram style: latency against percentile, every strategy on one
//! chart.
//!
//! The horizontal axis is `log10(1 / (1 - p))`, so 90%, 99%, 99.9% ... are equally spaced and the
//! tail (where a lock's queue shows) gets as much room as the median. The curves come from the
//! full histograms (not the timeline sample): sampled at 50 points per decade up to the last
//! percentile the run can resolve, `1 - 1/n`, then exactly to the maximum, drawn at the right
//! edge. Latency is on a log axis so a 30 ms strategy and a 3 s one are both legible.

use super::{
    chart_err, draw_line, log_ticks, marker, mesh_style, render, with_key, Figure, GlyphKind, KeyItem, SeriesStyle,
    TITLE_FONT, WIDE,
};
use crate::metrics::LatencyHistogram;
use crate::report::format;
use plotters::prelude::*;

/// One curve.
pub struct Series<'a> {
    pub label: String,
    pub style: SeriesStyle,
    pub histogram: &'a LatencyHistogram,
}

/// Points per decade of `1/(1-p)`.
const STEPS_PER_DECADE: f64 = 50.0;
/// How far right of the last percentile decade the maximum is drawn.
const MAX_GAP: f64 = 0.5;

/// The percentile label of position `x` (decades of `1/(1-p)`): 0%, 90%, 99%, 99.9%, ...
pub fn percentile_label(decades: u32) -> String {
    match decades {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        d => format!("99.{}%", "9".repeat(d as usize - 2)),
    }
}

/// The curve of one histogram: (decades, ms) points, ending at the maximum at `x_max`.
fn curve(h: &LatencyHistogram, x_max: f64) -> Vec<(f64, f64)> {
    let n = h.count();
    if n == 0 {
        return Vec::new();
    }
    let last = (n as f64).log10();
    let steps = (last * STEPS_PER_DECADE).floor() as u32;
    let mut xs: Vec<f64> = (0..=steps).map(|k| f64::from(k) / STEPS_PER_DECADE).collect();
    if last > f64::from(steps) / STEPS_PER_DECADE {
        xs.push(last);
    }
    let qs: Vec<f64> = xs.iter().map(|x| 1.0 - 10f64.powf(-x)).collect();
    let mut pts: Vec<(f64, f64)> = xs.into_iter().zip(h.quantiles_ms(&qs)).collect();
    // Beyond 1 - 1/n every quantile is the maximum.
    pts.push((last, h.max_ms()));
    pts.push((x_max, h.max_ms()));
    pts
}

pub fn draw(title: &str, series: &[Series<'_>]) -> Result<Figure, String> {
    let with_data: Vec<&Series<'_>> = series.iter().filter(|s| s.histogram.count() > 0).collect();
    if with_data.is_empty() {
        return Err("no requests were recorded".into());
    }
    let most = with_data.iter().map(|s| s.histogram.count()).max().unwrap_or(1);
    let decades = ((most as f64).log10().ceil() as u32).clamp(2, 9);
    let x_max = f64::from(decades) + MAX_GAP;
    // Latency floor at 1 µs: the log axis cannot show zero.
    let lo = with_data
        .iter()
        .map(|s| s.histogram.min_ms())
        .fold(f64::INFINITY, f64::min)
        .max(1e-3);
    let hi = with_data
        .iter()
        .map(|s| s.histogram.max_ms())
        .fold(0.0, f64::max)
        .max(lo * 1.01);
    // Bounds on the 1-2-5 sequence, so both ends of the axis carry a label.
    let (y_lo, y_hi) = (super::nice_bound(lo / 1.1, false), super::nice_bound(hi * 1.1, true));
    let y_ticks = log_ticks(y_lo, y_hi);
    let mut x_ticks: Vec<f64> = (0..=decades).map(f64::from).collect();
    x_ticks.push(x_max);

    let key: Vec<KeyItem> = with_data
        .iter()
        .map(|s| KeyItem::new(s.label.clone(), GlyphKind::Line(s.style)))
        .collect();
    let svg = render(WIDE, title, |root, dashes| {
        let plot = with_key(root, &key)?;
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", TITLE_FONT))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(78)
            .build_cartesian_2d(
                super::ticked::<_, plotters::coord::types::RangedCoordf64>(0.0..x_max, x_ticks.clone()),
                super::ticked::<_, plotters::coord::combinators::LogCoord<f64>>(
                    (y_lo..y_hi).log_scale(),
                    y_ticks.clone(),
                ),
            )
            .map_err(chart_err)?;
        let x_fmt = |x: &f64| {
            if (*x - x_max).abs() < 1e-9 {
                "max".to_string()
            } else {
                percentile_label(x.round() as u32)
            }
        };
        let y_fmt = |y: &f64| format::duration_tick(*y);
        mesh_style(&mut chart, "percentile (log scale of 1/(1−p))", "latency (log scale)")
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .draw()
            .map_err(chart_err)?;
        for s in &with_data {
            let pts = curve(s.histogram, x_max);
            let last = (s.histogram.count() as f64).log10();
            let marks: Vec<(f64, f64)> = (0..=decades)
                .map(f64::from)
                .filter(|x| *x <= last + 1e-9)
                .map(|x| (x, s.histogram.quantile_ms(1.0 - 10f64.powf(-x))))
                .chain(std::iter::once((x_max, s.histogram.max_ms())))
                .collect();
            draw_line(&mut chart, dashes, pts, s.style)?;
            chart
                .draw_series(marks.into_iter().map(|p| marker(s.style.marker, p, 4, s.style.color)))
                .map_err(chart_err)?;
        }
        Ok(())
    })?;
    let counts: Vec<u64> = with_data.iter().map(|s| s.histogram.count()).collect();
    let n = if counts.iter().all(|c| *c == counts[0]) {
        format!("{} requests each", counts[0])
    } else {
        format!(
            "{}–{} requests",
            counts.iter().min().unwrap_or(&0),
            counts.iter().max().unwrap_or(&0)
        )
    };
    Ok(Figure {
        svg,
        caption: format!(
            "Latency at each percentile, HdrHistogram style: each step right is ten times rarer \
             (90%, 99%, 99.9%, …); markers sit at those percentiles and at the maximum. From the full \
             histograms ({n}, 3 significant digits), not a sample."
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn percentile_labels() {
        let labels: Vec<String> = (0..5).map(percentile_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
    }

    #[test]
    fn curve_runs_from_min_to_max() {
        let mut h = LatencyHistogram::default();
        for k in 1..=100u64 {
            h.record(Duration::from_millis(30 * k));
        }
        let c = curve(&h, 2.5);
        assert_eq!(c.first().unwrap(), &(0.0, 30.0));
        assert_eq!(c.last().unwrap(), &(2.5, 3000.0));
        // p90 (x = 1) is the 90th value, within HdrHistogram's 0.1%.
        let p90 = c.iter().find(|(x, _)| (*x - 1.0).abs() < 1e-9).unwrap().1;
        assert!((p90 - 2700.0).abs() / 2700.0 < 0.001, "{p90}");
        assert!(c.windows(2).all(|w| w[1].1 >= w[0].1 && w[1].0 >= w[0].0), "monotone");
    }
}
