//! Prediction against measurement: for each prediction of each strategy (e.g. the exact FIFO
//! acquisition times of a burst, Little's law for an open load), the predicted and the measured
//! value as a pair of bars, labelled with the relative error.
//!
//! Predictions with different units (ms, requests) are never drawn on one axis: [`draw`] takes the
//! predictions of one unit, and the page draws one chart per unit.

use super::{
    chart_err, mesh_style, render, time_unit, with_key, Figure, GlyphKind, KeyItem, INK, TICK_FONT, TITLE_FONT, WIDE,
};
use crate::analysis::Prediction;
use crate::report::format;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Predicted bars are light, measured ones dark: apart in colour and in greyscale.
pub const PREDICTED: RGBColor = RGBColor(200, 200, 200);
pub const MEASURED: RGBColor = RGBColor(31, 47, 92);

/// One prediction of one strategy.
pub struct Row<'a> {
    pub strategy: String,
    pub prediction: &'a Prediction,
}

pub fn draw(title: &str, unit: &str, rows: &[Row<'_>]) -> Result<Figure, String> {
    if rows.is_empty() {
        return Err("no predictions".into());
    }
    let n = rows.len();
    let largest = rows
        .iter()
        .map(|r| r.prediction.predicted.max(r.prediction.measured))
        .fold(0.0, f64::max)
        .max(1e-9);
    let (scale, axis_unit, value_text): (f64, String, Box<dyn Fn(f64) -> String>) = if unit == "ms" {
        let u = time_unit(largest);
        (u.per_ms, u.name.to_string(), Box::new(format::duration))
    } else {
        (1.0, unit.to_string(), Box::new(|v| format::significant(v, 4)))
    };
    let label_chars = rows
        .iter()
        .map(|r| r.strategy.chars().count() + r.prediction.name.chars().count() + 3)
        .max()
        .unwrap_or(10);
    let y_label_px = super::text_px(label_chars, TICK_FONT) as u32 + 16;
    let x_max = super::room_for_labels(
        largest * scale,
        f64::from(WIDE.0 - y_label_px - 30),
        super::text_px(22, TICK_FONT),
    );
    let height = 160 + 48 * n as u32;

    let key = [
        KeyItem::new("predicted", GlyphKind::Box(PREDICTED)),
        KeyItem::new("measured", GlyphKind::Box(MEASURED)),
    ];
    let svg = render((WIDE.0, height), title, |root, _| {
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
            let r = &rows[n - 1 - (y.round().max(0.0) as usize).min(n - 1)];
            format!("{} · {}", r.strategy, r.prediction.name)
        };
        let x_fmt = |v: &f64| super::tick(*v);
        mesh_style(&mut chart, &format!("value ({axis_unit})"), "")
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_labels(6)
            .disable_y_mesh()
            .draw()
            .map_err(chart_err)?;
        for (k, r) in rows.iter().enumerate() {
            let yc = (n - 1 - k) as f64;
            let p = r.prediction;
            let bars = [
                (p.predicted, PREDICTED, yc + 0.02, yc + 0.34),
                (p.measured, MEASURED, yc - 0.34, yc - 0.02),
            ];
            for (v, color, y0, y1) in bars {
                let w = v * scale;
                chart
                    .draw_series(std::iter::once(Rectangle::new([(0.0, y0), (w, y1)], color.filled())))
                    .map_err(chart_err)?;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(0.0, y0), (w, y1)],
                        ShapeStyle {
                            color: INK.to_rgba(),
                            filled: false,
                            stroke_width: 1,
                        },
                    )))
                    .map_err(chart_err)?;
            }
            let error = p.relative_error();
            let error = if error.is_finite() {
                format!(" ({:+.2}%)", error * 100.0)
            } else {
                String::new()
            };
            let font = ("sans-serif", TICK_FONT)
                .into_font()
                .color(&INK)
                .pos(Pos::new(HPos::Left, VPos::Center));
            for (v, text, y) in [
                (p.predicted, value_text(p.predicted), yc + 0.18),
                (p.measured, format!("{}{error}", value_text(p.measured)), yc - 0.18),
            ] {
                chart
                    .draw_series(std::iter::once(Text::new(
                        text,
                        (v * scale + x_max * 0.008, y),
                        font.clone(),
                    )))
                    .map_err(chart_err)?;
            }
        }
        Ok(())
    })?;
    Ok(Figure {
        svg,
        caption: "Each pair of bars is one prediction: the value a formula gives from the run's own inputs (light) \
                  and the value measured (dark), with the measurement's relative error. The formulas are listed in the table below."
            .into(),
    })
}
