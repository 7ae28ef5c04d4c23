//! Where the time went: per strategy, the phases of a request (lock/queue wait, holding the lock,
//! refresh wait, upstream call, bookkeeping) as stacked horizontal bars at p50 and at p99.
//!
//! Each segment is that phase's own percentile, from its own histogram. Percentiles do not add
//! up (the p99 of the lock wait and the p99 of the upstream call are usually different requests),
//! so each bar also carries a tick at the total latency's percentile, and the caption says so.

use super::{
    chart_err, mesh_style, render, time_unit, with_key, Figure, GlyphKind, KeyItem, HALF, INK, TICK_FONT, TITLE_FONT,
};
use crate::metrics::histogram::LatencyStats;
use crate::metrics::Phase;
use crate::report::format;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;

/// One strategy's phases.
pub struct Row<'a> {
    pub label: String,
    pub phases_ms: &'a BTreeMap<String, LatencyStats>,
    pub total_ms: &'a LatencyStats,
}

/// Phase colours, spaced in greyscale lightness (about 19%, 38%, 50%, 65%, 78%), waits warm and
/// work cool.
pub fn phase_color(p: Phase) -> RGBColor {
    match p {
        Phase::Hold => RGBColor(31, 47, 92),
        Phase::LockWait => RGBColor(192, 57, 43),
        Phase::Upstream => RGBColor(93, 138, 168),
        Phase::RefreshWait => RGBColor(243, 156, 18),
        Phase::Bookkeeping => RGBColor(200, 200, 200),
    }
}

#[derive(Clone, Copy)]
enum Stat {
    P50,
    P99,
}

impl Stat {
    fn of(self, s: &LatencyStats) -> f64 {
        match self {
            Stat::P50 => s.p50,
            Stat::P99 => s.p99,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::P99 => "p99",
        }
    }
}

pub fn draw(title: &str, rows: &[Row<'_>]) -> Result<Figure, String> {
    if rows.is_empty() {
        return Err("no strategies".into());
    }
    let phase = |r: &Row<'_>, p: Phase, st: Stat| r.phases_ms.get(p.as_str()).map(|s| st.of(s)).unwrap_or(0.0);
    let used: Vec<Phase> = Phase::ALL
        .into_iter()
        .filter(|p| {
            rows.iter()
                .any(|r| phase(r, *p, Stat::P99) > 0.0 || phase(r, *p, Stat::P50) > 0.0)
        })
        .collect();
    // Bars top to bottom: each strategy at p50 then p99.
    let bars: Vec<(usize, Stat)> = (0..rows.len()).flat_map(|i| [(i, Stat::P50), (i, Stat::P99)]).collect();
    let n = bars.len();
    let longest = bars
        .iter()
        .map(|(i, st)| {
            let r = &rows[*i];
            let stacked: f64 = used.iter().map(|p| phase(r, *p, *st)).sum();
            stacked.max(st.of(r.total_ms))
        })
        .fold(0.0, f64::max)
        .max(1e-6);
    let unit = time_unit(longest);
    let label_chars = rows.iter().map(|r| r.label.chars().count()).max().unwrap_or(8) + 6;
    let y_label_px = super::text_px(label_chars, TICK_FONT) as u32 + 16;
    // Room to the right of the longest bar for its total label ("total p99 21.1 s").
    let x_max = super::room_for_labels(
        longest * unit.per_ms,
        f64::from(HALF.0 - y_label_px - 30),
        super::text_px(17, TICK_FONT),
    );
    let height = HALF.1.max(120 + 34 * n as u32);

    let key: Vec<KeyItem> = used
        .iter()
        .map(|p| KeyItem::new(p.label(), GlyphKind::Box(phase_color(*p))))
        .collect();
    let svg = render((HALF.0, height), title, |root, _| {
        let plot = with_key(root, &key)?;
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", TITLE_FONT))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(y_label_px)
            .build_cartesian_2d(
                0.0..x_max,
                super::ticked::<_, plotters::coord::types::RangedCoordf64>(
                    -0.6..n as f64 - 0.4,
                    (0..n).map(|k| k as f64).collect(),
                ),
            )
            .map_err(chart_err)?;
        let y_fmt = |y: &f64| {
            let k = n - 1 - (y.round().max(0.0) as usize).min(n - 1);
            let (i, st) = bars[k];
            format!("{} · {}", rows[i].label, st.name())
        };
        let x_fmt = |v: &f64| super::tick(*v);
        mesh_style(&mut chart, &format!("time per request ({})", unit.name), "")
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_labels(8)
            .disable_y_mesh()
            .draw()
            .map_err(chart_err)?;
        for (k, (i, st)) in bars.iter().enumerate() {
            let r = &rows[*i];
            let yc = (n - 1 - k) as f64;
            let (y0, y1) = (yc - 0.34, yc + 0.34);
            let mut x = 0.0;
            for p in &used {
                let w = phase(r, *p, *st) * unit.per_ms;
                if w > 0.0 {
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(x, y0), (x + w, y1)],
                            phase_color(*p).filled(),
                        )))
                        .map_err(chart_err)?;
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(x, y0), (x + w, y1)],
                            ShapeStyle {
                                color: WHITE.to_rgba(),
                                filled: false,
                                stroke_width: 1,
                            },
                        )))
                        .map_err(chart_err)?;
                }
                x += w;
            }
            let total = st.of(r.total_ms);
            let tx = total * unit.per_ms;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(tx, y0 - 0.08), (tx, y1 + 0.08)],
                    ShapeStyle {
                        color: INK.to_rgba(),
                        filled: false,
                        stroke_width: 2,
                    },
                )))
                .map_err(chart_err)?;
            let label = format!("total {} {}", st.name(), format::duration(total));
            chart
                .draw_series(std::iter::once(Text::new(
                    label,
                    (x.max(tx) + x_max * 0.01, yc),
                    ("sans-serif", TICK_FONT)
                        .into_font()
                        .color(&INK)
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )))
                .map_err(chart_err)?;
        }
        Ok(())
    })?;
    Ok(Figure {
        svg,
        caption: "Where a request's time went. Each segment is that phase's own p50 or p99 (from its own histogram); \
                  the dark tick marks the total latency at the same percentile. Percentiles of phases need not add up \
                  to the total's: at p99 the slowest lock waits and the slowest upstream calls are usually different requests."
            .into(),
    })
}
