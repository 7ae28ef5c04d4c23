//! SVG charts for the HTML report, drawn with plotters: one file per kind of chart, each a
//! function of summary data returning an SVG string to inline (no files, no fonts, no scripts).
//!
//! This module owns what every chart shares: the strategy [`Palette`] (colour, dash and marker
//! per strategy, fixed for a whole run so a strategy looks the same in every chart), the SVG
//! canvas ([`render`]), markers and legend glyphs, and log-axis ticks.
//!
//! Readability rules the charts follow: a title, axis labels with units, a legend naming the
//! series, and series that stay apart in greyscale: the palette's colours are spaced in lightness
//! and each strategy also has its own dash pattern and marker shape (`tests` checks the spacing).
//! Plotters is built without fonts (`default-features = false`): text is emitted as SVG `<text>`
//! elements and the browser lays it out.

pub mod phases;
pub mod prediction;
pub mod spectrum;
pub mod sweep;
pub mod throughput;
pub mod timeline;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{BackendCoord, DrawingErrorKind};

/// A chart ready to inline: the SVG and a sentence saying how to read it.
#[derive(Clone, Debug)]
pub struct Figure {
    pub svg: String,
    pub caption: String,
}

/// Full-width charts (spectrum, timeline).
pub const WIDE: (u32, u32) = (1040, 420);
/// Charts laid out two to a row (phases, throughput, predictions).
pub const HALF: (u32, u32) = (620, 380);

/// Font sizes as plotters takes them: its SVG backend writes `size / 1.24` pixels (so 23 is
/// about 18.5 px).
pub const TITLE_FONT: u32 = 23;
pub const LABEL_FONT: u32 = 19;
pub const TICK_FONT: u32 = 17;

/// Grid and axis colours.
pub const GRID: RGBColor = RGBColor(225, 228, 232);
pub const AXIS: RGBColor = RGBColor(90, 96, 105);
pub const INK: RGBColor = RGBColor(33, 37, 41);

/// A marker shape: the third way (after lightness and dash) a series is told apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
    Ring,
}

/// How one strategy (or one run, in a comparison) is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesStyle {
    pub color: RGBColor,
    /// Dash and gap in pixels; `None` draws a solid line.
    pub dash: Option<(u32, u32)>,
    pub marker: Marker,
}

/// Colours ordered by lightness (greyscale luma about 18%, 33%, 47%, 61%, 77%): navy, purple,
/// vermilion, mint, amber; then black (0%) for a sixth series, which in a full run is `as_shipped`,
/// the replica of the shipped code. Adjacent strategies differ in hue and in lightness.
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 47, 92),
    RGBColor(140, 45, 140),
    RGBColor(229, 84, 26),
    RGBColor(79, 195, 161),
    RGBColor(246, 196, 69),
    RGBColor(0, 0, 0),
];
const DASHES: [Option<(u32, u32)>; 5] = [None, Some((10, 5)), Some((3, 4)), Some((16, 4)), Some((6, 3))];
const MARKERS: [Marker; 5] = [
    Marker::Circle,
    Marker::Triangle,
    Marker::Square,
    Marker::Cross,
    Marker::Ring,
];

/// The style of the `index`-th series. Past six, colours repeat; dashes and markers cycle on their
/// own (shifted at every round of colours), so no two of the first 30 series look the same.
pub fn series_style(index: usize) -> SeriesStyle {
    let shifted = (index + index / COLORS.len()) % DASHES.len();
    SeriesStyle {
        color: COLORS[index % COLORS.len()],
        dash: DASHES[shifted],
        marker: MARKERS[shifted],
    }
}

/// Strategy name -> style, fixed for a whole report: strategies in order of first appearance.
#[derive(Clone, Debug, Default)]
pub struct Palette {
    names: Vec<String>,
}

impl Palette {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Palette {
        let mut p = Palette::default();
        for n in names {
            if !p.names.iter().any(|x| x == n) {
                p.names.push(n.to_string());
            }
        }
        p
    }

    /// Every strategy of a run, in order of first appearance.
    pub fn for_summary(summary: &crate::report::summary::Summary) -> Palette {
        Palette::new(
            summary
                .scenarios
                .iter()
                .flat_map(|s| s.results.iter().map(|r| r.strategy.as_str())),
        )
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn style(&self, name: &str) -> SeriesStyle {
        series_style(self.names.iter().position(|n| n == name).unwrap_or(self.names.len()))
    }
}

/// Greyscale lightness (Rec. 601 luma, 0..1) of a colour: what a greyscale print shows.
pub fn luma(c: RGBColor) -> f64 {
    (0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2)) / 255.0
}

/// A plotters error as text (the string backend cannot fail on I/O; layout can).
pub fn chart_err<E: std::fmt::Display>(e: E) -> String {
    format!("chart could not be drawn: {e}")
}

/// Dashed lines, drawn as one polyline each: plotters can only dash a line by drawing every dash
/// as its own element (hundreds per line), so [`draw_line`] draws a dashed series solid in a
/// reserved stand-in colour, and [`render`] swaps that colour for the real one plus an SVG
/// `stroke-dasharray`. Stand-ins are `rgb(1, 1, n)`, which no chart otherwise uses.
#[derive(Default)]
pub struct Dashes {
    /// (stand-in colour, real colour, dash, gap), as they appear in the SVG.
    used: Vec<(String, String, u32, u32)>,
}

fn svg_hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

impl Dashes {
    /// The colour to draw a dashed line of `color` in.
    fn stand_in(&mut self, color: RGBColor, (dash, gap): (u32, u32)) -> Result<RGBColor, String> {
        let real = svg_hex(color);
        if let Some(i) = self.used.iter().position(|u| u.1 == real && u.2 == dash && u.3 == gap) {
            return Ok(RGBColor(1, 1, (i + 1) as u8));
        }
        let n = self.used.len() + 1;
        if n > 250 {
            return Err("more than 250 dashed series in one chart".into());
        }
        let code = RGBColor(1, 1, n as u8);
        self.used.push((svg_hex(code), real, dash, gap));
        Ok(code)
    }

    fn apply(&self, svg: &str) -> String {
        let mut out = svg.to_string();
        for (code, real, dash, gap) in &self.used {
            out = out.replace(
                &format!("stroke=\"{code}\""),
                &format!("stroke=\"{real}\" stroke-dasharray=\"{dash} {gap}\""),
            );
        }
        out
    }
}

/// Draws on a white canvas of `size` and returns the SVG, made accessible (`role="img"`, a
/// `<title>`) and scalable (the page's CSS sets `max-width: 100%`).
pub fn render(
    size: (u32, u32),
    title: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>, &mut Dashes) -> Result<(), String>,
) -> Result<String, String> {
    let mut svg = String::new();
    let mut dashes = Dashes::default();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        draw(&root, &mut dashes)?;
        root.present().map_err(chart_err)?;
    }
    // Drop attributes that only restate SVG's defaults (a chart has thousands of marks).
    let svg = dashes
        .apply(&svg)
        .replace(" opacity=\"1\"", "")
        .replace(" stroke=\"none\" stroke-width=\"1\"", " stroke=\"none\"");
    let open = svg.find('>').ok_or("plotters wrote no <svg> element")?;
    let mut out = String::with_capacity(svg.len() + 64 + title.len());
    out.push_str(&svg[..open]);
    out.push_str(" role=\"img\" class=\"chart\"><title>");
    out.push_str(&crate::report::html::escape::text(title));
    out.push_str("</title>");
    out.push_str(&svg[open + 1..]);
    Ok(out)
}

/// The style of lines and markers of a series.
pub fn line_style(s: SeriesStyle) -> ShapeStyle {
    ShapeStyle {
        color: s.color.to_rgba(),
        filled: false,
        stroke_width: 2,
    }
}

/// Draws one polyline through `points` in the series' colour and dash pattern.
pub fn draw_line<'c, DB, X, Y>(
    chart: &mut ChartContext<'c, DB, Cartesian2d<X, Y>>,
    dashes: &mut Dashes,
    points: Vec<(X::ValueType, Y::ValueType)>,
    s: SeriesStyle,
) -> Result<(), String>
where
    DB: DrawingBackend + 'c,
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
    X::ValueType: Clone + 'static,
    Y::ValueType: Clone + 'static,
{
    let color = match s.dash {
        None => s.color,
        Some(d) => dashes.stand_in(s.color, d)?,
    };
    chart
        .draw_series(LineSeries::new(points, line_style(SeriesStyle { color, ..s })))
        .map_err(chart_err)?;
    Ok(())
}

/// One marker of a series at a data point: an element of its own (plotters' boxed dynamic
/// elements cannot borrow the SVG string's lifetime), drawn straight on the backend.
pub struct MarkerElement<C> {
    pub at: C,
    pub shape: Marker,
    /// Pixels from centre to edge.
    pub size: i32,
    pub color: RGBColor,
}

pub fn marker<C>(shape: Marker, at: C, size: i32, color: RGBColor) -> MarkerElement<C> {
    MarkerElement { at, shape, size, color }
}

impl<'a, C> PointCollection<'a, C> for &'a MarkerElement<C> {
    type Point = &'a C;
    type IntoIter = std::iter::Once<&'a C>;
    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<C, DB: DrawingBackend> Drawable<DB> for MarkerElement<C> {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut points: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        match points.next() {
            Some(p) => draw_marker(backend, p, self.shape, self.size, self.color),
            None => Ok(()),
        }
    }
}

fn draw_marker<DB: DrawingBackend>(
    backend: &mut DB,
    (x, y): BackendCoord,
    shape: Marker,
    r: i32,
    color: RGBColor,
) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
    let filled = color.filled();
    let stroke = ShapeStyle {
        color: color.to_rgba(),
        filled: false,
        stroke_width: 2,
    };
    match shape {
        Marker::Circle => backend.draw_circle((x, y), r as u32, &filled, true),
        Marker::Ring => backend.draw_circle((x, y), r as u32, &stroke, false),
        Marker::Square => backend.draw_rect((x - r, y - r), (x + r, y + r), &filled, true),
        Marker::Triangle => {
            let h = r + 1;
            backend.fill_polygon(
                vec![(x, y - h), (x - h, y + h * 3 / 4), (x + h, y + h * 3 / 4)],
                &filled,
            )
        }
        Marker::Cross => {
            backend.draw_line((x - r, y - r), (x + r, y + r), &stroke)?;
            backend.draw_line((x - r, y + r), (x + r, y - r), &stroke)
        }
    }
}

/// A legend entry: a short stretch of the series' line, in its dash pattern, with its marker
/// (or a filled box, for bar charts).
pub struct LegendGlyph {
    pub at: BackendCoord,
    pub kind: GlyphKind,
}

#[derive(Clone, Copy, Debug)]
pub enum GlyphKind {
    Line(SeriesStyle),
    /// A series drawn with markers only.
    Marks(SeriesStyle),
    Box(RGBColor),
}

pub fn legend_glyph(kind: GlyphKind, x: i32, y: i32) -> LegendGlyph {
    LegendGlyph { at: (x, y), kind }
}

impl<'a> PointCollection<'a, BackendCoord> for &'a LegendGlyph {
    type Point = &'a BackendCoord;
    type IntoIter = std::iter::Once<&'a BackendCoord>;
    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<DB: DrawingBackend> Drawable<DB> for LegendGlyph {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut points: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let Some((x, y)) = points.next() else {
            return Ok(());
        };
        match self.kind {
            GlyphKind::Line(s) => {
                let style = line_style(s);
                match s.dash {
                    None => backend.draw_line((x, y), (x + 24, y), &style)?,
                    Some((dash, gap)) => {
                        // The dash pattern scaled to fit three dashes in 24 pixels.
                        let scale = 24.0 / (3.0 * f64::from(dash) + 2.0 * f64::from(gap));
                        let (d, g) = (
                            (f64::from(dash) * scale).round().max(2.0) as i32,
                            (f64::from(gap) * scale).round().max(2.0) as i32,
                        );
                        let mut x0 = x;
                        while x0 < x + 24 {
                            backend.draw_line((x0, y), ((x0 + d).min(x + 24), y), &style)?;
                            x0 += d + g;
                        }
                    }
                }
                draw_marker(backend, (x + 12, y), s.marker, 4, s.color)
            }
            GlyphKind::Marks(s) => draw_marker(backend, (x + 12, y), s.marker, 4, s.color),
            GlyphKind::Box(c) => {
                backend.draw_rect((x, y - 6), (x + 18, y + 6), &c.filled(), true)?;
                backend.draw_rect(
                    (x, y - 6),
                    (x + 18, y + 6),
                    &ShapeStyle {
                        color: INK.to_rgba(),
                        filled: false,
                        stroke_width: 1,
                    },
                    false,
                )
            }
        }
    }
}

/// One entry of a chart's key.
#[derive(Clone, Debug)]
pub struct KeyItem {
    pub label: String,
    pub glyph: GlyphKind,
}

impl KeyItem {
    pub fn new(label: impl Into<String>, glyph: GlyphKind) -> KeyItem {
        KeyItem {
            label: label.into(),
            glyph,
        }
    }
}

const KEY_ROW: u32 = 26;

/// Width of one key entry: glyph, label (plotters' naive font metric: about 0.55 em per
/// character, at the size it really writes) and a gap.
fn key_item_width(label: &str) -> i32 {
    let em = f64::from(LABEL_FONT) / 1.24;
    34 + (label.chars().count() as f64 * em * 0.56) as i32 + 24
}

/// Splits `root` into the plot and a key strip along the bottom, draws the key (entries centred,
/// wrapping onto more rows when needed) and returns the plot area. Keys sit outside the plot so
/// they never hide data.
pub fn with_key<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    items: &[KeyItem],
) -> Result<DrawingArea<DB, Shift>, String> {
    let (width, height) = root.dim_in_pixel();
    let usable = width as i32 - 24;
    let mut rows: Vec<Vec<&KeyItem>> = vec![Vec::new()];
    let mut row_width = 0;
    for item in items {
        let w = key_item_width(&item.label);
        if row_width + w > usable && !rows.last().is_some_and(|r| r.is_empty()) {
            rows.push(Vec::new());
            row_width = 0;
        }
        rows.last_mut().expect("one row").push(item);
        row_width += w;
    }
    let key_height = rows.len() as u32 * KEY_ROW + 10;
    let (plot, key) = root.split_vertically(height.saturating_sub(key_height));
    let font = ("sans-serif", LABEL_FONT).into_font().color(&INK);
    for (r, row) in rows.iter().enumerate() {
        let total: i32 = row.iter().map(|i| key_item_width(&i.label)).sum();
        let mut x = ((width as i32 - total) / 2).max(8);
        let y = r as i32 * KEY_ROW as i32 + 14;
        for item in row {
            key.draw(&legend_glyph(item.glyph, x, y)).map_err(chart_err)?;
            key.draw(&Text::new(
                item.label.clone(),
                (x + 32, y),
                font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(chart_err)?;
            x += key_item_width(&item.label);
        }
    }
    Ok(plot)
}

/// The width plotters' SVG text of `chars` characters at `font` takes, roughly (no font metrics
/// without a font library: about 0.56 em per character, at the size it really writes).
pub fn text_px(chars: usize, font: u32) -> f64 {
    chars as f64 * f64::from(font) / 1.24 * 0.56
}

/// The end of a bar chart's value axis such that bars up to `data_max` leave `label_px` pixels
/// free on their right for a label, in a plot `plot_px` wide.
pub fn room_for_labels(data_max: f64, plot_px: f64, label_px: f64) -> f64 {
    let free = (plot_px - label_px - 12.0).max(plot_px * 0.3);
    data_max * plot_px / free
}

/// The nearest value of the 1-2-5 sequence (…, 0.5, 1, 2, 5, 10, …) above (`up`) or below `v`.
pub fn nice_bound(v: f64, up: bool) -> f64 {
    let e = v.log10().floor() as i32;
    let candidates = [1.0, 2.0, 5.0, 10.0].map(|m| m * 10f64.powi(e));
    if up {
        candidates
            .into_iter()
            .find(|c| *c >= v * (1.0 - 1e-12))
            .unwrap_or(10f64.powi(e + 1))
    } else {
        candidates
            .into_iter()
            .rev()
            .find(|c| *c <= v * (1.0 + 1e-12))
            .unwrap_or(10f64.powi(e))
    }
}

/// Ticks for a log axis over `lo..hi`: 1-2-5 per decade when that gives a dozen ticks or fewer,
/// else 1-3 per decade, else powers of ten only (thinned to about ten).
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let candidates = |mults: &[f64]| -> Vec<f64> {
        let first = lo.log10().floor() as i32;
        let last = hi.log10().ceil() as i32;
        (first..=last)
            .flat_map(|e| mults.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|v| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9))
            .collect()
    };
    for mults in [&[1.0, 2.0, 5.0][..], &[1.0, 3.0][..], &[1.0][..]] {
        let t = candidates(mults);
        if t.len() <= 12 && t.len() >= 2 {
            return t;
        }
        if t.len() < 2 && mults.len() == 3 {
            // Less than a decade wide: 1-2-5 gives too few; add the other whole multiples.
            let fine = candidates(&[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
            if fine.len() >= 2 {
                return fine;
            }
            return vec![lo, hi];
        }
    }
    let t = candidates(&[1.0]);
    let step = t.len().div_ceil(10);
    t.into_iter().step_by(step).collect()
}

/// A time unit for a linear axis: values are multiplied by `per_ms` and the axis says `name`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeUnit {
    pub name: &'static str,
    pub per_ms: f64,
}

/// The unit that keeps an axis up to `max_ms` readable: µs below 1 ms, s from 10 s.
pub fn time_unit(max_ms: f64) -> TimeUnit {
    if max_ms < 1.0 {
        TimeUnit {
            name: "µs",
            per_ms: 1e3,
        }
    } else if max_ms < 10_000.0 {
        TimeUnit {
            name: "ms",
            per_ms: 1.0,
        }
    } else {
        TimeUnit {
            name: "s",
            per_ms: 1e-3,
        }
    }
}

/// A tick label: whole numbers without decimals, others with up to three significant digits.
pub fn tick(v: f64) -> String {
    if v == v.round() && v.abs() < 1e9 {
        format!("{}", v as i64)
    } else {
        crate::report::format::significant(v, 3)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// An axis with the ticks we choose (plotters' `WithKeyPoints` loses the value formatter of
/// `f64` axes, which the mesh needs even when a label formatter is given).
pub struct Ticked<R: Ranged> {
    inner: R,
    ticks: Vec<R::ValueType>,
}

/// `range` (e.g. `0.0..1.0` or `(a..b).log_scale()`) with ticks exactly at `ticks`.
pub fn ticked<R: Into<C>, C: Ranged>(range: R, ticks: Vec<C::ValueType>) -> Ticked<C> {
    Ticked {
        inner: range.into(),
        ticks,
    }
}

impl<R: Ranged> Ranged for Ticked<R>
where
    R::ValueType: Clone,
{
    type ValueType = R::ValueType;
    type FormatOption = DefaultFormatting;

    fn range(&self) -> std::ops::Range<R::ValueType> {
        self.inner.range()
    }

    fn map(&self, value: &R::ValueType, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<R::ValueType> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn axis_pixel_range(&self, limit: (i32, i32)) -> std::ops::Range<i32> {
        self.inner.axis_pixel_range(limit)
    }
}

/// The common mesh: light grid, dark axis, labelled axes.
pub fn mesh_style<'a, 'b, DB: DrawingBackend, X, Y>(
    chart: &'b mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
) -> plotters::chart::MeshStyle<'a, 'b, X, Y, DB>
where
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
{
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc.to_string())
        .y_desc(y_desc.to_string())
        .axis_desc_style(("sans-serif", LABEL_FONT).into_font().color(&INK))
        .label_style(("sans-serif", TICK_FONT).into_font().color(&AXIS))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(AXIS);
    mesh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_stays_apart_in_greyscale() {
        let apart = |colors: &[RGBColor], min: f64| {
            for (i, a) in colors.iter().enumerate() {
                for (j, b) in colors.iter().enumerate().take(i) {
                    let d = (luma(*a) - luma(*b)).abs();
                    assert!(d >= min, "colours {j} and {i} are {d:.3} apart in greyscale");
                }
            }
        };
        apart(&COLORS, 0.12);
        let phases: Vec<RGBColor> = crate::metrics::Phase::ALL
            .iter()
            .map(|p| phases::phase_color(*p))
            .collect();
        apart(&phases, 0.1);
        // Every series of the first 30 differs from every other in colour, dash or marker.
        for i in 0..30 {
            for j in 0..i {
                assert_ne!(series_style(i), series_style(j), "series {i} and {j}");
            }
        }
    }

    #[test]
    fn a_dashed_line_is_one_polyline_with_a_dash_array() {
        let style = SeriesStyle {
            color: RGBColor(31, 47, 92),
            dash: Some((10, 5)),
            marker: Marker::Circle,
        };
        let svg = render((300, 200), "dashes", |root, dashes| {
            let mut chart = ChartBuilder::on(root)
                .build_cartesian_2d(0.0..10.0, 0.0..10.0)
                .map_err(chart_err)?;
            let zigzag: Vec<(f64, f64)> = (0..100)
                .map(|i| (f64::from(i) / 10.0, f64::from(i % 2) * 10.0))
                .collect();
            draw_line(&mut chart, dashes, zigzag, style)
        })
        .unwrap();
        assert_eq!(svg.matches("<polyline").count(), 1, "{svg}");
        assert!(svg.contains("stroke=\"#1F2F5C\" stroke-dasharray=\"10 5\""), "{svg}");
        assert!(!svg.contains("#010101"), "no stand-in colour left");
    }

    #[test]
    fn nice_bounds() {
        assert_eq!(nice_bound(27.0, false), 20.0);
        assert_eq!(nice_bound(3900.0, true), 5000.0);
        assert_eq!(nice_bound(30.0, true), 50.0);
        assert_eq!(nice_bound(0.03, false), 0.02);
    }

    #[test]
    fn log_ticks_are_readable() {
        assert_eq!(
            log_ticks(20.0, 4000.0),
            vec![20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]
        );
        let wide = log_ticks(0.001, 1e6);
        assert!(wide.len() <= 10 && wide.len() >= 4, "{wide:?}");
        let narrow = log_ticks(500.0, 900.0);
        assert!(narrow.len() >= 2, "{narrow:?}");
    }

    #[test]
    fn svg_is_accessible_and_has_text() {
        let svg = render((200, 100), "A <title>", |root, _| {
            root.draw(&Text::new("µs & ms", (10, 10), ("sans-serif", 12)))
                .map_err(chart_err)
        })
        .unwrap();
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("<title>A &lt;title&gt;</title>"), "{svg}");
        // Text stays text (no font library): an SVG <text> element, escaped.
        assert!(svg.contains("<text ") && svg.contains("µs &amp; ms"), "{svg}");
    }
}
