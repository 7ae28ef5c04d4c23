//! Prediction against measurement: for each prediction of each strategy (e.g. the exact FIFO
//! acquisition times of a burst, Little's law for an open load), the predicted and the measured
//! value as a pair of bars, labelled with the relative error.
//!
//! Predictions with different units (ms, requests) are never drawn on one axis: [`draw`] takes the
//! predictions of one unit, and the page draws one chart per unit.

use super::{
    chart_err, draw_key_strip, mesh_style, render, time_unit, Figure, HALF, INK, TICK_FONT,
    TITLE_FONT,
};
use crate::analysis::Prediction;
use crate::report::format;
use plotters::prelude::*;

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
    let (scale, axis_unit, value_text): (f64, String, Box<dyn Fn(f64) -> String>) = if unit == "ms"
    {
        let u = time_unit(largest);
        (u.per_ms, u.name.to_string(), Box::new(format::duration))
    } else {
        (
            1.0,
            unit.to_string(),
            Box::new(move |v| format!("{} {unit}", format::significant(v, 4))),
        )
    };
    let x_max = largest * scale * 1.6;
    let label_chars = rows
        .iter()
        .map(|r| r.strategy.chars().count() + r.prediction.name.chars().count() + 3)
        .max()
        .unwrap_or(10);
    let height = HALF.1.max(120 + 44 * n as u32);

    let svg = render((HALF.0, height), title, |root| {
        let (plot, key) = root.split_vertically(height - 44);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", TITLE_FONT))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size((label_chars as f64 * f64::from(TICK_FONT) * 0.6) as u32 + 12)
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
        mesh_style(&mut chart, &axis_unit, "")
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
                    .draw_series(std::iter::once(Rectangle::new(
                        [(0.0, y0), (w, y1)],
                        color.filled(),
                    )))
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
                format!("{:+.2}%", error * 100.0)
            } else {
                "—".into()
            };
            let label = format!(
                "{} vs {} ({error})",
                value_text(p.predicted),
                value_text(p.measured)
            );
            let x = p.predicted.max(p.measured) * scale + x_max * 0.01;
            chart
                .draw_series(std::iter::once(Text::new(
                    label,
                    (x, yc + 0.2),
                    ("sans-serif", TICK_FONT).into_font().color(&INK),
                )))
                .map_err(chart_err)?;
        }
        draw_key_strip(
            &key,
            &[
                ("predicted".to_string(), PREDICTED),
                ("measured".to_string(), MEASURED),
            ],
        )
    })?;
    Ok(Figure {
        svg,
        caption: "Each pair of bars is one prediction: the value a formula gives from the run's own inputs (light) \
                  and the value measured (dark), with the measurement's relative error. The formulas are listed in the table below."
            .into(),
    })
}
