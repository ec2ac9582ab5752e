//! Micro-motion features: histograms of oriented optical flow (HOOF), main directional mean
//! optical flow (MDMO), and head-motion compensation.

use crate::error::{invalid, Result};
use crate::{Error, FlowField};
use mex_core::{BBox, Point2, Similarity};

/// Integer pixel bounds `[x0, x1) x [y0, y1)` of a box clipped to a `w x h` field.
fn clip(b: &BBox, w: usize, h: usize) -> (usize, usize, usize, usize) {
    let c = |v: f32, n: usize| (v.max(0.0).round() as usize).min(n);
    (c(b.x0, w), c(b.y0, h), c(b.x1, w), c(b.y1, h))
}

/// HOOF: a histogram of flow orientations over `bins` equal sectors of `[-π, π)` (sector 0
/// starts at `-π`), each vector weighted by its magnitude when `magnitude_weighted`, L1-normalised
/// (all zeros for a zero field). `roi` restricts the pixels.
pub fn hoof(flow: &FlowField, bins: usize, roi: Option<&BBox>, magnitude_weighted: bool) -> Result<Vec<f32>> {
    if bins == 0 {
        return Err(invalid("bins", bins, "must be >= 1"));
    }
    let (w, h) = flow.size();
    let (x0, y0, x1, y1) = roi.map_or((0, 0, w, h), |b| clip(b, w, h));
    let mut hist = vec![0.0f64; bins];
    for y in y0..y1 {
        for x in x0..x1 {
            let i = y * w + x;
            let (u, v) = (flow.u()[i], flow.v()[i]);
            let m = u.hypot(v);
            if !(m > 0.0 && m.is_finite()) {
                continue;
            }
            let k = orientation_bin(v.atan2(u), bins);
            hist[k] += if magnitude_weighted { f64::from(m) } else { 1.0 };
        }
    }
    let s: f64 = hist.iter().sum();
    Ok(hist.into_iter().map(|v| if s > 0.0 { (v / s) as f32 } else { 0.0 }).collect())
}

fn orientation_bin(angle: f32, bins: usize) -> usize {
    let t = (f64::from(angle) + std::f64::consts::PI) / std::f64::consts::TAU;
    ((t * bins as f64).floor() as usize).min(bins - 1)
}

/// A regular grid of `rows x cols` boxes covering a `w x h` field.
pub fn grid_rois(w: usize, h: usize, rows: usize, cols: usize) -> Vec<BBox> {
    let mut v = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            v.push(BBox::new(
                (c * w) as f32 / cols as f32,
                (r * h) as f32 / rows as f32,
                ((c + 1) * w) as f32 / cols as f32,
                ((r + 1) * h) as f32 / rows as f32,
            ));
        }
    }
    v
}

/// Square ROIs of side `2 half + 1` centred on landmark points (e.g. the 68-point scheme).
pub fn landmark_rois(points: &[Point2], half: f32) -> Vec<BBox> {
    points.iter().map(|p| BBox::new(p.x - half, p.y - half, p.x + half + 1.0, p.y + half + 1.0)).collect()
}

/// MDMO (Liu et al., IEEE TAC 2016): per ROI, the vectors are binned into `bins` orientation
/// sectors, the sector with the most vectors is the main direction, and the ROI's feature is the
/// mean vector of that sector in polar form `(ρ, θ)`. Returns `2 * rois.len()` values
/// `[ρ₀, θ₀, ρ₁, θ₁, ...]` (zeros for a ROI without motion). Liu et al. use 8 bins.
pub fn mdmo(flow: &FlowField, rois: &[BBox], bins: usize) -> Result<Vec<f32>> {
    if bins == 0 {
        return Err(invalid("bins", bins, "must be >= 1"));
    }
    if rois.is_empty() {
        return Err(Error::Empty { what: "MDMO regions of interest" });
    }
    let (w, h) = flow.size();
    let mut out = Vec::with_capacity(2 * rois.len());
    let mut count = vec![0usize; bins];
    let mut su = vec![0.0f64; bins];
    let mut sv = vec![0.0f64; bins];
    for b in rois {
        count.iter_mut().for_each(|c| *c = 0);
        su.iter_mut().for_each(|c| *c = 0.0);
        sv.iter_mut().for_each(|c| *c = 0.0);
        let (x0, y0, x1, y1) = clip(b, w, h);
        for y in y0..y1 {
            for x in x0..x1 {
                let i = y * w + x;
                let (u, v) = (flow.u()[i], flow.v()[i]);
                if u.hypot(v).is_nan() || u.hypot(v) <= 0.0 {
                    continue;
                }
                let k = orientation_bin(v.atan2(u), bins);
                count[k] += 1;
                su[k] += f64::from(u);
                sv[k] += f64::from(v);
            }
        }
        let best = (0..bins).max_by_key(|&k| (count[k], std::cmp::Reverse(k))).unwrap_or(0);
        if count[best] == 0 {
            out.extend([0.0, 0.0]);
        } else {
            let (mu, mv) = (su[best] / count[best] as f64, sv[best] / count[best] as f64);
            out.extend([mu.hypot(mv) as f32, mv.atan2(mu) as f32]);
        }
    }
    Ok(out)
}

/// Subtracts the mean flow of the `(2 half + 1)²` patch centred on `(cx, cy)` from the whole
/// field: SOFTNet's head-motion removal uses an 11 x 11 patch (`half = 5`) around the nose
/// landmark. Errors when the patch lies outside the field.
pub fn subtract_patch_mean(flow: &FlowField, cx: usize, cy: usize, half: usize) -> Result<FlowField> {
    let (w, h) = flow.size();
    if cx >= w || cy >= h {
        return Err(invalid("patch centre", format!("({cx}, {cy})"), "outside the flow field"));
    }
    let (x0, x1) = (cx.saturating_sub(half), (cx + half + 1).min(w));
    let (y0, y1) = (cy.saturating_sub(half), (cy + half + 1).min(h));
    let (mut su, mut sv, mut n) = (0.0f64, 0.0f64, 0usize);
    for y in y0..y1 {
        for x in x0..x1 {
            su += f64::from(flow.u()[y * w + x]);
            sv += f64::from(flow.v()[y * w + x]);
            n += 1;
        }
    }
    let (mu, mv) = ((su / n as f64) as f32, (sv / n as f64) as f32);
    let u = flow.u().iter().map(|a| a - mu).collect();
    let v = flow.v().iter().map(|a| a - mv).collect();
    Ok(FlowField::from_planes(w, h, u, v)?)
}

/// Fits a least-squares similarity `S` to the correspondences `p -> p + flow(p)` on a grid of
/// every `step`-th pixel (inside `roi` if given) and returns the residual flow
/// `flow(p) - (S(p) - p)` and `S`: global (head) motion removed, local (facial) motion kept.
pub fn remove_global_similarity(
    flow: &FlowField,
    roi: Option<&BBox>,
    step: usize,
) -> Result<(FlowField, Similarity)> {
    let mut out = flow.clone();
    let s = remove_global_similarity_into(flow, roi, step, &mut Vec::new(), &mut Vec::new(), &mut out)?;
    Ok((out, s))
}

/// [`remove_global_similarity`] writing into `out` and reusing the point buffers.
pub fn remove_global_similarity_into(
    flow: &FlowField,
    roi: Option<&BBox>,
    step: usize,
    src: &mut Vec<Point2>,
    dst: &mut Vec<Point2>,
    out: &mut FlowField,
) -> Result<Similarity> {
    remove_similarity_into(flow, roi, step, None, src, dst, out)
}

/// Residuals above this multiple of the median residual are left out of the trimmed fit.
const TRIM: f32 = 2.5;

/// Buffers of the trimmed similarity fit (residuals and weights).
#[derive(Debug, Default)]
pub(crate) struct TrimBuffers {
    resid: Vec<f32>,
    sorted: Vec<f32>,
    weights: Vec<f32>,
}

/// The grid correspondences of `flow` (inside `roi`) fitted by a similarity, which is removed
/// from the flow into `out`. With `trim`, the least-squares fit is refitted twice on the points
/// whose residual is at most [`TRIM`] times the median residual: a local (facial) movement,
/// which moves a minority of the grid, does not pull the fit.
pub(crate) fn remove_similarity_into(
    flow: &FlowField,
    roi: Option<&BBox>,
    step: usize,
    trim: Option<&mut TrimBuffers>,
    src: &mut Vec<Point2>,
    dst: &mut Vec<Point2>,
    out: &mut FlowField,
) -> Result<Similarity> {
    if step == 0 {
        return Err(invalid("step", step, "must be >= 1"));
    }
    let (w, h) = flow.size();
    let (x0, y0, x1, y1) = roi.map_or((0, 0, w, h), |b| clip(b, w, h));
    src.clear();
    dst.clear();
    for y in (y0..y1).step_by(step) {
        for x in (x0..x1).step_by(step) {
            let i = y * w + x;
            let p = Point2::new(x as f32, y as f32);
            src.push(p);
            dst.push(Point2::new(p.x + flow.u()[i], p.y + flow.v()[i]));
        }
    }
    let mut s = Similarity::estimate(src, dst)?;
    if let Some(b) = trim {
        for _ in 0..2 {
            b.resid.clear();
            b.resid.extend(src.iter().zip(dst.iter()).map(|(p, q)| {
                let (sx, sy) = s.apply_f64(f64::from(p.x), f64::from(p.y));
                (f64::from(q.x) - sx).hypot(f64::from(q.y) - sy) as f32
            }));
            b.sorted.clear();
            b.sorted.extend_from_slice(&b.resid);
            let mid = b.sorted.len() / 2;
            let (_, median, _) = b.sorted.select_nth_unstable_by(mid, f32::total_cmp);
            let cut = TRIM * median.max(1e-3);
            b.weights.clear();
            b.weights.extend(b.resid.iter().map(|&r| if r <= cut { 1.0 } else { 0.0 }));
            if b.weights.iter().filter(|&&w| w > 0.0).count() >= 8 {
                s = Similarity::estimate_weighted(src, dst, Some(&b.weights))?;
            }
        }
    }
    if out.size() != (w, h) {
        out.reset(w, h);
    }
    let (ou, ov) = out.planes_mut();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let (sx, sy) = s.apply_f64(x as f64, y as f64);
            ou[i] = flow.u()[i] - (sx - x as f64) as f32;
            ov[i] = flow.v()[i] - (sy - y as f64) as f32;
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hoof_of_uniform_rightward_flow() {
        let f = FlowField::from_fn(8, 8, |_, _| (1.0, 0.0));
        let h = hoof(&f, 8, None, true).unwrap();
        // angle 0 lies at the start of sector 4 of 8 over [-π, π)
        assert_eq!(h[4], 1.0);
        assert!((h.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let z = hoof(&FlowField::zeros(4, 4), 4, None, true).unwrap();
        assert!(z.iter().all(|&v| v == 0.0));
        assert!(hoof(&f, 0, None, true).is_err());
    }

    #[test]
    fn hoof_weights_by_magnitude() {
        // left half moves up-right (sector 1 of 4), right half 3 times as far down-right (sector 2)
        let f = FlowField::from_fn(8, 2, |x, _| if x < 4 { (0.3, -1.0) } else { (0.9, 3.0) });
        let h = hoof(&f, 4, None, true).unwrap();
        assert!((h[1] - 0.25).abs() < 1e-6 && (h[2] - 0.75).abs() < 1e-6, "{h:?}");
        let c = hoof(&f, 4, None, false).unwrap();
        assert!((c[1] - 0.5).abs() < 1e-6 && (c[2] - 0.5).abs() < 1e-6, "{c:?}");
    }

    #[test]
    fn mdmo_takes_the_dominant_direction_mean() {
        // ROI 0: 12 vectors (1, 0) and 4 vectors (0, 2): main direction is rightward, mean (1, 0)
        let f =
            FlowField::from_fn(4, 4, |x, y| if y == 0 { (0.0, 2.0) } else { (1.0 + 0.0 * x as f32, 0.0) });
        let m = mdmo(&f, &grid_rois(4, 4, 1, 1), 8).unwrap();
        assert!((m[0] - 1.0).abs() < 1e-6 && m[1].abs() < 1e-6, "{m:?}");
        assert!(mdmo(&f, &[], 8).is_err());
    }

    #[test]
    fn patch_mean_removal_cancels_translation() {
        let f = FlowField::from_fn(20, 20, |x, _| (0.5, -0.25 + if x > 15 { 1.0 } else { 0.0 }));
        let g = subtract_patch_mean(&f, 5, 5, 5).unwrap();
        assert!(g.get(0, 0).unwrap().0.abs() < 1e-6 && g.get(0, 0).unwrap().1.abs() < 1e-6);
        assert!((g.get(17, 3).unwrap().1 - 1.0).abs() < 1e-6);
        assert!(subtract_patch_mean(&f, 30, 5, 5).is_err());
    }

    #[test]
    fn similarity_removal_recovers_transform() {
        let s = Similarity::from_params(1.02, 0.03, 0.7, -0.4);
        let f = crate::synth::similarity_field(32, 32, &s);
        let (res, est) = remove_global_similarity(&f, None, 2).unwrap();
        assert!((est.scale() - 1.02).abs() < 1e-4 && (est.angle() - 0.03).abs() < 1e-4);
        assert!(res.u().iter().chain(res.v()).all(|v| v.abs() < 1e-3));
    }

    #[test]
    fn trimmed_similarity_ignores_a_local_movement() {
        // head motion (a similarity) plus a facial movement: a 2-pixel shift of a 12x12 patch
        // near a corner of a 64x64 crop (3.5 % of the grid)
        let s = Similarity::from_params(1.01, 0.01, 0.3, -0.2);
        let head = crate::synth::similarity_field(64, 64, &s);
        let f = FlowField::from_fn(64, 64, |x, y| {
            let (u, v) = (head.u()[y * 64 + x], head.v()[y * 64 + x]);
            if (44..56).contains(&x) && (40..52).contains(&y) {
                (u + 2.0, v)
            } else {
                (u, v)
            }
        });
        let err = |e: &Similarity| {
            // largest displacement error of the estimate over the crop's corners
            [(0.0, 0.0), (63.0, 0.0), (0.0, 63.0), (63.0, 63.0)]
                .iter()
                .map(|&(x, y)| {
                    let (a, b) = (s.apply_f64(x, y), e.apply_f64(x, y));
                    (a.0 - b.0).hypot(a.1 - b.1)
                })
                .fold(0.0, f64::max)
        };
        let mut out = FlowField::zeros(0, 0);
        let (mut src, mut dst) = (Vec::new(), Vec::new());
        let plain = remove_similarity_into(&f, None, 2, None, &mut src, &mut dst, &mut out).unwrap();
        let mut b = TrimBuffers::default();
        let trimmed =
            remove_similarity_into(&f, None, 2, Some(&mut b), &mut src, &mut dst, &mut out).unwrap();
        // least squares is pulled by the movement; the trimmed fit is not, and the movement is
        // left whole in the residual flow
        assert!(err(&plain) > 0.05, "{}", err(&plain));
        assert!(err(&trimmed) < 1e-3, "{}", err(&trimmed));
        assert!((out.u()[46 * 64 + 50] - 2.0).abs() < 1e-3 && out.u()[10 * 64 + 10].abs() < 1e-3);
    }
}
