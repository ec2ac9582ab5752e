//! Report figures drawn with plotters, each written as SVG and PNG through a temporary file and a
//! rename (never half-written).
//!
//! Text uses the vendored DejaVu Sans Mono font (Bitstream Vera licence, `assets/fonts/`), so figures
//! render identically on any machine without system fonts.

use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSansMono.ttf");

/// Registers the vendored font once for every figure of the crate.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
            && plotters::style::register_font("sans-serif", FontStyle::Bold, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Plot("could not register the vendored font".into()))
    }
}

/// A plotting error as the crate's error.
pub(crate) fn plot_err<E: std::fmt::Display>(e: E) -> Error {
    Error::Plot(e.to_string())
}

/// A confusion matrix as a heat map (rows = truth, columns = prediction) with counts in the cells.
pub fn confusion_matrix(
    base: &Path,
    title: &str,
    classes: &[String],
    counts: &[Vec<u64>],
) -> Result<Vec<PathBuf>> {
    struct Draw<'a> {
        title: &'a str,
        classes: &'a [String],
        counts: &'a [Vec<u64>],
    }
    impl Draw<'_> {
        fn go<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
            let n = self.classes.len();
            root.fill(&WHITE).map_err(plot_err)?;
            let max = self.counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
            let lim = n as f64 - 0.5;
            let mut chart = ChartBuilder::on(root)
                .caption(self.title, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(90)
                .build_cartesian_2d(-0.5..lim, -0.5..lim)
                .map_err(plot_err)?;
            let classes = self.classes;
            let name_at = move |v: f64, flip: bool| -> String {
                let i = v.round();
                if (v - i).abs() > 1e-6 || i < 0.0 || i as usize >= n {
                    return String::new();
                }
                let i = if flip { n - 1 - i as usize } else { i as usize };
                classes.get(i).cloned().unwrap_or_default()
            };
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc("predicted")
                .y_desc("truth")
                .x_labels(n)
                .y_labels(n)
                .x_label_formatter(&|v| name_at(*v, false))
                .y_label_formatter(&|v| name_at(*v, true))
                .draw()
                .map_err(plot_err)?;
            for (t, row) in self.counts.iter().enumerate() {
                for (p, &c) in row.iter().enumerate() {
                    let (x, y) = (p as f64, (n - 1 - t) as f64);
                    let shade = 1.0 - 0.8 * (c as f64 / max);
                    let colour = RGBColor((255.0 * shade) as u8, (255.0 * shade) as u8, 255);
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                            colour.filled(),
                        )))
                        .map_err(plot_err)?;
                    let text = c.to_string();
                    let style = ("sans-serif", 16).into_font().color(&BLACK);
                    let (cx, cy) = chart.backend_coord(&(x, y));
                    let off = 5 * text.len() as i32;
                    root.draw_text(&text, &style, (cx - off, cy - 8)).map_err(plot_err)?;
                }
            }
            Ok(())
        }
    }
    let d = Draw { title, classes, counts };
    both_generic(base, (520, 480), |r| d.go(r.0), |r| d.go(r.0))
}

/// A horizontal-axis category chart: one bar (point) per label with an optional confidence interval.
pub fn bars_with_ci(
    base: &Path,
    title: &str,
    y_desc: &str,
    labels: &[String],
    values: &[f64],
    ci: Option<&[(f64, f64)]>,
) -> Result<Vec<PathBuf>> {
    if labels.len() != values.len() || ci.is_some_and(|c| c.len() != values.len()) {
        return Err(Error::Plot("labels, values and intervals differ in length".into()));
    }
    struct Draw<'a> {
        title: &'a str,
        y_desc: &'a str,
        labels: &'a [String],
        values: &'a [f64],
        ci: Option<&'a [(f64, f64)]>,
    }
    impl Draw<'_> {
        fn go<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
            root.fill(&WHITE).map_err(plot_err)?;
            let n = self.labels.len().max(1);
            let mut chart = ChartBuilder::on(root)
                .caption(self.title, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(60)
                .y_label_area_size(50)
                .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..1.0)
                .map_err(plot_err)?;
            let labels = self.labels;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .y_desc(self.y_desc)
                .x_labels(n)
                .x_label_formatter(&|v| {
                    let i = v.round();
                    if (v - i).abs() > 1e-6 || i < 0.0 {
                        return String::new();
                    }
                    labels.get(i as usize).cloned().unwrap_or_default()
                })
                .draw()
                .map_err(plot_err)?;
            chart
                .draw_series(self.values.iter().enumerate().map(|(i, &v)| {
                    let x = i as f64;
                    Rectangle::new([(x - 0.35, 0.0), (x + 0.35, v.clamp(0.0, 1.0))], BLUE.mix(0.5).filled())
                }))
                .map_err(plot_err)?;
            if let Some(ci) = self.ci {
                chart
                    .draw_series(ci.iter().enumerate().map(|(i, &(lo, hi))| {
                        PathElement::new(
                            vec![(i as f64, lo.clamp(0.0, 1.0)), (i as f64, hi.clamp(0.0, 1.0))],
                            BLACK.stroke_width(2),
                        )
                    }))
                    .map_err(plot_err)?;
            }
            Ok(())
        }
    }
    let d = Draw { title, y_desc, labels, values, ci };
    both_generic(base, (640, 420), |r| d.go(r.0), |r| d.go(r.0))
}

/// One named line series of `(x, y)` points.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Points in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// Line plot of several series, with optional shaded x-ranges (e.g. spotted intervals).
pub fn lines(
    base: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    shaded: &[(f64, f64)],
) -> Result<Vec<PathBuf>> {
    struct Draw<'a> {
        title: &'a str,
        x_desc: &'a str,
        y_desc: &'a str,
        series: &'a [Series],
        shaded: &'a [(f64, f64)],
    }
    impl Draw<'_> {
        fn go<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
            root.fill(&WHITE).map_err(plot_err)?;
            let pts = self.series.iter().flat_map(|s| s.points.iter());
            let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
            for &(x, y) in pts.filter(|p| p.0.is_finite() && p.1.is_finite()) {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
            if x0 > x1 {
                (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
            }
            if x1 - x0 < 1e-12 {
                x1 = x0 + 1.0;
            }
            let pad = ((y1 - y0) * 0.05).max(1e-9);
            let mut chart = ChartBuilder::on(root)
                .caption(self.title, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
                .map_err(plot_err)?;
            chart.configure_mesh().x_desc(self.x_desc).y_desc(self.y_desc).draw().map_err(plot_err)?;
            for &(a, b) in self.shaded {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(a, y0 - pad), (b, y1 + pad)],
                        RGBColor(255, 200, 120).mix(0.4).filled(),
                    )))
                    .map_err(plot_err)?;
            }
            for (k, s) in self.series.iter().enumerate() {
                let colour = Palette99::pick(k).to_rgba();
                chart
                    .draw_series(LineSeries::new(s.points.iter().copied(), colour.stroke_width(2)))
                    .map_err(plot_err)?
                    .label(s.name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
            }
            if self.series.len() > 1 {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(plot_err)?;
            }
            Ok(())
        }
    }
    let d = Draw { title, x_desc, y_desc, series, shaded };
    both_generic(base, (720, 400), |r| d.go(r.0), |r| d.go(r.0))
}

/// Wrapper so that one closure type per backend can be passed.
pub(crate) struct Area<'a, DB: DrawingBackend>(pub(crate) &'a DrawingArea<DB, Shift>);

/// Draws one figure in memory with `svg_draw` and `png_draw` (the same drawing on each backend)
/// and writes `base.svg` and `base.png`, each through a temporary file and a rename: a drawing
/// that fails writes nothing. Creates `base`'s folder.
pub(crate) fn both_generic<S, B>(
    base: &Path,
    size: (u32, u32),
    svg_draw: S,
    png_draw: B,
) -> Result<Vec<PathBuf>>
where
    S: Fn(Area<'_, SVGBackend<'_>>) -> Result<()>,
    B: Fn(Area<'_, BitMapBackend<'_>>) -> Result<()>,
{
    ensure_font()?;
    let mut svg_text = String::new();
    {
        let root = SVGBackend::with_string(&mut svg_text, size).into_drawing_area();
        svg_draw(Area(&root))?;
        root.present().map_err(plot_err)?;
    }
    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        png_draw(Area(&root))?;
        root.present().map_err(plot_err)?;
    }
    let img = image::RgbImage::from_raw(size.0, size.1, rgb)
        .ok_or_else(|| Error::Plot("PNG buffer has the wrong size".into()))?;
    let mut png_bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png_bytes), image::ImageFormat::Png).map_err(plot_err)?;
    let (svg, png) = (base.with_extension("svg"), base.with_extension("png"));
    crate::io::write_atomic(&svg, svg_text.as_bytes())?;
    if let Err(e) = crate::io::write_atomic(&png, &png_bytes) {
        // the pair is written whole or not at all
        let _ = std::fs::remove_file(&svg);
        return Err(e);
    }
    Ok(vec![svg, png])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_written_as_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let classes: Vec<String> =
            ["negative", "positive", "surprise"].iter().map(|s| s.to_string()).collect();
        let cm = vec![vec![10, 2, 1], vec![3, 7, 0], vec![1, 0, 5]];
        let files = confusion_matrix(&dir.path().join("cm"), "confusion", &classes, &cm).unwrap();
        let files2 = bars_with_ci(
            &dir.path().join("bars"),
            "UF1",
            "UF1",
            &classes,
            &[0.7, 0.5, 0.9],
            Some(&[(0.6, 0.8), (0.4, 0.6), (0.85, 0.95)]),
        )
        .unwrap();
        let s = Series {
            name: "motion".into(),
            points: (0..50).map(|i| (i as f64, (i as f64 / 5.0).sin())).collect(),
        };
        let files3 =
            lines(&dir.path().join("curve"), "motion", "frame", "px", &[s], &[(10.0, 20.0)]).unwrap();
        for f in files.iter().chain(&files2).chain(&files3) {
            let len = std::fs::metadata(f).unwrap().len();
            assert!(len > 500, "{} is only {len} bytes", f.display());
        }
        let png = image::open(&files[1]).unwrap().to_rgb8();
        assert_eq!(png.dimensions(), (520, 480));
        // The diagonal cell with the largest count is the darkest blue: not white.
        assert!(png.pixels().any(|p| p[0] < 120 && p[2] > 200));
        if let Ok(dir_out) = std::env::var("MEX_PLOT_PREVIEW") {
            for f in files.iter().chain(&files2).chain(&files3) {
                std::fs::copy(f, Path::new(&dir_out).join(f.file_name().unwrap())).unwrap();
            }
        }
        assert!(bars_with_ci(&dir.path().join("x"), "t", "y", &classes, &[0.1], None).is_err());
        // only the figures: no temporary file left beside them
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["bars.png", "bars.svg", "cm.png", "cm.svg", "curve.png", "curve.svg"]);
    }

    #[test]
    fn a_drawing_that_fails_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("fig");
        let fail = || Err(Error::Plot("drawing failed".into()));
        // fails after drawing part of the SVG
        let r = both_generic(
            &base,
            (64, 48),
            |a| {
                a.0.fill(&WHITE).map_err(plot_err)?;
                fail()
            },
            |a| a.0.fill(&WHITE).map_err(plot_err),
        );
        assert!(matches!(r, Err(Error::Plot(_))));
        // the SVG draws, the PNG fails: neither is written
        let r = both_generic(&base, (64, 48), |a| a.0.fill(&WHITE).map_err(plot_err), |_| fail());
        assert!(matches!(r, Err(Error::Plot(_))));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        // a figure over an existing one replaces it whole
        both_generic(
            &base,
            (64, 48),
            |a| a.0.fill(&WHITE).map_err(plot_err),
            |a| a.0.fill(&RED).map_err(plot_err),
        )
        .unwrap();
        let png = image::open(base.with_extension("png")).unwrap().to_rgb8();
        assert_eq!((png.dimensions(), png.get_pixel(3, 3).0), ((64, 48), [255, 0, 0]));
    }
}
