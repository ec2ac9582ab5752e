//! Study figures (SVG and PNG, plotters): forest plot of Hedges' g, ROC curve with its bootstrap
//! band, calibration (reliability) diagram. Drawn into a temporary folder and renamed into place.

use super::report::StudyReport;
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

use crate::plots::{both_generic, plot_err as pe};

fn forest<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &StudyReport) -> Result<()> {
    root.fill(&WHITE).map_err(pe)?;
    let rows: Vec<(&str, f64, f64, f64)> = r
        .indicators
        .iter()
        .filter_map(|i| i.hedges_g.map(|g| (i.name.as_str(), g.estimate, g.ci_low, g.ci_high)))
        .collect();
    let n = rows.len().max(1);
    let (mut lo, mut hi) = (-0.5f64, 0.5f64);
    for &(_, _, l, h) in &rows {
        lo = lo.min(l);
        hi = hi.max(h);
    }
    let pad = (hi - lo) * 0.05;
    let title = format!(
        "Hedges' g ({} vs {}), {:.0} % CI",
        r.positive_group,
        r.negative_group,
        r.settings.confidence * 100.0
    );
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(170)
        .build_cartesian_2d((lo - pad)..(hi + pad), -0.5..(n as f64 - 0.5))
        .map_err(pe)?;
    let names: Vec<String> = rows.iter().map(|r| r.0.to_string()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc("Hedges' g")
        .y_labels(n)
        .y_label_formatter(&|v| {
            let i = v.round();
            if (v - i).abs() > 1e-6 || i < 0.0 {
                return String::new();
            }
            let k = n - 1 - i as usize;
            names.get(k).cloned().unwrap_or_default()
        })
        .draw()
        .map_err(pe)?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, -0.5), (0.0, n as f64 - 0.5)],
            BLACK.mix(0.5),
        )))
        .map_err(pe)?;
    for (k, &(_, g, l, h)) in rows.iter().enumerate() {
        let y = (n - 1 - k) as f64;
        chart
            .draw_series(std::iter::once(PathElement::new(vec![(l, y), (h, y)], BLUE.stroke_width(2))))
            .map_err(pe)?;
        chart.draw_series(std::iter::once(Circle::new((g, y), 5, BLUE.filled()))).map_err(pe)?;
    }
    Ok(())
}

fn roc<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &StudyReport) -> Result<()> {
    root.fill(&WHITE).map_err(pe)?;
    let Some(c) = &r.classifier else { return Ok(()) };
    let title =
        format!("Classifier ROC, AUC {:.2} [{:.2}, {:.2}]", c.auc.estimate, c.auc.ci_low, c.auc.ci_high);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .map_err(pe)?;
    chart.configure_mesh().x_desc("1 - specificity").y_desc("sensitivity").draw().map_err(pe)?;
    let b = &c.roc_band;
    let mut poly: Vec<(f64, f64)> = b.fpr.iter().zip(&b.tpr_high).map(|(x, y)| (*x, *y)).collect();
    poly.extend(b.fpr.iter().zip(&b.tpr_low).rev().map(|(x, y)| (*x, *y)));
    chart.draw_series(std::iter::once(Polygon::new(poly, BLUE.mix(0.2).filled()))).map_err(pe)?;
    chart
        .draw_series(std::iter::once(PathElement::new(vec![(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.4))))
        .map_err(pe)?;
    chart
        .draw_series(LineSeries::new(
            c.roc_fpr.iter().zip(&c.roc_tpr).map(|(x, y)| (*x, *y)),
            BLUE.stroke_width(2),
        ))
        .map_err(pe)?;
    Ok(())
}

fn calibration<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &StudyReport) -> Result<()> {
    root.fill(&WHITE).map_err(pe)?;
    let Some(c) = &r.classifier else { return Ok(()) };
    let mut chart = ChartBuilder::on(root)
        .caption(format!("Calibration (out-of-fold), ECE {:.3}", c.ece), ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .map_err(pe)?;
    chart
        .configure_mesh()
        .x_desc("mean predicted probability")
        .y_desc(format!("fraction {}", r.positive_group))
        .draw()
        .map_err(pe)?;
    chart
        .draw_series(std::iter::once(PathElement::new(vec![(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.4))))
        .map_err(pe)?;
    let pts: Vec<(f64, f64)> = c
        .calibration
        .iter()
        .filter(|b| b.count > 0)
        .map(|b| (b.mean_predicted, b.fraction_positive))
        .collect();
    chart.draw_series(LineSeries::new(pts.iter().copied(), RED.stroke_width(2))).map_err(pe)?;
    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, RED.filled()))).map_err(pe)?;
    Ok(())
}

/// Draws every figure into `tmp`: `forest`, and with a classifier `roc` and `calibration`.
fn draw_all(r: &StudyReport, tmp: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let n = r.indicators.len().max(1) as u32;
    files.extend(both_generic(
        &tmp.join("forest"),
        (760, 120 + 28 * n),
        |a| forest(a.0, r),
        |a| forest(a.0, r),
    )?);
    if r.classifier.is_some() {
        files.extend(both_generic(&tmp.join("roc"), (520, 500), |a| roc(a.0, r), |a| roc(a.0, r))?);
        files.extend(both_generic(
            &tmp.join("calibration"),
            (520, 500),
            |a| calibration(a.0, r),
            |a| calibration(a.0, r),
        )?);
    }
    Ok(files)
}

/// Writes `plots/forest`, and with a classifier `plots/roc` and `plots/calibration` (SVG + PNG)
/// under `out`, drawn in a temporary folder and renamed into place; a drawing that fails removes
/// the temporary folder and writes nothing. Returns paths relative to `out`.
pub fn write_plots(r: &StudyReport, out: &Path) -> Result<Vec<String>> {
    let io = |p: &Path, e| Error::Io { path: p.to_path_buf(), source: e };
    let tmp = out.join(format!(".plots.tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let files = match draw_all(r, &tmp) {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let dest = out.join("plots");
    std::fs::create_dir_all(&dest).map_err(|e| io(&dest, e))?;
    let mut rel = Vec::new();
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let to = dest.join(&name);
        std::fs::rename(&f, &to).map_err(|e| io(&to, e))?;
        rel.push(format!("plots/{name}"));
    }
    std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    Ok(rel)
}
