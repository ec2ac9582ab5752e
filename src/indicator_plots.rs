//! Figures of the clinical indicators (`mex-indicators`), each written as SVG and PNG through a
//! temporary file and a rename (never half-written):
//!
//! * [`ear_with_blinks`]: the eye aspect ratio over time, blinks of the adaptive detector shaded
//!   from onset to offset with their closure marked, OpenDBM's blinks as ticks;
//! * [`regional_activity`]: regional activity (inter-ocular distances per second) over time, one
//!   line per region;
//! * [`asymmetry_over_time`]: the landmark asymmetry index of brows, eyes and mouth over time.
//!
//! Frames without a face are gaps in the lines, never zeros. Figures hold derived numbers only,
//! never face images.

use crate::Result;
use mex_indicators::{Blink, FrameIndicators, Region};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

use crate::plots::plot_err;

/// One named line broken into runs of consecutive present values.
struct Line {
    name: String,
    runs: Vec<Vec<(f64, f64)>>,
}

fn line(name: &str, frames: &[FrameIndicators], f: impl Fn(&FrameIndicators) -> Option<f64>) -> Line {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    for fr in frames {
        match f(fr).filter(|v| v.is_finite()) {
            Some(v) => cur.push((fr.time_s, v)),
            None => {
                if !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    Line { name: name.to_string(), runs }
}

struct Figure<'a> {
    title: &'a str,
    y_desc: &'a str,
    lines: Vec<Line>,
    /// Shaded x-ranges.
    shaded: Vec<(f64, f64)>,
    /// Marked points (closures).
    marks: Vec<(f64, f64)>,
    /// Vertical ticks at the bottom (second detector).
    ticks: Vec<f64>,
}

impl Figure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_err)?;
        let pts = self.lines.iter().flat_map(|l| l.runs.iter().flatten()).chain(self.marks.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
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
        let pad = ((y1 - y0) * 0.08).max(1e-6);
        let (ya, yb) = (y0 - pad, y1 + pad);
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, ya..yb)
            .map_err(plot_err)?;
        chart.configure_mesh().x_desc("time (s)").y_desc(self.y_desc).draw().map_err(plot_err)?;
        for &(a, b) in &self.shaded {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(a, ya), (b, yb)],
                    RGBColor(255, 200, 120).mix(0.45).filled(),
                )))
                .map_err(plot_err)?;
        }
        let tick = 0.06 * (yb - ya);
        for &t in &self.ticks {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(t, ya), (t, ya + tick)],
                    RGBColor(120, 60, 160).stroke_width(2),
                )))
                .map_err(plot_err)?;
        }
        for (k, l) in self.lines.iter().enumerate() {
            let colour = Palette99::pick(k).to_rgba();
            for (j, run) in l.runs.iter().enumerate() {
                let s = chart
                    .draw_series(LineSeries::new(run.iter().copied(), colour.stroke_width(2)))
                    .map_err(plot_err)?;
                if j == 0 {
                    s.label(l.name.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
                }
            }
        }
        if !self.marks.is_empty() {
            chart
                .draw_series(self.marks.iter().map(|&p| Circle::new(p, 4, RED.filled())))
                .map_err(plot_err)?;
        }
        if self.lines.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(plot_err)?;
        }
        Ok(())
    }

    /// Renders SVG and PNG in memory, then writes each atomically.
    fn write(&self, base: &Path, size: (u32, u32)) -> Result<Vec<PathBuf>> {
        crate::plots::both_generic(base, size, |r| self.draw(r.0), |r| self.draw(r.0))
    }
}

/// EAR (mean of both eyes, and each eye) over time; `blinks` (adaptive detector) shaded from
/// onset to offset with the closure marked, `opendbm` blinks as ticks at the bottom. Writes
/// `base.svg` and `base.png`.
pub fn ear_with_blinks(
    base: &Path,
    frames: &[FrameIndicators],
    blinks: &[Blink],
    opendbm: &[Blink],
) -> Result<Vec<PathBuf>> {
    let ear_at = |frame: usize| frames.iter().find(|f| f.frame == frame).and_then(|f| f.ear_mean);
    let fig = Figure {
        title: "Eye aspect ratio and blinks",
        y_desc: "EAR",
        lines: vec![
            line("EAR mean", frames, |f| f.ear_mean),
            line("EAR image-left eye", frames, |f| f.ear_left),
            line("EAR image-right eye", frames, |f| f.ear_right),
        ],
        shaded: blinks.iter().map(|b| (b.onset_s, b.offset_s)).collect(),
        marks: blinks.iter().filter_map(|b| ear_at(b.closure_frame).map(|e| (b.closure_s, e))).collect(),
        ticks: opendbm.iter().map(|b| b.closure_s).collect(),
    };
    fig.write(base, (900, 400))
}

/// Regional activity (inter-ocular distances per second) over time, one line per region.
/// Writes `base.svg` and `base.png`.
pub fn regional_activity(base: &Path, frames: &[FrameIndicators]) -> Result<Vec<PathBuf>> {
    let fig = Figure {
        title: "Regional facial activity",
        y_desc: "activity (IOD/s)",
        lines: Region::ALL
            .iter()
            .map(|r| line(r.name(), frames, |f| f.activity.map(|a| a[r.index()])))
            .collect(),
        shaded: Vec::new(),
        marks: Vec::new(),
        ticks: Vec::new(),
    };
    fig.write(base, (900, 450))
}

/// Landmark asymmetry index (inter-ocular distances) of brows, eyes and mouth over time,
/// with `movements` (time ranges, seconds) shaded. Writes `base.svg` and `base.png`.
pub fn asymmetry_over_time(
    base: &Path,
    frames: &[FrameIndicators],
    movements: &[(f64, f64)],
) -> Result<Vec<PathBuf>> {
    let fig = Figure {
        title: "Landmark asymmetry",
        y_desc: "asymmetry (IOD)",
        lines: vec![
            line("brows", frames, |f| f.asymmetry.map(|a| a.brows)),
            line("eyes", frames, |f| f.asymmetry.map(|a| a.eyes)),
            line("mouth", frames, |f| f.asymmetry.map(|a| a.mouth)),
        ],
        shaded: movements.to_vec(),
        marks: Vec::new(),
        ticks: Vec::new(),
    };
    fig.write(base, (900, 400))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mex_indicators::{LandmarkAsymmetry, N_REGIONS};

    #[test]
    fn indicator_figures_are_written_with_gaps() {
        let frames: Vec<FrameIndicators> = (0..60)
            .map(|i| {
                let face = !(20..25).contains(&i);
                let ear = 0.3 - if (40..44).contains(&i) { 0.2 } else { 0.0 };
                FrameIndicators {
                    frame: i,
                    time_s: i as f64 / 30.0,
                    face,
                    interocular_px: face.then_some(60.0),
                    ear_left: face.then_some(ear),
                    ear_right: face.then_some(ear),
                    ear_mean: face.then_some(ear),
                    asymmetry: face.then_some(LandmarkAsymmetry {
                        brows: 0.01,
                        eyes: 0.02,
                        mouth: 0.03,
                        composite: 0.02,
                    }),
                    activity: face.then_some([0.1 * (i % 5) as f64; N_REGIONS]),
                }
            })
            .collect();
        let blink = Blink {
            onset_frame: 40,
            closure_frame: 42,
            offset_frame: 43,
            onset_s: 40.0 / 30.0,
            closure_s: 42.0 / 30.0,
            offset_s: 43.0 / 30.0,
            duration_s: 4.0 / 30.0,
            amplitude: 0.2,
            relative_amplitude: 0.67,
            complete: false,
        };
        let line = line("EAR", &frames, |f| f.ear_mean);
        assert_eq!(line.runs.len(), 2, "the face gap splits the line");
        let dir = tempfile::tempdir().unwrap();
        let mut files = ear_with_blinks(&dir.path().join("ear"), &frames, &[blink], &[blink]).unwrap();
        files.extend(regional_activity(&dir.path().join("activity"), &frames).unwrap());
        files.extend(asymmetry_over_time(&dir.path().join("asym"), &frames, &[(0.5, 1.0)]).unwrap());
        assert_eq!(files.len(), 6);
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            assert!(bytes.len() > 1000, "{f:?}");
            if f.extension().unwrap() == "png" {
                assert_eq!(&bytes[1..4], b"PNG");
            } else {
                assert!(String::from_utf8(bytes).unwrap().contains("<svg"));
            }
        }
    }
}
