//! Line charts as SVG and PNG with `plotters`. The SVG carries its text as `<text>` elements;
//! the PNG is drawn into a memory buffer whose text uses the built-in pixel font
//! ([`super::font`]) and is encoded with the `png` crate, so neither needs a system font.
//!
//! Log axes are drawn as linear axes over log2(x) (ticks at powers of two: message sizes,
//! entry counts) and log10(y), labelled with the untransformed values.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::harness::scenario::units::ByteSize;
use pixel_text::PixelText;

/// Chart size in pixels.
pub const SIZE: (u32, u32) = (900, 560);

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Line with point markers.
    Line,
    /// Markers only (reference figures).
    Markers,
}

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x, y)` points, drawn in this order.
    pub points: Vec<(f64, f64)>,
    /// Line or markers.
    pub style: Style,
}

/// A chart.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Logarithmic x (base 2).
    pub x_log: bool,
    /// Logarithmic y (base 10).
    pub y_log: bool,
    /// X values are byte counts (labels like `64KiB`).
    pub x_bytes: bool,
    /// X values are indices of these categories (labels are the names).
    pub x_categories: Option<Vec<String>>,
    /// The lines.
    pub series: Vec<Series>,
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// `[a, b]` widened: a little below `a` (when `lo`), more above `b`.
fn pad(a: f64, b: f64, lo: bool) -> (f64, f64) {
    let span = if b > a { b - a } else { a.abs().max(1.0) };
    let a2 = if lo { a - span * 0.04 } else { a };
    (a2, b + span * 0.08)
}

fn pad_y(y0: f64, y1: f64, log: bool) -> (f64, f64) {
    pad(y0, y1, log || y0 < 0.0)
}

/// A short, exact-looking number: integers bare, others with up to three decimals (or in
/// exponent form when very large or small).
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        return format!("{v:.2e}");
    }
    if (v - v.round()).abs() < 1e-9 {
        return format!("{}", v.round() as i64);
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn fmt_bytes(v: f64) -> String {
    if v >= 1.0 && (v - v.round()).abs() < 1e-6 {
        ByteSize(v.round() as u64).to_string()
    } else {
        fmt_num(v)
    }
}

impl Chart {
    fn tx(&self, x: f64) -> f64 {
        if self.x_log {
            x.max(f64::MIN_POSITIVE).log2()
        } else {
            x
        }
    }

    fn ty(&self, y: f64) -> f64 {
        if self.y_log {
            y.max(1e-12).log10()
        } else {
            y
        }
    }

    fn x_text(&self, v: f64) -> String {
        if let Some(c) = &self.x_categories {
            let i = v.round();
            return match c.get(i.max(0.0) as usize) {
                Some(name) if (v - i).abs() < 1e-6 && i >= 0.0 => name.clone(),
                _ => String::new(),
            };
        }
        let x = if self.x_log { v.exp2() } else { v };
        if self.x_bytes {
            fmt_bytes(x)
        } else {
            fmt_num(x)
        }
    }

    /// A y tick label; on a log axis spanning a decade or more, only whole powers of ten are
    /// labelled.
    fn y_text(&self, v: f64, span: f64) -> String {
        if !self.y_log {
            return fmt_num(v);
        }
        if span >= 1.0 && (v - v.round()).abs() > 1e-6 {
            return String::new();
        }
        let y = 10f64.powf(v);
        if span >= 1.0 {
            fmt_num(y)
        } else {
            format!("{y:.3}").trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }

    /// Transformed data bounds with a margin; y starts at 0 on linear axes with no negative
    /// value.
    fn bounds(&self) -> ((f64, f64), (f64, f64)) {
        let pts: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|&(x, y)| (self.tx(x), self.ty(y))))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for (x, y) in &pts {
            x0 = x0.min(*x);
            x1 = x1.max(*x);
            y0 = y0.min(*y);
            y1 = y1.max(*y);
        }
        if pts.is_empty() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if !self.y_log && y0 >= 0.0 {
            y0 = 0.0;
        }
        if let Some(c) = &self.x_categories {
            // One slot per category, labels at the integers.
            return ((-0.5, c.len().max(1) as f64 - 0.5), pad_y(y0, y1, self.y_log));
        }
        ((pad(x0, x1, true)), pad_y(y0, y1, self.y_log))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let ((x0, x1), (y0, y1)) = self.bounds();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(18)
            .x_label_area_size(48)
            .y_label_area_size(96)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(e)?;
        let fx = |v: &f64| self.x_text(*v);
        let fy = |v: &f64| self.y_text(*v, y1 - y0);
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .x_labels(10)
            .y_labels(8)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(e)?;
        for (i, s) in self.series.iter().enumerate() {
            let color = COLORS.get(i % COLORS.len()).copied().unwrap_or(BLACK);
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|&(x, y)| (self.tx(x), self.ty(y)))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            let marker_pts = pts.clone();
            match s.style {
                Style::Line => {
                    let (width, radius) = self.line_style(i);
                    chart
                        .draw_series(LineSeries::new(pts, color.stroke_width(width)))
                        .map_err(e)?;
                    chart
                        .draw_series(
                            marker_pts.into_iter().map(|p| Circle::new(p, radius, color.filled())),
                        )
                        .map_err(e)?;
                }
                Style::Markers => {
                    chart
                        .draw_series(
                            marker_pts.into_iter().map(|p| Cross::new(p, 7, color.stroke_width(2))),
                        )
                        .map_err(e)?;
                }
            }
        }
        // Where the data is, in pixels (points and samples along the lines), so the legend
        // goes to the emptiest corner.
        let mut occupied: Vec<(i32, i32)> = Vec::new();
        for s in &self.series {
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|&(x, y)| (self.tx(x), self.ty(y)))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            for w in pts.windows(2) {
                if let (Some(a), Some(b)) = (w.first(), w.get(1)) {
                    for k in 0..=16 {
                        let t = f64::from(k) / 16.0;
                        occupied.push(
                            chart.backend_coord(&(a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)),
                        );
                    }
                }
            }
            occupied.extend(pts.iter().map(|p| chart.backend_coord(p)));
        }
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        self.legend(root, xr, yr, &occupied).map_err(e)?;
        root.present().map_err(e)?;
        Ok(())
    }

    /// The legend, drawn by hand so that its box fits the text as the backend measures it.
    fn legend<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        xr: std::ops::Range<i32>,
        yr: std::ops::Range<i32>,
        occupied: &[(i32, i32)],
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        if self.series.is_empty() {
            return Ok(());
        }
        let font: TextStyle = ("sans-serif", 14).into_font().color(&BLACK);
        let mut tw = 0i32;
        let mut th = 0i32;
        for s in &self.series {
            let (w, h) = root.estimate_text_size(&s.name, &font)?;
            tw = tw.max(w as i32);
            th = th.max(h as i32);
        }
        let row = th.max(10) + 8;
        let (w, h) = (tw + 48, row * self.series.len() as i32 + 8);
        // Corners in order of preference; the first with the fewest data pixels under it.
        let corners = [
            (xr.end - w - 10, yr.start + 10),
            (xr.end - w - 10, yr.end - h - 10),
            (xr.start + 10, yr.start + 10),
            (xr.start + 10, yr.end - h - 10),
        ];
        let under = |&(cx, cy): &(i32, i32)| {
            occupied
                .iter()
                .filter(|(px, py)| {
                    (cx - 6..=cx + w + 6).contains(px) && (cy - 6..=cy + h + 6).contains(py)
                })
                .count()
        };
        let (x, y) = corners
            .iter()
            .copied()
            .min_by_key(|c| under(c))
            .unwrap_or((xr.end - w - 10, yr.start + 10));
        root.draw(&Rectangle::new([(x, y), (x + w, y + h)], WHITE.mix(0.9).filled()))?;
        root.draw(&Rectangle::new([(x, y), (x + w, y + h)], BLACK))?;
        for (i, s) in self.series.iter().enumerate() {
            let color = COLORS.get(i % COLORS.len()).copied().unwrap_or(BLACK);
            let cy = y + 4 + row * i as i32 + row / 2;
            match s.style {
                Style::Line => {
                    let (width, radius) = self.line_style(i);
                    root.draw(&PathElement::new(
                        vec![(x + 8, cy), (x + 32, cy)],
                        color.stroke_width(width),
                    ))?;
                    root.draw(&Circle::new((x + 20, cy), radius, color.filled()))?;
                }
                Style::Markers => root.draw(&Cross::new((x + 20, cy), 6, color.stroke_width(2)))?,
            }
            root.draw(&Text::new(s.name.clone(), (x + 40, cy - th / 2), font.clone()))?;
        }
        Ok(())
    }

    /// Stroke width and marker radius of line `i`: earlier lines are drawn wider, so a line
    /// that coincides with a later one still shows around it.
    fn line_style(&self, i: usize) -> (u32, u32) {
        let lines = self.series.iter().filter(|s| s.style == Style::Line).count();
        let behind = lines.saturating_sub(i + 1).min(3) as u32;
        (2 + 2 * behind, 3 + behind)
    }

    /// The chart as an SVG document.
    pub fn svg(&self) -> Result<String, String> {
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
            self.draw(&root)?;
        }
        Ok(out)
    }

    /// The chart as a PNG image (RGB, 8 bits).
    pub fn png(&self) -> Result<Vec<u8>, String> {
        let (w, h) = SIZE;
        let mut rgb = vec![0u8; w as usize * h as usize * 3];
        {
            let root = PixelText(BitMapBackend::with_buffer(&mut rgb, SIZE)).into_drawing_area();
            self.draw(&root)?;
        }
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut wr = enc.write_header().map_err(|e| e.to_string())?;
            wr.write_image_data(&rgb).map_err(|e| e.to_string())?;
            wr.finish().map_err(|e| e.to_string())?;
        }
        Ok(out)
    }
}

mod pixel_text {
    use plotters::prelude::{BitMapBackend, DrawingBackend};
    use plotters_backend::{
        text_anchor::{HPos, VPos},
        BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
    };

    use crate::study::font;

    /// A bitmap backend whose text is drawn with the built-in pixel font.
    pub(super) struct PixelText<'a>(pub(super) BitMapBackend<'a>);

    type BitmapError<'a> = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    impl<'a> DrawingBackend for PixelText<'a> {
        type ErrorType = BitmapError<'a>;

        fn get_size(&self) -> (u32, u32) {
            self.0.get_size()
        }

        fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.ensure_prepared()
        }

        fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.present()
        }

        fn draw_pixel(
            &mut self,
            point: BackendCoord,
            color: BackendColor,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.draw_pixel(point, color)
        }

        fn draw_line<S: BackendStyle>(
            &mut self,
            from: BackendCoord,
            to: BackendCoord,
            style: &S,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.draw_line(from, to, style)
        }

        fn draw_rect<S: BackendStyle>(
            &mut self,
            upper_left: BackendCoord,
            bottom_right: BackendCoord,
            style: &S,
            fill: bool,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.draw_rect(upper_left, bottom_right, style, fill)
        }

        fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
            &mut self,
            path: I,
            style: &S,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.draw_path(path, style)
        }

        fn draw_circle<S: BackendStyle>(
            &mut self,
            center: BackendCoord,
            radius: u32,
            style: &S,
            fill: bool,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.draw_circle(center, radius, style, fill)
        }

        fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
            &mut self,
            vert: I,
            style: &S,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.fill_polygon(vert, style)
        }

        fn draw_text<TStyle: BackendTextStyle>(
            &mut self,
            text: &str,
            style: &TStyle,
            pos: BackendCoord,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            let color = style.color();
            if color.alpha == 0.0 {
                return Ok(());
            }
            let s = font::scale(style.size());
            let (w, h) = font::extent(text, s);
            let anchor = style.anchor();
            let dx = match anchor.h_pos {
                HPos::Left => 0,
                HPos::Right => -w,
                HPos::Center => -w / 2,
            };
            let dy = match anchor.v_pos {
                VPos::Top => 0,
                VPos::Center => -h / 2,
                VPos::Bottom => -h,
            };
            let trans = style.transform();
            let (bw, bh) = self.get_size();
            for (i, c) in text.chars().enumerate() {
                let left = i as i32 * font::ADVANCE * s;
                for row in 0..font::GLYPH_H {
                    for col in 0..font::GLYPH_W {
                        if !font::pixel(c, col, row) {
                            continue;
                        }
                        for sy in 0..s {
                            for sx in 0..s {
                                let (x, y) =
                                    trans.transform(left + col * s + sx + dx, row * s + sy + dy);
                                let (x, y) = (pos.0 + x, pos.1 + y);
                                if x >= 0 && y >= 0 && (x as u32) < bw && (y as u32) < bh {
                                    self.0.draw_pixel((x, y), color)?;
                                }
                            }
                        }
                    }
                }
            }
            Ok(())
        }

        fn estimate_text_size<TStyle: BackendTextStyle>(
            &self,
            text: &str,
            style: &TStyle,
        ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
            let (w, h) = font::extent(text, font::scale(style.size()));
            Ok((w.max(0) as u32, h.max(0) as u32))
        }

        fn blit_bitmap(
            &mut self,
            pos: BackendCoord,
            size: (u32, u32),
            src: &[u8],
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.blit_bitmap(pos, size, src)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart {
        Chart {
            title: "bandwidth vs size".into(),
            x_label: "message size".into(),
            y_label: "GB/s".into(),
            x_log: true,
            y_log: false,
            x_bytes: true,
            x_categories: None,
            series: vec![
                Series {
                    name: "a".into(),
                    points: vec![(1024.0, 1.0), (65536.0, 8.0), (1048576.0, 12.0)],
                    style: Style::Line,
                },
                Series {
                    name: "ref".into(),
                    points: vec![(1048576.0, 12.3)],
                    style: Style::Markers,
                },
            ],
        }
    }

    #[test]
    fn svg_and_png_render_with_labels() {
        let c = chart();
        let svg = c.svg().unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("bandwidth vs size"), "{svg:.200}");
        assert!(svg.contains("\n1MiB\n") && svg.contains("\n64KiB\n"), "byte-size tick labels");
        let png = c.png().unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(png, c.png().unwrap(), "deterministic bytes");
    }

    #[test]
    fn numbers_format_short() {
        assert_eq!(fmt_num(12.0), "12");
        assert_eq!(fmt_num(12.3456), "12.346");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(2.5e7), "2.50e7");
        assert_eq!(fmt_bytes(65536.0), "64KiB");
    }
}
