//! Throughput over time: completions per second in the run's time buckets, one line per strategy.
//!
//! Drawn for open and staged loads, where the offered load is fixed and throughput shows whether a
//! strategy keeps up (a closed loop's throughput is just its latency read backwards). The series
//! is bounded: the recorder keeps at most 240 buckets and widens them as a run grows.

use super::{
    chart_err, draw_line, marker, mesh_style, render, time_unit, with_key, Figure, GlyphKind, KeyItem, SeriesStyle,
    HALF, TITLE_FONT,
};
use plotters::prelude::*;

pub struct Series<'a> {
    pub label: String,
    pub style: SeriesStyle,
    /// Completions per bucket from the start of the run.
    pub counts: &'a [u64],
    pub bucket_s: f64,
}

/// At most this many buckets per line: finer series are merged so lines stay readable.
const MAX_POINTS: f64 = 80.0;

/// Completions per second in buckets of `width` seconds, from counts in buckets of `bucket_s`
/// (`width` is a whole multiple of `bucket_s`).
fn rebin(counts: &[u64], bucket_s: f64, width: f64) -> Vec<f64> {
    let k = ((width / bucket_s).round() as usize).max(1);
    counts.chunks(k).map(|c| c.iter().sum::<u64>() as f64 / width).collect()
}

/// Markers per line: enough to tell the lines apart, few enough not to hide them.
const MARKS_PER_LINE: usize = 12;

pub fn draw(title: &str, series: &[Series<'_>]) -> Result<Figure, String> {
    let usable: Vec<&Series<'_>> = series
        .iter()
        .filter(|s| !s.counts.is_empty() && s.bucket_s > 0.0)
        .collect();
    if usable.is_empty() {
        return Err("no completions were recorded".into());
    }
    let end_s = usable
        .iter()
        .map(|s| s.counts.len() as f64 * s.bucket_s)
        .fold(0.0, f64::max);
    // One bucket width for every line: the widest any strategy has (the recorder doubles widths
    // as a run grows, so the others divide it), doubled until there are at most MAX_POINTS.
    let mut width = usable.iter().map(|s| s.bucket_s).fold(0.0, f64::max);
    while end_s / width > MAX_POINTS {
        width *= 2.0;
    }
    let lines: Vec<Vec<f64>> = usable.iter().map(|s| rebin(s.counts, s.bucket_s, width)).collect();
    let unit = time_unit(end_s * 1e3);
    let x_max = end_s * 1e3 * unit.per_ms;
    let y_max = lines.iter().flatten().fold(0.0f64, |a, b| a.max(*b)).max(1.0) * 1.15;

    let key: Vec<KeyItem> = usable
        .iter()
        .map(|s| KeyItem::new(s.label.clone(), GlyphKind::Line(s.style)))
        .collect();
    let svg = render(HALF, title, |root, dashes| {
        let plot = with_key(root, &key)?;
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", TITLE_FONT))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(chart_err)?;
        let fmt = |v: &f64| super::tick(*v);
        mesh_style(
            &mut chart,
            &format!("time since the run began ({})", unit.name),
            "completed requests per second",
        )
        .x_label_formatter(&fmt)
        .y_label_formatter(&fmt)
        .x_labels(8)
        .y_labels(6)
        .draw()
        .map_err(chart_err)?;
        for (s, rates) in usable.iter().zip(&lines) {
            let pts: Vec<(f64, f64)> = rates
                .iter()
                .enumerate()
                .map(|(i, r)| ((i as f64 + 0.5) * width * 1e3 * unit.per_ms, *r))
                .collect();
            let step = pts.len().div_ceil(MARKS_PER_LINE).max(1);
            let marks: Vec<(f64, f64)> = pts.iter().copied().step_by(step).collect();
            draw_line(&mut chart, dashes, pts, s.style)?;
            chart
                .draw_series(marks.into_iter().map(|p| marker(s.style.marker, p, 3, s.style.color)))
                .map_err(chart_err)?;
        }
        Ok(())
    })?;
    let width = crate::report::format::duration(width * 1e3);
    Ok(Figure {
        svg,
        caption: format!("Requests completed per second, in buckets of {width} from the start of the run. Under an open load a strategy that keeps up tracks the offered rate; one that does not falls behind and finishes late."),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn rebinning_keeps_the_rate() {
        // 10 completions per 50 ms bucket is 200 per second, at any width.
        let counts = vec![10u64; 16];
        assert_eq!(super::rebin(&counts, 0.05, 0.05), vec![200.0; 16]);
        assert_eq!(super::rebin(&counts, 0.05, 0.2), vec![200.0; 4]);
    }
}
