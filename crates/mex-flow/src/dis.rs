//! Dense Inverse Search (Kroeger, Timofte, Dai and Van Gool, ECCV 2016) following OpenCV's
//! `DISOpticalFlow`: a pyramid of factor-2 area down-scalings from `coarsest_scale` (chosen from
//! the image size as in OpenCV) to `finest_scale`; at each scale a grid of `patch_size` patches
//! every `patch_stride` pixels, each aligned by inverse-compositional Gauss-Newton with
//! mean-normalised SSD in two passes (forward and backward raster order, with spatial
//! propagation of the better neighbour and OpenCV's outlier rule), densification by
//! photometric-error-weighted averaging of overlapping patches, and a variational refinement.
//!
//! Differences from OpenCV, stated: frames stay `f32` (OpenCV quantises to 8 bits); gradients
//! are Sobel / 8 (true derivatives); patch rows are processed in one stripe (OpenCV uses one
//! stripe per thread); the variational refinement is a simplified version of OpenCV's
//! (`VariationalRefinement`): brightness and gradient constancy normalised as in DeepFlow,
//! Charbonnier penalties, one warp, `variational_refinement_iterations` fixed-point iterations
//! of 5 SOR sweeps each.

use crate::error::{invalid, Result};
use crate::imgops;
use crate::{validate_pair, with_workspace, FlowEstimator, FlowField, GrayF32};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// OpenCV's DIS presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DisPreset {
    /// `PRESET_ULTRAFAST`: finest scale 2, patch 8, stride 4, 12 iterations, no refinement.
    Ultrafast,
    /// `PRESET_FAST`: finest scale 2, patch 8, stride 4, 16 iterations, 5 refinement iterations.
    Fast,
    /// `PRESET_MEDIUM`: finest scale 1, patch 8, stride 3, 25 iterations, 5 refinement iterations.
    Medium,
}

impl std::str::FromStr for DisPreset {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ultrafast" => Ok(Self::Ultrafast),
            "fast" => Ok(Self::Fast),
            "medium" => Ok(Self::Medium),
            _ => Err(invalid("preset", s, "unknown DIS preset (expected ultrafast, fast or medium)")),
        }
    }
}

/// DIS parameters; the presets equal OpenCV's, `Default` is OpenCV's default (`PRESET_FAST`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DisConfig {
    /// Finest pyramid scale computed (0 = full resolution); the flow is upsampled from there.
    pub finest_scale: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Distance between neighbouring patches.
    pub patch_stride: usize,
    /// Gauss-Newton iterations per patch (split over the two passes).
    pub grad_descent_iterations: usize,
    /// Fixed-point iterations of the variational refinement (0 disables it).
    pub variational_refinement_iterations: usize,
    /// Smoothness weight of the refinement.
    pub variational_refinement_alpha: f32,
    /// Brightness-constancy weight of the refinement.
    pub variational_refinement_delta: f32,
    /// Gradient-constancy weight of the refinement.
    pub variational_refinement_gamma: f32,
    /// Mean-normalised SSD (robust to brightness offsets).
    pub use_mean_normalization: bool,
    /// Spatial propagation of neighbouring patches' flow.
    pub use_spatial_propagation: bool,
}

impl Default for DisConfig {
    fn default() -> Self {
        Self::fast()
    }
}

impl DisConfig {
    /// A preset.
    pub fn preset(p: DisPreset) -> Self {
        let (finest_scale, patch_stride, iters, vr) = match p {
            DisPreset::Ultrafast => (2, 4, 12, 0),
            DisPreset::Fast => (2, 4, 16, 5),
            DisPreset::Medium => (1, 3, 25, 5),
        };
        Self {
            finest_scale,
            patch_size: 8,
            patch_stride,
            grad_descent_iterations: iters,
            variational_refinement_iterations: vr,
            variational_refinement_alpha: 20.0,
            variational_refinement_delta: 5.0,
            variational_refinement_gamma: 10.0,
            use_mean_normalization: true,
            use_spatial_propagation: true,
        }
    }

    /// `PRESET_ULTRAFAST`.
    pub fn ultrafast() -> Self {
        Self::preset(DisPreset::Ultrafast)
    }

    /// `PRESET_FAST` (OpenCV's default).
    pub fn fast() -> Self {
        Self::preset(DisPreset::Fast)
    }

    /// `PRESET_MEDIUM`.
    pub fn medium() -> Self {
        Self::preset(DisPreset::Medium)
    }

    /// The preset this configuration equals, or `"custom"`.
    pub fn preset_name(&self) -> &'static str {
        for (p, name) in
            [(DisPreset::Ultrafast, "ultrafast"), (DisPreset::Fast, "fast"), (DisPreset::Medium, "medium")]
        {
            if *self == Self::preset(p) {
                return name;
            }
        }
        "custom"
    }

    /// Checks every parameter.
    pub fn validate(&self) -> Result<()> {
        if self.patch_size < 2 || self.patch_size > 64 {
            return Err(invalid("patch_size", self.patch_size, "must be in 2..=64"));
        }
        if self.patch_stride == 0 || self.patch_stride > self.patch_size {
            return Err(invalid("patch_stride", self.patch_stride, "must be in 1..=patch_size"));
        }
        if self.grad_descent_iterations == 0 {
            return Err(invalid("grad_descent_iterations", 0, "must be >= 1"));
        }
        for (name, v) in [
            ("variational_refinement_alpha", self.variational_refinement_alpha),
            ("variational_refinement_delta", self.variational_refinement_delta),
            ("variational_refinement_gamma", self.variational_refinement_gamma),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(name, v, "must be finite and >= 0"));
            }
        }
        if self.finest_scale > 10 {
            return Err(invalid("finest_scale", self.finest_scale, "must be <= 10"));
        }
        Ok(())
    }

    /// Validates and builds the estimator.
    pub fn build(&self) -> Result<Dis> {
        self.validate()?;
        Ok(Dis { cfg: self.clone(), ws: Mutex::new(Workspace::default()) })
    }
}

/// The DIS estimator. Build it with [`DisConfig::build`].
#[derive(Debug)]
pub struct Dis {
    cfg: DisConfig,
    ws: Mutex<Workspace>,
}

impl Dis {
    /// The configuration.
    pub fn config(&self) -> &DisConfig {
        &self.cfg
    }
}

#[derive(Debug, Default)]
struct Level {
    w: usize,
    h: usize,
    i0: Vec<f32>,
    i1: Vec<f32>,
    i0x: Vec<f32>,
    i0y: Vec<f32>,
}

#[derive(Debug, Default)]
struct Workspace {
    levels: Vec<Level>,
    ux: Vec<f32>,
    uy: Vec<f32>,
    prev_x: Vec<f32>,
    prev_y: Vec<f32>,
    sx: Vec<f32>,
    sy: Vec<f32>,
    /// Per patch: xx, xy, yy, x-sum, y-sum of the template gradient (mean-normalised).
    tensor: Vec<[f32; 5]>,
    vr: Refine,
}

#[derive(Debug, Default)]
struct Refine {
    i1w: Vec<f32>,
    i1x: Vec<f32>,
    i1y: Vec<f32>,
    ax: Vec<f32>,
    ay: Vec<f32>,
    /// Per pixel: a11, a12, a22, b1, b2 of the linearised data term.
    data: Vec<[f32; 5]>,
    /// Per pixel: [ix, iy, iz, ixx, ixy, iyy, ixz, iyz] plus normalisers.
    deriv: Vec<[f32; 10]>,
    smooth: Vec<f32>,
    du: Vec<f32>,
    dv: Vec<f32>,
}

impl FlowEstimator for Dis {
    fn name(&self) -> &'static str {
        "dis"
    }

    fn estimate_into(&self, frame0: &GrayF32, frame1: &GrayF32, out: &mut FlowField) -> Result<()> {
        validate_pair(frame0, frame1, self.cfg.patch_size, "dis")?;
        let (w, h) = (frame0.width() as usize, frame0.height() as usize);
        with_workspace(&self.ws, |ws| {
            run(&self.cfg, frame0.as_raw(), frame1.as_raw(), w, h, ws);
            if out.size() != (w, h) {
                out.reset(w, h);
            }
            let (ou, ov) = out.planes_mut();
            ou.copy_from_slice(&ws.ux[..w * h]);
            ov.copy_from_slice(&ws.uy[..w * h]);
        });
        Ok(())
    }
}

/// Sobel 3x3 derivatives divided by 8 (replicated borders).
fn sobel(src: &[f32], w: usize, h: usize, gx: &mut [f32], gy: &mut [f32]) {
    for y in 0..h {
        let ym = y.saturating_sub(1) * w;
        let yc = y * w;
        let yp = (y + 1).min(h - 1) * w;
        for x in 0..w {
            let xm = x.saturating_sub(1);
            let xp = (x + 1).min(w - 1);
            let dx = (src[ym + xp] - src[ym + xm])
                + 2.0 * (src[yc + xp] - src[yc + xm])
                + (src[yp + xp] - src[yp + xm]);
            let dy = (src[yp + xm] - src[ym + xm])
                + 2.0 * (src[yp + x] - src[ym + x])
                + (src[yp + xp] - src[ym + xp]);
            gx[yc + x] = dx * 0.125;
            gy[yc + x] = dy * 0.125;
        }
    }
}

fn coarsest_scale(w: usize, h: usize, psz: usize) -> i64 {
    let a = ((w.max(h) as f64 / (4.0 * psz as f64)).ln() / 2f64.ln() + 0.5) as i64;
    let b = ((w.min(h) as f64 / psz as f64).ln() / 2f64.ln()) as i64;
    a.min(b)
}

fn run(cfg: &DisConfig, a: &[f32], b: &[f32], w: usize, h: usize, ws: &mut Workspace) {
    let psz = cfg.patch_size;
    let coarsest = coarsest_scale(w, h, psz).max(0) as usize;
    let finest = cfg.finest_scale.min(coarsest);
    // pyramid
    ws.levels.resize_with(coarsest + 1, Level::default);
    for s in 0..=coarsest {
        let (lw, lh) = if s == 0 { (w, h) } else { ((w >> s).max(1), (h >> s).max(1)) };
        let (prev, cur) = ws.levels.split_at_mut(s);
        let lev = &mut cur[0];
        lev.w = lw;
        lev.h = lh;
        for v in [&mut lev.i0, &mut lev.i1, &mut lev.i0x, &mut lev.i0y] {
            v.resize(lw * lh, 0.0);
        }
        if s == 0 {
            lev.i0.copy_from_slice(a);
            lev.i1.copy_from_slice(b);
        } else {
            let p = &prev[s - 1];
            imgops::downscale2_area(&p.i0, p.w, p.h, &mut lev.i0, lw, lh);
            imgops::downscale2_area(&p.i1, p.w, p.h, &mut lev.i1, lw, lh);
        }
        if s >= finest {
            sobel(&lev.i0, lw, lh, &mut lev.i0x, &mut lev.i0y);
        }
    }
    let n0 = w * h;
    for v in [&mut ws.ux, &mut ws.uy, &mut ws.prev_x, &mut ws.prev_y] {
        v.resize(n0, 0.0);
    }
    let mut prev: Option<(usize, usize)> = None;
    for s in (finest..=coarsest).rev() {
        let lev = &ws.levels[s];
        let (lw, lh) = (lev.w, lev.h);
        let ln = lw * lh;
        match prev {
            None => {
                ws.ux[..ln].iter_mut().for_each(|v| *v = 0.0);
                ws.uy[..ln].iter_mut().for_each(|v| *v = 0.0);
            }
            Some((pw, ph)) => {
                imgops::resize_bilinear(&ws.prev_x[..pw * ph], pw, ph, &mut ws.ux[..ln], lw, lh);
                imgops::resize_bilinear(&ws.prev_y[..pw * ph], pw, ph, &mut ws.uy[..ln], lw, lh);
                ws.ux[..ln].iter_mut().for_each(|v| *v *= 2.0);
                ws.uy[..ln].iter_mut().for_each(|v| *v *= 2.0);
            }
        }
        if lw >= psz && lh >= psz {
            let stride = cfg.patch_stride;
            let pws = 1 + (lw - psz) / stride;
            let phs = 1 + (lh - psz) / stride;
            ws.sx.resize(pws * phs, 0.0);
            ws.sy.resize(pws * phs, 0.0);
            ws.tensor.resize(pws * phs, [0.0; 5]);
            structure_tensor(lev, psz, stride, pws, phs, cfg.use_mean_normalization, &mut ws.tensor);
            inverse_search(
                cfg,
                lev,
                pws,
                phs,
                &ws.ux[..ln],
                &ws.uy[..ln],
                &ws.tensor,
                &mut ws.sx,
                &mut ws.sy,
            );
            densify(lev, psz, stride, pws, phs, &ws.sx, &ws.sy, &mut ws.ux[..ln], &mut ws.uy[..ln]);
        }
        if cfg.variational_refinement_iterations > 0 {
            refine(cfg, lev, &mut ws.ux[..ln], &mut ws.uy[..ln], &mut ws.vr);
        }
        ws.prev_x[..ln].copy_from_slice(&ws.ux[..ln]);
        ws.prev_y[..ln].copy_from_slice(&ws.uy[..ln]);
        prev = Some((lw, lh));
    }
    if finest > 0 {
        let (pw, ph) = prev.unwrap_or((w, h));
        let k = (1usize << finest) as f32;
        imgops::resize_bilinear(&ws.prev_x[..pw * ph], pw, ph, &mut ws.ux[..n0], w, h);
        imgops::resize_bilinear(&ws.prev_y[..pw * ph], pw, ph, &mut ws.uy[..n0], w, h);
        ws.ux.iter_mut().for_each(|v| *v *= k);
        ws.uy.iter_mut().for_each(|v| *v *= k);
    }
}

fn structure_tensor(
    lev: &Level,
    psz: usize,
    stride: usize,
    pws: usize,
    phs: usize,
    mean_norm: bool,
    out: &mut [[f32; 5]],
) {
    let n = (psz * psz) as f32;
    for is in 0..phs {
        for js in 0..pws {
            let (i0, j0) = (is * stride, js * stride);
            let (mut xx, mut xy, mut yy, mut sx, mut sy) = (0.0f32, 0.0f32, 0.0f32, 0.0f32, 0.0f32);
            for i in i0..i0 + psz {
                for j in j0..j0 + psz {
                    let gx = lev.i0x[i * lev.w + j];
                    let gy = lev.i0y[i * lev.w + j];
                    xx += gx * gx;
                    xy += gx * gy;
                    yy += gy * gy;
                    sx += gx;
                    sy += gy;
                }
            }
            if mean_norm {
                xx -= sx * sx / n;
                xy -= sx * sy / n;
                yy -= sy * sy / n;
            }
            out[is * pws + js] = [xx, xy, yy, sx, sy];
        }
    }
}

/// Bilinear sampling weights and clamped integer corner of `I1` at a patch offset.
#[inline]
fn patch_diff(lev: &Level, i0: usize, j0: usize, psz: usize, ux: f32, uy: f32, out: &mut [f32]) {
    let (w, h) = (lev.w, lev.h);
    // OpenCV clamps the patch position to at most one patch outside the image
    let y = (i0 as f32 + uy).clamp(-(psz as f32) + 1.0, h as f32 - 1.0);
    let x = (j0 as f32 + ux).clamp(-(psz as f32) + 1.0, w as f32 - 1.0);
    let fy = y.floor();
    let fx = x.floor();
    let (ty, tx) = (y - fy, x - fx);
    let (w00, w01, w10, w11) = ((1.0 - ty) * (1.0 - tx), (1.0 - ty) * tx, ty * (1.0 - tx), ty * tx);
    let (iy, ix) = (fy as isize, fx as isize);
    let cl = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    for r in 0..psz {
        let ya = cl(iy + r as isize, h) * w;
        let yb = cl(iy + r as isize + 1, h) * w;
        let t = &lev.i0[(i0 + r) * w + j0..(i0 + r) * w + j0 + psz];
        for c in 0..psz {
            let xa = cl(ix + c as isize, w);
            let xb = cl(ix + c as isize + 1, w);
            let v =
                w00 * lev.i1[ya + xa] + w01 * lev.i1[ya + xb] + w10 * lev.i1[yb + xa] + w11 * lev.i1[yb + xb];
            out[r * psz + c] = v - t[c];
        }
    }
}

fn ssd(diff: &[f32], mean_norm: bool) -> f32 {
    let s: f32 = diff.iter().sum();
    let s2: f32 = diff.iter().map(|d| d * d).sum();
    if mean_norm {
        s2 - s * s / diff.len() as f32
    } else {
        s2
    }
}

#[allow(clippy::too_many_arguments)]
fn inverse_search(
    cfg: &DisConfig,
    lev: &Level,
    pws: usize,
    phs: usize,
    ux: &[f32],
    uy: &[f32],
    tensor: &[[f32; 5]],
    sx: &mut [f32],
    sy: &mut [f32],
) {
    let psz = cfg.patch_size;
    let stride = cfg.patch_stride;
    let psz2 = psz / 2;
    let w = lev.w;
    let n = (psz * psz) as f32;
    let mut diff = [0.0f32; 64 * 64];
    let diff = &mut diff[..psz * psz];
    let num_iter = 2;
    let inner = (cfg.grad_descent_iterations / num_iter).max(1);
    let mn = cfg.use_mean_normalization;
    for pass in 0..num_iter {
        let forward = pass % 2 == 0;
        for step_i in 0..phs {
            let is = if forward { step_i } else { phs - 1 - step_i };
            for step_j in 0..pws {
                let js = if forward { step_j } else { pws - 1 - step_j };
                let k = is * pws + js;
                let (i0, j0) = (is * stride, js * stride);
                if pass == 0 {
                    sx[k] = ux[(i0 + psz2) * w + j0 + psz2];
                    sy[k] = uy[(i0 + psz2) * w + j0 + psz2];
                }
                if cfg.use_spatial_propagation {
                    patch_diff(lev, i0, j0, psz, sx[k], sy[k], diff);
                    let mut best = ssd(diff, mn);
                    let neighbours = [
                        if forward { (step_j > 0).then(|| k - 1) } else { (step_j > 0).then(|| k + 1) },
                        if forward { (step_i > 0).then(|| k - pws) } else { (step_i > 0).then(|| k + pws) },
                    ];
                    for nb in neighbours.into_iter().flatten() {
                        patch_diff(lev, i0, j0, psz, sx[nb], sy[nb], diff);
                        let c = ssd(diff, mn);
                        if c < best {
                            best = c;
                            sx[k] = sx[nb];
                            sy[k] = sy[nb];
                        }
                    }
                }
                let (start_x, start_y) = (sx[k], sy[k]);
                let [xx, xy, yy, gsx, gsy] = tensor[k];
                let mut det = xx * yy - xy * xy;
                if det.abs() < 1e-3 {
                    det = 1e-3;
                }
                let (h11, h12, h22) = (yy / det, -xy / det, xx / det);
                let (mut cx, mut cy) = (start_x, start_y);
                let mut prev_ssd = f32::INFINITY;
                for _ in 0..inner {
                    patch_diff(lev, i0, j0, psz, cx, cy, diff);
                    let (mut du, mut dv, mut sd, mut sd2) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
                    for r in 0..psz {
                        let row = (i0 + r) * w + j0;
                        let gx = &lev.i0x[row..row + psz];
                        let gy = &lev.i0y[row..row + psz];
                        let d = &diff[r * psz..r * psz + psz];
                        for c in 0..psz {
                            du += d[c] * gx[c];
                            dv += d[c] * gy[c];
                            sd += d[c];
                            sd2 += d[c] * d[c];
                        }
                    }
                    let cur_ssd = if mn {
                        du -= sd * gsx / n;
                        dv -= sd * gsy / n;
                        sd2 - sd * sd / n
                    } else {
                        sd2
                    };
                    cx -= h11 * du + h12 * dv;
                    cy -= h12 * du + h22 * dv;
                    if cur_ssd >= prev_ssd {
                        break;
                    }
                    prev_ssd = cur_ssd;
                }
                if (cx - start_x).hypot(cy - start_y) <= psz as f32 {
                    sx[k] = cx;
                    sy[k] = cy;
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn densify(
    lev: &Level,
    psz: usize,
    stride: usize,
    pws: usize,
    phs: usize,
    sx: &[f32],
    sy: &[f32],
    ux: &mut [f32],
    uy: &mut [f32],
) {
    let (w, h) = (lev.w, lev.h);
    let range = |p: usize, count: usize| {
        // patches whose span [q*stride, q*stride + psz) contains p; nearest patch if none
        let hi = (p / stride).min(count - 1);
        let lo = if p + 1 > psz { (p + 1 - psz).div_ceil(stride) } else { 0 };
        (lo.min(hi), hi)
    };
    for y in 0..h {
        let (ilo, ihi) = range(y, phs);
        for x in 0..w {
            let (jlo, jhi) = range(x, pws);
            let i0v = lev.i0[y * w + x];
            let (mut su, mut sv, mut sc) = (0.0f32, 0.0f32, 0.0f32);
            for is in ilo..=ihi {
                for js in jlo..=jhi {
                    let k = is * pws + js;
                    let v = imgops::sample_bilinear(&lev.i1, w, h, x as f32 + sx[k], y as f32 + sy[k]);
                    let coef = 1.0 / (v - i0v).abs().max(1.0);
                    su += coef * sx[k];
                    sv += coef * sy[k];
                    sc += coef;
                }
            }
            ux[y * w + x] = su / sc;
            uy[y * w + x] = sv / sc;
        }
    }
}

/// Simplified variational refinement (see the module docs).
fn refine(cfg: &DisConfig, lev: &Level, ux: &mut [f32], uy: &mut [f32], vr: &mut Refine) {
    let (w, h) = (lev.w, lev.h);
    let n = w * h;
    for v in [
        &mut vr.i1w,
        &mut vr.i1x,
        &mut vr.i1y,
        &mut vr.ax,
        &mut vr.ay,
        &mut vr.smooth,
        &mut vr.du,
        &mut vr.dv,
    ] {
        v.resize(n, 0.0);
    }
    vr.data.resize(n, [0.0; 5]);
    vr.deriv.resize(n, [0.0; 10]);
    // gradients of I1 (centred differences), then warp I1 and its gradient
    imgops::centered_gradient(&lev.i1, w, h, &mut vr.ax, &mut vr.ay);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let (px, py) = (x as f32 + ux[i], y as f32 + uy[i]);
            vr.i1w[i] = imgops::sample_bilinear(&lev.i1, w, h, px, py);
            vr.i1x[i] = imgops::sample_bilinear(&vr.ax, w, h, px, py);
            vr.i1y[i] = imgops::sample_bilinear(&vr.ay, w, h, px, py);
        }
    }
    // derivatives averaged between the frames, as in DeepFlow / OpenCV
    imgops::centered_gradient(&lev.i0, w, h, &mut vr.ax, &mut vr.ay);
    let (delta, gamma, alpha) = (
        cfg.variational_refinement_delta,
        cfg.variational_refinement_gamma,
        cfg.variational_refinement_alpha,
    );
    const ZETA2: f32 = 0.01;
    const EPS2: f32 = 1e-6;
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let xm = y * w + x.saturating_sub(1);
            let xp = y * w + (x + 1).min(w - 1);
            let ym = y.saturating_sub(1) * w + x;
            let yp = (y + 1).min(h - 1) * w + x;
            let ix = 0.5 * (vr.i1x[i] + vr.ax[i]);
            let iy = 0.5 * (vr.i1y[i] + vr.ay[i]);
            let iz = vr.i1w[i] - lev.i0[i];
            // second derivatives of the warped gradient and gradient differences
            let ixx = 0.5 * (vr.i1x[xp] - vr.i1x[xm]);
            let ixy = 0.5 * (vr.i1x[yp] - vr.i1x[ym]);
            let iyy = 0.5 * (vr.i1y[yp] - vr.i1y[ym]);
            let ixz = vr.i1x[i] - vr.ax[i];
            let iyz = vr.i1y[i] - vr.ay[i];
            // DeepFlow's normalisation of the data terms
            let nb = 1.0 / (ix * ix + iy * iy + ZETA2);
            let ng = 1.0 / (ixx * ixx + 2.0 * ixy * ixy + iyy * iyy + ZETA2);
            vr.deriv[i] = [ix, iy, iz, ixx, ixy, iyy, ixz, iyz, nb, ng];
        }
    }
    vr.du.iter_mut().for_each(|v| *v = 0.0);
    vr.dv.iter_mut().for_each(|v| *v = 0.0);
    for _fp in 0..cfg.variational_refinement_iterations {
        // robust weights at the current increment
        for i in 0..n {
            let [ix, iy, iz, ixx, ixy, iyy, ixz, iyz, nb, ng] = vr.deriv[i];
            let (du, dv) = (vr.du[i], vr.dv[i]);
            let rb = iz + ix * du + iy * dv;
            // Charbonnier weights of the normalised terms: delta * nb * psi'(nb * r²)
            let wb = delta * nb * 0.5 / (nb * rb * rb + EPS2).sqrt();
            let rgx = ixz + ixx * du + ixy * dv;
            let rgy = iyz + ixy * du + iyy * dv;
            let wg = gamma * ng * 0.5 / (ng * (rgx * rgx + rgy * rgy) + EPS2).sqrt();
            vr.data[i] = [
                wb * ix * ix + wg * (ixx * ixx + ixy * ixy),
                wb * ix * iy + wg * (ixx * ixy + ixy * iyy),
                wb * iy * iy + wg * (ixy * ixy + iyy * iyy),
                -(wb * ix * iz + wg * (ixx * ixz + ixy * iyz)),
                -(wb * iy * iz + wg * (ixy * ixz + iyy * iyz)),
            ];
        }
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let xp = if x + 1 < w { i + 1 } else { i };
                let yp = if y + 1 < h { i + w } else { i };
                let gx1 = ux[xp] + vr.du[xp] - ux[i] - vr.du[i];
                let gy1 = ux[yp] + vr.du[yp] - ux[i] - vr.du[i];
                let gx2 = uy[xp] + vr.dv[xp] - uy[i] - vr.dv[i];
                let gy2 = uy[yp] + vr.dv[yp] - uy[i] - vr.dv[i];
                vr.smooth[i] = alpha * 0.5 / (gx1 * gx1 + gy1 * gy1 + gx2 * gx2 + gy2 * gy2 + EPS2).sqrt();
            }
        }
        // the diagonal of each pixel's 2x2 system is fixed during the sweeps: store its inverse
        // in place of a11 / a22 (no division inside the sweeps)
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let mut sw = 0.0;
                if x > 0 {
                    sw += vr.smooth[i - 1];
                }
                if x + 1 < w {
                    sw += vr.smooth[i];
                }
                if y > 0 {
                    sw += vr.smooth[i - w];
                }
                if y + 1 < h {
                    sw += vr.smooth[i];
                }
                let d = &mut vr.data[i];
                d[0] = 1.0 / (d[0] + sw + 1e-9);
                d[2] = 1.0 / (d[2] + sw + 1e-9);
            }
        }
        sor_sweeps(w, h, ux, uy, &vr.smooth, &vr.data, &mut vr.du, &mut vr.dv, 5);
    }
    for i in 0..n {
        ux[i] += vr.du[i];
        uy[i] += vr.dv[i];
    }
}

/// Red-black successive over-relaxation sweeps of the linearised Euler-Lagrange equations for the
/// increments `(du, dv)`; neighbour weights are the smoothness weights of the edge.
#[allow(clippy::too_many_arguments)]
fn sor_sweeps(
    w: usize,
    h: usize,
    ux: &[f32],
    uy: &[f32],
    smooth: &[f32],
    data: &[[f32; 5]],
    du: &mut [f32],
    dv: &mut [f32],
    sweeps: usize,
) {
    const OMEGA: f32 = 1.6;
    let n = w * h;
    let (ux, uy, smooth, data) = (&ux[..n], &uy[..n], &smooth[..n], &data[..n]);
    let (du, dv) = (&mut du[..n], &mut dv[..n]);
    // red-black ordering: pixels of one colour are independent (no dependency chain)
    for _ in 0..sweeps {
        for colour in 0..2 {
            for y in 0..h {
                for x in ((y + colour) % 2..w).step_by(2) {
                    let i = y * w + x;
                    let (mut su, mut sv) = (0.0f32, 0.0f32);
                    let (u0, v0) = (ux[i], uy[i]);
                    if x > 0 {
                        let (j, wt) = (i - 1, smooth[i - 1]);
                        su += wt * (ux[j] + du[j] - u0);
                        sv += wt * (uy[j] + dv[j] - v0);
                    }
                    if x + 1 < w {
                        let (j, wt) = (i + 1, smooth[i]);
                        su += wt * (ux[j] + du[j] - u0);
                        sv += wt * (uy[j] + dv[j] - v0);
                    }
                    if y > 0 {
                        let (j, wt) = (i - w, smooth[i - w]);
                        su += wt * (ux[j] + du[j] - u0);
                        sv += wt * (uy[j] + dv[j] - v0);
                    }
                    if y + 1 < h {
                        let (j, wt) = (i + w, smooth[i]);
                        su += wt * (ux[j] + du[j] - u0);
                        sv += wt * (uy[j] + dv[j] - v0);
                    }
                    // data[i] = [1 / (a11 + Σw), a12, 1 / (a22 + Σw), b1, b2]
                    let [i11, a12, i22, b1, b2] = data[i];
                    let du_new = (b1 - a12 * dv[i] + su) * i11;
                    let dui = du[i] + OMEGA * (du_new - du[i]);
                    du[i] = dui;
                    let dv_new = (b2 - a12 * dui + sv) * i22;
                    dv[i] += OMEGA * (dv_new - dv[i]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_opencv() {
        let u = DisConfig::ultrafast();
        assert_eq!((u.finest_scale, u.patch_size, u.patch_stride, u.grad_descent_iterations), (2, 8, 4, 12));
        assert_eq!(u.variational_refinement_iterations, 0);
        let f = DisConfig::fast();
        assert_eq!(
            (f.finest_scale, f.patch_stride, f.grad_descent_iterations, f.variational_refinement_iterations),
            (2, 4, 16, 5)
        );
        let m = DisConfig::medium();
        assert_eq!(
            (m.finest_scale, m.patch_stride, m.grad_descent_iterations, m.variational_refinement_iterations),
            (1, 3, 25, 5)
        );
        assert_eq!(m.preset_name(), "medium");
        assert_eq!(DisConfig { patch_size: 12, ..m }.preset_name(), "custom");
    }

    #[test]
    fn coarsest_scale_as_opencv() {
        assert_eq!(coarsest_scale(128, 128, 8), 2);
        assert_eq!(coarsest_scale(256, 256, 8), 3);
        assert_eq!(coarsest_scale(640, 480, 8), 4);
    }
}
