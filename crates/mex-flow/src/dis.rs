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
use mex_core::simd;
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
///
/// ```
/// use mex_flow::{synth, DisConfig, FlowEstimator};
/// # fn main() -> mex_flow::Result<()> {
/// let (f0, f1, truth) = synth::translated_pair(64, 64, 1.5, -0.7, 9);
/// let dis = DisConfig::medium().build()?;
/// let flow = dis.estimate(&f0, &f1)?;
/// assert!(flow.epe_interior(&truth, 8)? < 0.5);
/// # Ok(()) }
/// ```
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
    /// `I1` with a replicated border of `pad` pixels (rows of `w + 2 * pad`), so that a
    /// displaced patch is sampled without clamping indices.
    i1p: Vec<f32>,
    pad: usize,
}

impl Level {
    /// Fills `i1p` from `i1` with a border of `pad` replicated pixels.
    fn pad_i1(&mut self, pad: usize) {
        let (w, h) = (self.w, self.h);
        let wp = w + 2 * pad;
        self.pad = pad;
        self.i1p.resize(wp * (h + 2 * pad), 0.0);
        for (y, src) in self.i1.chunks_exact(w).enumerate() {
            let o = (y + pad) * wp + pad;
            self.i1p[o..o + w].copy_from_slice(src);
        }
        replicate_border(&mut self.i1p, w, h, pad);
    }
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
    /// Densification weights.
    sc: Vec<f32>,
    vr: Refine,
}

#[derive(Debug, Default)]
struct Refine {
    i1w: Vec<f32>,
    i1x: Vec<f32>,
    i1y: Vec<f32>,
    ax: Vec<f32>,
    ay: Vec<f32>,
    /// Planes ix, iy, iz, ixx, ixy, iyy, ixz, iyz and the two normalisers.
    deriv: Vec<f32>,
    /// Planes a11, a12, a22, b1, b2 of each pixel's linearised system.
    data: Vec<f32>,
    /// The flow (u, v) at the start of the refinement.
    flow: Vec<f32>,
    /// Edge weights to the right and below, and masks of the edges that exist.
    edges: Vec<f32>,
    /// Increments and their SOR candidates.
    du: Vec<f32>,
    dv: Vec<f32>,
    tu: Vec<f32>,
    tv: Vec<f32>,
    /// Masks of the pixels of each colour (all bits set) for the red-black sweeps.
    keep: Vec<u32>,
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
#[inline(always)]
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
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx512() {
        // SAFETY: the CPU supports AVX-512F (checked at run time).
        unsafe { run_avx512(cfg, a, b, w, h, ws) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked at run time).
        unsafe { run_avx2(cfg, a, b, w, h, ws) };
        return;
    }
    run_impl(cfg, a, b, w, h, ws)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn run_avx512(cfg: &DisConfig, a: &[f32], b: &[f32], w: usize, h: usize, ws: &mut Workspace) {
    run_impl(cfg, a, b, w, h, ws)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn run_avx2(cfg: &DisConfig, a: &[f32], b: &[f32], w: usize, h: usize, ws: &mut Workspace) {
    run_impl(cfg, a, b, w, h, ws)
}

/// The whole estimation, compiled once per instruction set (see [`run`]); vector width only,
/// the arithmetic is the same.
#[inline(always)]
fn run_impl(cfg: &DisConfig, a: &[f32], b: &[f32], w: usize, h: usize, ws: &mut Workspace) {
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
            // patch positions are clamped to at most psz - 1 pixels outside the image, and
            // a patch reads psz + 1 columns / rows from there
            lev.pad_i1(psz + 1);
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
            ws.sc.resize(ln, 0.0);
            densify(
                lev,
                psz,
                stride,
                pws,
                phs,
                &ws.sx,
                &ws.sy,
                &mut ws.ux[..ln],
                &mut ws.uy[..ln],
                &mut ws.sc,
            );
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

#[inline(always)]
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

/// Where a patch of `I1` displaced by a flow vector is sampled: the index of its top-left
/// tap in the padded `I1` and the four bilinear weights.
struct PatchWarp {
    base: usize,
    wts: [f32; 4],
}

impl PatchWarp {
    #[inline]
    fn new(lev: &Level, i0: usize, j0: usize, psz: usize, ux: f32, uy: f32) -> Self {
        let (w, h) = (lev.w, lev.h);
        // OpenCV clamps the patch position to at most one patch outside the image
        let y = (i0 as f32 + uy).clamp(-(psz as f32) + 1.0, h as f32 - 1.0);
        let x = (j0 as f32 + ux).clamp(-(psz as f32) + 1.0, w as f32 - 1.0);
        let fy = y.floor();
        let fx = x.floor();
        let (ty, tx) = (y - fy, x - fx);
        let wts = [(1.0 - ty) * (1.0 - tx), (1.0 - ty) * tx, ty * (1.0 - tx), ty * tx];
        // fy, fx >= 1 - psz and pad = psz + 1: the padded indices are positive
        let pad = lev.pad as isize;
        let wp = w + 2 * lev.pad;
        let base = (fy as isize + pad) as usize * wp + (fx as isize + pad) as usize;
        Self { base, wts }
    }

    /// Row `r` of the warped patch minus the template row `t` (`out.len() == t.len()`).
    /// Reading the replicated border equals clamping the indices into the image.
    #[inline(always)]
    fn diff_row(&self, lev: &Level, r: usize, t: &[f32], out: &mut [f32]) {
        let wp = lev.w + 2 * lev.pad;
        let psz = t.len();
        let [w00, w01, w10, w11] = self.wts;
        let ya = self.base + r * wp;
        let a = &lev.i1p[ya..ya + psz + 1];
        let b = &lev.i1p[ya + wp..ya + wp + psz + 1];
        for c in 0..psz {
            out[c] = (w00 * a[c] + w01 * a[c + 1] + w10 * b[c] + w11 * b[c + 1]) - t[c];
        }
    }
}

/// Eight-lane partial sums (the lanes are added at the end), so that the sums vectorise.
type Lanes = [f32; 8];

#[inline(always)]
fn lane_sum(l: &Lanes) -> f32 {
    ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]))
}

/// Sums over the patch at `(i0, j0)` of the difference `d = I1(x + u) - I0(x)`:
/// `[Σ d·∂xI0, Σ d·∂yI0, Σ d, Σ d²]`; with `GRAD = false` only the last two are formed.
#[inline(always)]
fn patch_sums<const GRAD: bool>(lev: &Level, i0: usize, j0: usize, psz: usize, ux: f32, uy: f32) -> [f32; 4] {
    let w = lev.w;
    let pw = PatchWarp::new(lev, i0, j0, psz, ux, uy);
    let mut acc = [[0.0f32; 8]; 4];
    let mut d = [0.0f32; 64];
    let d = &mut d[..psz];
    let n8 = psz / 8 * 8;
    for r in 0..psz {
        let row = (i0 + r) * w + j0;
        pw.diff_row(lev, r, &lev.i0[row..row + psz], d);
        let gx = &lev.i0x[row..row + psz];
        let gy = &lev.i0y[row..row + psz];
        for k in (0..n8).step_by(8) {
            for l in 0..8 {
                let v = d[k + l];
                if GRAD {
                    acc[0][l] += v * gx[k + l];
                    acc[1][l] += v * gy[k + l];
                }
                acc[2][l] += v;
                acc[3][l] += v * v;
            }
        }
        for k in n8..psz {
            let v = d[k];
            if GRAD {
                acc[0][0] += v * gx[k];
                acc[1][0] += v * gy[k];
            }
            acc[2][0] += v;
            acc[3][0] += v * v;
        }
    }
    [lane_sum(&acc[0]), lane_sum(&acc[1]), lane_sum(&acc[2]), lane_sum(&acc[3])]
}

/// The (mean-normalised) SSD of a patch at a flow vector.
#[inline]
fn patch_ssd(lev: &Level, i0: usize, j0: usize, psz: usize, ux: f32, uy: f32, mean_norm: bool) -> f32 {
    let [_, _, s, s2] = patch_sums::<false>(lev, i0, j0, psz, ux, uy);
    if mean_norm {
        s2 - s * s / (psz * psz) as f32
    } else {
        s2
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
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
                    let mut best = patch_ssd(lev, i0, j0, psz, sx[k], sy[k], mn);
                    let neighbours = [
                        if forward { (step_j > 0).then(|| k - 1) } else { (step_j > 0).then(|| k + 1) },
                        if forward { (step_i > 0).then(|| k - pws) } else { (step_i > 0).then(|| k + pws) },
                    ];
                    for nb in neighbours.into_iter().flatten() {
                        let c = patch_ssd(lev, i0, j0, psz, sx[nb], sy[nb], mn);
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
                    let [mut du, mut dv, sd, sd2] = patch_sums::<true>(lev, i0, j0, psz, cx, cy);
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

/// Densification: every pixel's flow is the average of the flow vectors of the patches that
/// cover it, each weighted by `1 / max(|I1(x + u) - I0(x)|, 1)`; pixels right of or below the
/// last patch take the last patch's vector. Runs patch by patch (a patch's samples share
/// their bilinear weights), accumulating in patch order; `sc` is scratch of `w * h`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
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
    sc: &mut [f32],
) {
    let (w, h) = (lev.w, lev.h);
    let n = w * h;
    let (ux, uy, sc) = (&mut ux[..n], &mut uy[..n], &mut sc[..n]);
    ux.fill(0.0);
    uy.fill(0.0);
    sc.fill(0.0);
    for is in 0..phs {
        let ya = is * stride;
        let yb = if is + 1 == phs { h } else { ya + psz };
        for js in 0..pws {
            let k = is * pws + js;
            let (fu, fv) = (sx[k], sy[k]);
            let xa = js * stride;
            let xb = if js + 1 == pws { w } else { xa + psz };
            let (px, py) = (xa as f32 + fu, ya as f32 + fv);
            let (fx, fy) = (px.floor(), py.floor());
            let inside = fx >= 0.0 && fy >= 0.0 && fx as usize + (xb - xa) < w && fy as usize + (yb - ya) < h;
            if inside {
                let (tx, ty) = (px - fx, py - fy);
                let (ix, iy) = (fx as usize, fy as usize);
                for (r, y) in (ya..yb).enumerate() {
                    let s0 = (iy + r) * w + ix;
                    let a = &lev.i1[s0..s0 + (xb - xa) + 1];
                    let b = &lev.i1[s0 + w..s0 + w + (xb - xa) + 1];
                    let row = y * w + xa..y * w + xb;
                    let t = &lev.i0[row.clone()];
                    let (ou, ov, oc) = (&mut ux[row.clone()], &mut uy[row.clone()], &mut sc[row]);
                    for c in 0..xb - xa {
                        let top = a[c] + tx * (a[c + 1] - a[c]);
                        let bot = b[c] + tx * (b[c + 1] - b[c]);
                        let v = top + ty * (bot - top);
                        let coef = 1.0 / (v - t[c]).abs().max(1.0);
                        ou[c] += coef * fu;
                        ov[c] += coef * fv;
                        oc[c] += coef;
                    }
                }
            } else {
                for y in ya..yb {
                    for x in xa..xb {
                        let i = y * w + x;
                        let v = imgops::sample_bilinear(&lev.i1, w, h, x as f32 + fu, y as f32 + fv);
                        let coef = 1.0 / (v - lev.i0[i]).abs().max(1.0);
                        ux[i] += coef * fu;
                        uy[i] += coef * fv;
                        sc[i] += coef;
                    }
                }
            }
        }
    }
    for ((u, v), &c) in ux.iter_mut().zip(uy.iter_mut()).zip(sc.iter()) {
        *u /= c;
        *v /= c;
    }
}

/// Replicates the outermost image rows and columns of a padded plane (rows of `w + 2 pad`
/// values, the image at offset `pad` in both directions) into its border of `pad` pixels.
fn replicate_border(p: &mut [f32], w: usize, h: usize, pad: usize) {
    let pw = w + 2 * pad;
    for row in p[pad * pw..(pad + h) * pw].chunks_exact_mut(pw) {
        let (first, last) = (row[pad], row[pad + w - 1]);
        row[..pad].fill(first);
        row[pad + w..].fill(last);
    }
    for y in 0..pad {
        p.copy_within(pad * pw..(pad + 1) * pw, y * pw);
        p.copy_within((pad + h - 1) * pw..(pad + h) * pw, (pad + h + y) * pw);
    }
}

/// Simplified variational refinement (see the module docs), on planar buffers (compiled in
/// [`run`]'s per-instruction-set copies). The increments `du, dv`, the flow copies `pu, pv` and the
/// edge weights `wr` (to the right neighbour) and `wd` (to the one below) live on planes with a
/// one-pixel border, where the weights are zero: every pixel's update is then the same
/// branch-free expression, and a row vectorises.
#[inline(always)]
fn refine(cfg: &DisConfig, lev: &Level, ux: &mut [f32], uy: &mut [f32], vr: &mut Refine) {
    let (w, h) = (lev.w, lev.h);
    let n = w * h;
    let pw = w + 2;
    let np = pw * (h + 2);
    let (ux, uy) = (&mut ux[..n], &mut uy[..n]);
    for v in [&mut vr.i1w, &mut vr.i1x, &mut vr.i1y, &mut vr.ax, &mut vr.ay] {
        v.resize(n, 0.0);
    }
    for (v, planes) in [(&mut vr.deriv, 10), (&mut vr.data, 5), (&mut vr.flow, 2), (&mut vr.edges, 4)] {
        v.clear();
        v.resize(planes * np, 0.0);
    }
    for v in [&mut vr.du, &mut vr.dv, &mut vr.tu, &mut vr.tv] {
        v.clear();
        v.resize(np, 0.0);
    }
    vr.keep.clear();
    vr.keep.resize(2 * np, 0);
    warp_i1(lev, ux, uy, [&mut vr.i1w, &mut vr.i1x, &mut vr.i1y], [&mut vr.ax, &mut vr.ay]);
    let (delta, gamma, alpha) = (
        cfg.variational_refinement_delta,
        cfg.variational_refinement_gamma,
        cfg.variational_refinement_alpha,
    );
    const ZETA2: f32 = 0.01;
    const EPS2: f32 = 1e-6;
    const OMEGA: f32 = 1.6;
    let [dix, diy, diz, dixx, dixy, diyy, dixz, diyz, dnb, dng] = planes_mut::<10, _>(&mut vr.deriv, np);
    let [pu, pv] = planes_mut::<2, _>(&mut vr.flow, np);
    let [wr, wd, mr, md] = planes_mut::<4, _>(&mut vr.edges, np);
    let [keep0, keep1] = planes_mut::<2, _>(&mut vr.keep, np);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let p = (y + 1) * pw + x + 1;
            let xm = y * w + x.saturating_sub(1);
            let xp = y * w + (x + 1).min(w - 1);
            let ym = y.saturating_sub(1) * w + x;
            let yp = (y + 1).min(h - 1) * w + x;
            let ix = 0.5 * (vr.i1x[i] + vr.ax[i]);
            let iy = 0.5 * (vr.i1y[i] + vr.ay[i]);
            // second derivatives of the warped gradient and gradient differences
            let ixx = 0.5 * (vr.i1x[xp] - vr.i1x[xm]);
            let ixy = 0.5 * (vr.i1x[yp] - vr.i1x[ym]);
            let iyy = 0.5 * (vr.i1y[yp] - vr.i1y[ym]);
            dix[p] = ix;
            diy[p] = iy;
            diz[p] = vr.i1w[i] - lev.i0[i];
            dixx[p] = ixx;
            dixy[p] = ixy;
            diyy[p] = iyy;
            dixz[p] = vr.i1x[i] - vr.ax[i];
            diyz[p] = vr.i1y[i] - vr.ay[i];
            // DeepFlow's normalisation of the data terms
            dnb[p] = 1.0 / (ix * ix + iy * iy + ZETA2);
            dng[p] = 1.0 / (ixx * ixx + 2.0 * ixy * ixy + iyy * iyy + ZETA2);
            pu[p] = ux[i];
            pv[p] = uy[i];
            // an edge to the right / below exists inside the image; the pixel's colour
            mr[p] = if x + 1 < w { 1.0 } else { 0.0 };
            md[p] = if y + 1 < h { 1.0 } else { 0.0 };
            if (x + y) % 2 == 0 {
                keep0[p] = u32::MAX;
            } else {
                keep1[p] = u32::MAX;
            }
        }
    }
    replicate_border(pu, w, h, 1);
    replicate_border(pv, w, h, 1);
    let (pu, pv, mr, md) = (&*pu, &*pv, &*mr, &*md);
    let (dix, diy, diz, dixx, dixy) = (&*dix, &*diy, &*diz, &*dixx, &*dixy);
    let (diyy, dixz, diyz, dnb, dng) = (&*diyy, &*dixz, &*diyz, &*dnb, &*dng);
    let [a11, a12, a22, b1, b2] = planes_mut::<5, _>(&mut vr.data, np);
    let (du, dv, tu, tv) = (&mut vr.du[..np], &mut vr.dv[..np], &mut vr.tu[..np], &mut vr.tv[..np]);
    // Every pass below runs over the rows 1..=h of the padded planes as one flat range,
    // border columns included: their values are finite and never used (their edge weights are
    // zero and they are never kept).
    let lo = pw;
    let hi = np - pw;
    // the flat range shifted to a neighbour
    let at = |off: isize| (lo as isize + off) as usize..(hi as isize + off) as usize;
    let up = -(pw as isize);
    let dn = pw as isize;
    for _fp in 0..cfg.variational_refinement_iterations {
        // robust weights of the data terms at the current increment
        {
            let r = lo..hi;
            let (ix, iy, iz, ixx, ixy) =
                (&dix[r.clone()], &diy[r.clone()], &diz[r.clone()], &dixx[r.clone()], &dixy[r.clone()]);
            let (iyy, ixz, iyz, nb, ng) =
                (&diyy[r.clone()], &dixz[r.clone()], &diyz[r.clone()], &dnb[r.clone()], &dng[r.clone()]);
            let (dur, dvr) = (&du[r.clone()], &dv[r.clone()]);
            let (o11, o12, o22) = (&mut a11[r.clone()], &mut a12[r.clone()], &mut a22[r.clone()]);
            let (o1, o2) = (&mut b1[r.clone()], &mut b2[r]);
            for x in 0..hi - lo {
                let (ix, iy, iz, ixx, ixy, iyy) = (ix[x], iy[x], iz[x], ixx[x], ixy[x], iyy[x]);
                let (ixz, iyz, nb, ng) = (ixz[x], iyz[x], nb[x], ng[x]);
                let (du, dv) = (dur[x], dvr[x]);
                let rb = iz + ix * du + iy * dv;
                // Charbonnier weights of the normalised terms: delta * nb * psi'(nb * r²)
                let wb = delta * nb * 0.5 / (nb * rb * rb + EPS2).sqrt();
                let rgx = ixz + ixx * du + ixy * dv;
                let rgy = iyz + ixy * du + iyy * dv;
                let wg = gamma * ng * 0.5 / (ng * (rgx * rgx + rgy * rgy) + EPS2).sqrt();
                o11[x] = wb * ix * ix + wg * (ixx * ixx + ixy * ixy);
                o12[x] = wb * ix * iy + wg * (ixx * ixy + ixy * iyy);
                o22[x] = wb * iy * iy + wg * (ixy * ixy + iyy * iyy);
                o1[x] = -(wb * ix * iz + wg * (ixx * ixz + ixy * iyz));
                o2[x] = -(wb * iy * iz + wg * (ixy * ixz + iyy * iyz));
            }
        }
        // smoothness weights of the edges to the right and below; the gradient at the last
        // column / row is zero (replicated border), the weight of an edge leaving the image too
        replicate_border(du, w, h, 1);
        replicate_border(dv, w, h, 1);
        {
            let (uc, ur, ud) = (&pu[at(0)], &pu[at(1)], &pu[at(dn)]);
            let (vc, vr_, vd) = (&pv[at(0)], &pv[at(1)], &pv[at(dn)]);
            let (duc, dur, dud) = (&du[at(0)], &du[at(1)], &du[at(dn)]);
            let (dvc, dvr, dvd) = (&dv[at(0)], &dv[at(1)], &dv[at(dn)]);
            let (mr, md) = (&mr[lo..hi], &md[lo..hi]);
            let (owr, owd) = (&mut wr[lo..hi], &mut wd[lo..hi]);
            for x in 0..hi - lo {
                let gx1 = ur[x] + dur[x] - uc[x] - duc[x];
                let gy1 = ud[x] + dud[x] - uc[x] - duc[x];
                let gx2 = vr_[x] + dvr[x] - vc[x] - dvc[x];
                let gy2 = vd[x] + dvd[x] - vc[x] - dvc[x];
                let s = alpha * 0.5 / (gx1 * gx1 + gy1 * gy1 + gx2 * gx2 + gy2 * gy2 + EPS2).sqrt();
                owr[x] = s * mr[x];
                owd[x] = s * md[x];
            }
        }
        // the diagonal of each pixel's 2x2 system is fixed during the sweeps: store its inverse
        // in place of a11 / a22; the flow's own smoothness term is fixed too: fold it into b
        {
            let (wl, wrr, wu, wdd) = (&wr[at(-1)], &wr[at(0)], &wd[at(up)], &wd[at(0)]);
            let (uc, ul, ur, uu, ud) = (&pu[at(0)], &pu[at(-1)], &pu[at(1)], &pu[at(up)], &pu[at(dn)]);
            let (vc, vl, vr_, vu, vd) = (&pv[at(0)], &pv[at(-1)], &pv[at(1)], &pv[at(up)], &pv[at(dn)]);
            let (o11, o22, o1, o2) = (&mut a11[lo..hi], &mut a22[lo..hi], &mut b1[lo..hi], &mut b2[lo..hi]);
            for x in 0..hi - lo {
                let sw = wl[x] + wrr[x] + wu[x] + wdd[x];
                o11[x] = 1.0 / (o11[x] + sw + 1e-9);
                o22[x] = 1.0 / (o22[x] + sw + 1e-9);
                let (u0, v0) = (uc[x], vc[x]);
                o1[x] += wl[x] * (ul[x] - u0)
                    + wrr[x] * (ur[x] - u0)
                    + wu[x] * (uu[x] - u0)
                    + wdd[x] * (ud[x] - u0);
                o2[x] += wl[x] * (vl[x] - v0)
                    + wrr[x] * (vr_[x] - v0)
                    + wu[x] * (vu[x] - v0)
                    + wdd[x] * (vd[x] - v0);
            }
        }
        // red-black SOR: the pixels of one colour depend only on pixels of the other, so all
        // pixels are computed into `tu, tv` and those of the colour are kept
        let (wl, wrr, wu, wdd) = (&wr[at(-1)], &wr[at(0)], &wd[at(up)], &wd[at(0)]);
        let (i11, c12, i22, c1, c2) = (&a11[lo..hi], &a12[lo..hi], &a22[lo..hi], &b1[lo..hi], &b2[lo..hi]);
        for _ in 0..5 {
            for keep in [&keep0[lo..hi], &keep1[lo..hi]] {
                {
                    let (duc, dul, dur, duu, dud) =
                        (&du[at(0)], &du[at(-1)], &du[at(1)], &du[at(up)], &du[at(dn)]);
                    let (dvc, dvl, dvr, dvu, dvd) =
                        (&dv[at(0)], &dv[at(-1)], &dv[at(1)], &dv[at(up)], &dv[at(dn)]);
                    let (tu, tv) = (&mut tu[lo..hi], &mut tv[lo..hi]);
                    for x in 0..hi - lo {
                        let su = wl[x] * dul[x] + wrr[x] * dur[x] + wu[x] * duu[x] + wdd[x] * dud[x];
                        let sv = wl[x] * dvl[x] + wrr[x] * dvr[x] + wu[x] * dvu[x] + wdd[x] * dvd[x];
                        let du_new = (c1[x] - c12[x] * dvc[x] + su) * i11[x];
                        let dui = duc[x] + OMEGA * (du_new - duc[x]);
                        tu[x] = dui;
                        let dv_new = (c2[x] - c12[x] * dui + sv) * i22[x];
                        tv[x] = dvc[x] + OMEGA * (dv_new - dvc[x]);
                    }
                }
                // a bitwise select (all bits of `keep` set or none), which vectorises
                let sel =
                    |old: f32, new: f32, k: u32| f32::from_bits((new.to_bits() & k) | (old.to_bits() & !k));
                for ((d, &t), &k) in du[lo..hi].iter_mut().zip(&tu[lo..hi]).zip(keep) {
                    *d = sel(*d, t, k);
                }
                for ((d, &t), &k) in dv[lo..hi].iter_mut().zip(&tv[lo..hi]).zip(keep) {
                    *d = sel(*d, t, k);
                }
            }
        }
    }
    for y in 0..h {
        let p0 = (y + 1) * pw + 1;
        for x in 0..w {
            ux[y * w + x] += du[p0 + x];
            uy[y * w + x] += dv[p0 + x];
        }
    }
}

/// The refinement's warp: `I1`, `∂xI1` and `∂yI1` (centred differences) sampled bilinearly at
/// `x + u` into `warped`; `grad` ends holding the centred gradient of `I0` (the derivatives are
/// averaged between the frames, as in DeepFlow / OpenCV).
fn warp_i1(lev: &Level, ux: &[f32], uy: &[f32], warped: [&mut Vec<f32>; 3], grad: [&mut Vec<f32>; 2]) {
    let (w, h) = (lev.w, lev.h);
    let [i1w, i1x, i1y] = warped;
    let [ax, ay] = grad;
    imgops::centered_gradient(&lev.i1, w, h, ax, ay);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let (px, py) = (x as f32 + ux[i], y as f32 + uy[i]);
            i1w[i] = imgops::sample_bilinear(&lev.i1, w, h, px, py);
            i1x[i] = imgops::sample_bilinear(ax, w, h, px, py);
            i1y[i] = imgops::sample_bilinear(ay, w, h, px, py);
        }
    }
    imgops::centered_gradient(&lev.i0, w, h, ax, ay);
}

/// Splits `v` into `K` planes of `np` values.
fn planes_mut<const K: usize, T>(v: &mut [T], np: usize) -> [&mut [T]; K] {
    let mut rest = v;
    std::array::from_fn(|_| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(np);
        rest = tail;
        head
    })
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

    /// The buffers of the previous scalar refinement.
    #[derive(Default)]
    struct RefineReference {
        i1w: Vec<f32>,
        i1x: Vec<f32>,
        i1y: Vec<f32>,
        ax: Vec<f32>,
        ay: Vec<f32>,
        data: Vec<[f32; 5]>,
        deriv: Vec<[f32; 10]>,
        smooth: Vec<f32>,
        du: Vec<f32>,
        dv: Vec<f32>,
    }

    /// The previous scalar patch difference (clamped indices).
    #[inline]
    fn patch_diff_reference(
        lev: &Level,
        i0: usize,
        j0: usize,
        psz: usize,
        ux: f32,
        uy: f32,
        out: &mut [f32],
    ) {
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
                let v = w00 * lev.i1[ya + xa]
                    + w01 * lev.i1[ya + xb]
                    + w10 * lev.i1[yb + xa]
                    + w11 * lev.i1[yb + xb];
                out[r * psz + c] = v - t[c];
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn densify_reference(
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

    /// The previous scalar refinement (array-of-structs buffers, branchy borders).
    fn refine_reference(
        cfg: &DisConfig,
        lev: &Level,
        ux: &mut [f32],
        uy: &mut [f32],
        vr: &mut RefineReference,
    ) {
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
        warp_i1(lev, ux, uy, [&mut vr.i1w, &mut vr.i1x, &mut vr.i1y], [&mut vr.ax, &mut vr.ay]);
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
                    vr.smooth[i] =
                        alpha * 0.5 / (gx1 * gx1 + gy1 * gy1 + gx2 * gx2 + gy2 * gy2 + EPS2).sqrt();
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
            sor_sweeps_reference(w, h, ux, uy, &vr.smooth, &vr.data, &mut vr.du, &mut vr.dv, 5);
        }
        for i in 0..n {
            ux[i] += vr.du[i];
            uy[i] += vr.dv[i];
        }
    }

    /// Red-black successive over-relaxation sweeps of the linearised Euler-Lagrange equations for the
    /// increments `(du, dv)`; neighbour weights are the smoothness weights of the edge.
    #[allow(clippy::too_many_arguments)]
    fn sor_sweeps_reference(
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

    /// A level of two smooth textures shifted by a sub-pixel motion, odd sizes.
    fn test_level(w: usize, h: usize) -> Level {
        let tex = crate::synth::SmoothTexture::new(3);
        let i0: Vec<f32> = (0..w * h).map(|i| tex.eval((i % w) as f32, (i / w) as f32)).collect();
        let i1: Vec<f32> = (0..w * h)
            .map(|i| tex.eval((i % w) as f32 - 0.7 + 0.02 * (i / w) as f32, (i / w) as f32 + 0.4))
            .collect();
        let mut lev = Level { w, h, i0, i1, ..Level::default() };
        lev.i0x.resize(w * h, 0.0);
        lev.i0y.resize(w * h, 0.0);
        sobel(&lev.i0, w, h, &mut lev.i0x, &mut lev.i0y);
        lev.pad_i1(9);
        lev
    }

    /// A smooth random flow of a few pixels.
    fn test_flow(w: usize, h: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = crate::synth::SplitMix64::new(seed);
        let (a, b, c) =
            (rng.range(-2.0, 2.0) as f32, rng.range(-2.0, 2.0) as f32, rng.range(0.05, 0.3) as f32);
        let u = (0..w * h).map(|i| a + (c * (i % w) as f32).sin()).collect();
        let v = (0..w * h).map(|i| b + (c * (i / w) as f32).cos()).collect();
        (u, v)
    }

    #[test]
    fn patch_sums_match_the_clamped_scalar_reference() {
        let lev = test_level(37, 29);
        let mut diff = vec![0.0f32; 64];
        let mut worst = 0.0f32;
        // patches at the borders, displaced inside and outside (the clamped path)
        for (i0, j0) in [(0, 0), (0, 29), (21, 0), (21, 29), (10, 14)] {
            for (ux, uy) in [(0.3, -0.2), (-7.6, 2.25), (5.5, -8.9), (12.0, 11.0), (-0.999, 0.5)] {
                patch_diff_reference(&lev, i0, j0, 8, ux, uy, &mut diff);
                let mut want = [0.0f64; 4];
                for r in 0..8 {
                    for c in 0..8 {
                        let d = f64::from(diff[r * 8 + c]);
                        let k = (i0 + r) * lev.w + j0 + c;
                        want[0] += d * f64::from(lev.i0x[k]);
                        want[1] += d * f64::from(lev.i0y[k]);
                        want[2] += d;
                        want[3] += d * d;
                    }
                }
                let got = patch_sums::<true>(&lev, i0, j0, 8, ux, uy);
                for q in 0..4 {
                    let err = (f64::from(got[q]) - want[q]).abs() / want[q].abs().max(1.0);
                    worst = worst.max(err as f32);
                }
            }
        }
        assert!(worst < 1e-5, "relative error {worst}");
    }

    #[test]
    fn densify_matches_the_per_pixel_reference() {
        let lev = test_level(37, 29);
        let (psz, stride) = (8, 4);
        let (pws, phs) = (1 + (37 - psz) / stride, 1 + (29 - psz) / stride);
        let mut rng = crate::synth::SplitMix64::new(9);
        // some patches displaced far outside the image (the clamped path)
        let sx: Vec<f32> = (0..pws * phs).map(|_| rng.range(-9.0, 9.0) as f32).collect();
        let sy: Vec<f32> = (0..pws * phs).map(|_| rng.range(-9.0, 9.0) as f32).collect();
        let n = 37 * 29;
        let (mut u0, mut v0) = (vec![0.0; n], vec![0.0; n]);
        densify_reference(&lev, psz, stride, pws, phs, &sx, &sy, &mut u0, &mut v0);
        let (mut u1, mut v1, mut sc) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        densify(&lev, psz, stride, pws, phs, &sx, &sy, &mut u1, &mut v1, &mut sc);
        for i in 0..n {
            assert!((u0[i] - u1[i]).abs() < 1e-4 && (v0[i] - v1[i]).abs() < 1e-4, "pixel {i}");
        }
    }

    #[test]
    fn refine_matches_the_scalar_reference() {
        let cfg = DisConfig::fast();
        for (w, h, seed) in [(37, 29, 1), (32, 32, 2), (9, 13, 3)] {
            let lev = test_level(w, h);
            let (u, v) = test_flow(w, h, seed);
            let (mut u0, mut v0) = (u.clone(), v.clone());
            refine_reference(&cfg, &lev, &mut u0, &mut v0, &mut RefineReference::default());
            let (mut u1, mut v1) = (u.clone(), v.clone());
            let mut vr = Refine::default();
            refine(&cfg, &lev, &mut u1, &mut v1, &mut vr);
            let moved = u0.iter().zip(&u).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            let err = u0
                .iter()
                .zip(&u1)
                .chain(v0.iter().zip(&v1))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            // the refinement moves the flow; the two forms agree up to rounding
            assert!(moved > 1e-2, "{w}x{h}: refinement did not move the flow ({moved})");
            assert!(err < 1e-3, "{w}x{h}: max difference {err}");
            // the buffers are reused: a second call gives the same result
            let (mut u2, mut v2) = (u.clone(), v.clone());
            refine(&cfg, &lev, &mut u2, &mut v2, &mut vr);
            assert_eq!((u1, v1), (u2, v2));
        }
    }
}
