//! Dual TV-L1 optical flow (Zach, Pock and Bischof 2007), following the scheme of Sánchez,
//! Meinhardt-Llopis and Facciolo (IPOL 2013) as OpenCV's `DualTVL1OpticalFlow` implements it:
//! a pyramid of `nscales` levels (factor `scale_step`), `warps` bicubic warpings per level,
//! centred image gradients, the pointwise thresholding step, a primal update with the backward
//! divergence of the dual variable, a dual update with the forward gradient, inner / outer
//! iterations stopped by `epsilon`, and median filtering of the flow before each outer iteration.
//!
//! Implementation notes: `f32` throughout; the thresholding, primal update and stopping error
//! are fused in one pass over a row and the forward gradient with the dual update in a second;
//! all buffers live in a reusable workspace. Threads: each pass (warp, median, primal, dual) is a
//! rayon parallel loop over bands of rows; each band writes only its own rows, and the stopping
//! error is summed row by row in a fixed order, so results do not depend on the thread count.
//! On one thread, or for a small level, the passes run as plain loops.

use crate::error::{invalid, Result};
use crate::imgops::{self, CubicTaps};
use crate::{validate_pair, with_workspace, FlowEstimator, FlowField, GrayF32};
use mex_core::simd;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Dual TV-L1 parameters; `Default` equals OpenCV's `DualTVL1OpticalFlow::create()`.
///
/// ```
/// use mex_flow::{synth, FlowEstimator, TvL1Config};
/// # fn main() -> mex_flow::Result<()> {
/// let (f0, f1, truth) = synth::translated_pair(48, 48, 0.8, -0.5, 3);
/// let tvl1 = TvL1Config { warps: 3, ..TvL1Config::default() }.build()?;
/// let flow = tvl1.estimate(&f0, &f1)?;
/// assert!(flow.epe_interior(&truth, 8)? < 0.2);
/// // invalid parameters are typed errors, not panics
/// assert!(TvL1Config { tau: 0.5, ..TvL1Config::default() }.build().is_err());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TvL1Config {
    /// Time step of the numerical scheme (stable for `tau <= 0.25`). OpenCV: 0.25.
    pub tau: f32,
    /// Weight of the data term (smaller = smoother flow). OpenCV: 0.15.
    pub lambda: f32,
    /// Coupling between the primal `u` and the auxiliary `v`. OpenCV: 0.3.
    pub theta: f32,
    /// Number of pyramid levels. OpenCV: 5.
    pub nscales: usize,
    /// Warpings per level. OpenCV: 5.
    pub warps: usize,
    /// Stopping threshold on the RMS change of the flow per iteration. OpenCV: 0.01.
    pub epsilon: f32,
    /// Inner iterations (between median filterings). OpenCV: 30.
    pub inner_iterations: usize,
    /// Outer iterations per warping. OpenCV: 10.
    pub outer_iterations: usize,
    /// Down-scaling factor between levels, in (0, 1). OpenCV: 0.8.
    pub scale_step: f32,
    /// Weight of the illumination-change term (0 disables it). OpenCV: 0.
    pub gamma: f32,
    /// Median filter size applied to the flow (0 or 1 disables it). OpenCV: 5.
    pub median_filtering: usize,
    /// Gaussian presmoothing before each down-scaling (IPOL's `zoom_out`,
    /// `sigma = 0.6 sqrt(1/s² - 1)`). OpenCV does not presmooth: false.
    pub presmoothing: bool,
}

impl Default for TvL1Config {
    fn default() -> Self {
        Self {
            tau: 0.25,
            lambda: 0.15,
            theta: 0.3,
            nscales: 5,
            warps: 5,
            epsilon: 0.01,
            inner_iterations: 30,
            outer_iterations: 10,
            scale_step: 0.8,
            gamma: 0.0,
            median_filtering: 5,
            presmoothing: false,
        }
    }
}

impl TvL1Config {
    /// Checks every parameter.
    pub fn validate(&self) -> Result<()> {
        let pos = |name: &'static str, v: f32| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(invalid(name, v, "must be finite and > 0"))
            }
        };
        pos("tau", self.tau)?;
        pos("lambda", self.lambda)?;
        pos("theta", self.theta)?;
        pos("epsilon", self.epsilon)?;
        if self.tau > 0.25 {
            return Err(invalid("tau", self.tau, "the scheme is stable only for tau <= 0.25"));
        }
        if !(self.scale_step > 0.0 && self.scale_step < 1.0) {
            return Err(invalid("scale_step", self.scale_step, "must be in (0, 1)"));
        }
        if !(self.gamma.is_finite() && self.gamma >= 0.0) {
            return Err(invalid("gamma", self.gamma, "must be finite and >= 0"));
        }
        for (name, v) in [
            ("nscales", self.nscales),
            ("warps", self.warps),
            ("inner_iterations", self.inner_iterations),
            ("outer_iterations", self.outer_iterations),
        ] {
            if v == 0 {
                return Err(invalid(name, v, "must be >= 1"));
            }
        }
        if self.median_filtering > 1 && self.median_filtering.is_multiple_of(2) {
            return Err(invalid(
                "median_filtering",
                self.median_filtering,
                "must be odd (or 0/1 to disable)",
            ));
        }
        Ok(())
    }

    /// Validates and builds the estimator.
    pub fn build(&self) -> Result<TvL1> {
        self.validate()?;
        Ok(TvL1 { cfg: self.clone(), ws: Mutex::new(Workspace::default()) })
    }
}

/// The Dual TV-L1 estimator (see the module docs). Build it with [`TvL1Config::build`].
#[derive(Debug)]
pub struct TvL1 {
    cfg: TvL1Config,
    ws: Mutex<Workspace>,
}

impl TvL1 {
    /// The configuration.
    pub fn config(&self) -> &TvL1Config {
        &self.cfg
    }
}

/// Smallest side of the finest level.
const MIN_SIZE: usize = 16;

#[derive(Debug, Default)]
struct Workspace {
    sizes: Vec<(usize, usize)>,
    i0: Vec<Vec<f32>>,
    i1: Vec<Vec<f32>>,
    u1: Vec<Vec<f32>>,
    u2: Vec<Vec<f32>>,
    // scratch sized for the finest level
    i1x: Vec<f32>,
    i1y: Vec<f32>,
    /// Per pixel: I1, I1x, I1y, 0 (what the warp samples, interleaved).
    img4: Vec<[f32; 4]>,
    /// Interleaved per pixel: warped I1x, I1y, |∇I1w|² (+γ²), rho_c.
    data: Vec<f32>,
    u3: Vec<f32>,
    /// Interleaved per pixel: p11, p12, p21, p22.
    p: Vec<f32>,
    /// Interleaved per pixel: p31, p32.
    p3: Vec<f32>,
    med: Vec<f32>,
    med2: Vec<f32>,
    tmp: Vec<f32>,
    /// Squared change of the flow per row (one inner iteration).
    err: Vec<f32>,
    /// One scratch row per band.
    sq: Vec<f32>,
}

impl Workspace {
    fn prepare(&mut self, w: usize, h: usize, cfg: &TvL1Config) {
        let mut sizes = vec![(w, h)];
        for _ in 1..cfg.nscales {
            let (pw, ph) = sizes[sizes.len() - 1];
            let nw = (pw as f32 * cfg.scale_step).round() as usize;
            let nh = (ph as f32 * cfg.scale_step).round() as usize;
            if nw < MIN_SIZE || nh < MIN_SIZE {
                break;
            }
            sizes.push((nw, nh));
        }
        let fit = |v: &mut Vec<Vec<f32>>| {
            v.resize_with(sizes.len(), Vec::new);
            for (b, &(sw, sh)) in v.iter_mut().zip(&sizes) {
                b.resize(sw * sh, 0.0);
            }
        };
        fit(&mut self.i0);
        fit(&mut self.i1);
        fit(&mut self.u1);
        fit(&mut self.u2);
        let n = w * h;
        for b in [&mut self.i1x, &mut self.i1y, &mut self.u3, &mut self.med, &mut self.med2, &mut self.tmp] {
            b.resize(n, 0.0);
        }
        self.data.resize(4 * n, 0.0);
        self.img4.resize(n, [0.0; 4]);
        self.p.resize(4 * n, 0.0);
        self.p3.resize(2 * n, 0.0);
        self.sizes = sizes;
    }
}

impl FlowEstimator for TvL1 {
    fn name(&self) -> &'static str {
        "tvl1"
    }

    fn estimate_into(&self, frame0: &GrayF32, frame1: &GrayF32, out: &mut FlowField) -> Result<()> {
        validate_pair(frame0, frame1, MIN_SIZE, "tvl1")?;
        let (w, h) = (frame0.width() as usize, frame0.height() as usize);
        with_workspace(&self.ws, |ws| {
            run(&self.cfg, frame0.as_raw(), frame1.as_raw(), w, h, ws);
            if out.size() != (w, h) {
                out.reset(w, h);
            }
            let (ou, ov) = out.planes_mut();
            ou.copy_from_slice(&ws.u1[0]);
            ov.copy_from_slice(&ws.u2[0]);
        });
        Ok(())
    }
}

fn run(cfg: &TvL1Config, a: &[f32], b: &[f32], w: usize, h: usize, ws: &mut Workspace) {
    ws.prepare(w, h, cfg);
    ws.i0[0].copy_from_slice(a);
    ws.i1[0].copy_from_slice(b);
    let ns = ws.sizes.len();
    let sigma = 0.6 * ((1.0 / (cfg.scale_step * cfg.scale_step) - 1.0).max(0.0)).sqrt();
    let kernel = imgops::gaussian_kernel(f64::from(sigma), 2 * (3.0 * sigma).ceil() as usize + 1);
    for s in 1..ns {
        let (pw, ph) = ws.sizes[s - 1];
        let (sw, sh) = ws.sizes[s];
        for which in 0..2 {
            let pyr = if which == 0 { &mut ws.i0 } else { &mut ws.i1 };
            let (prev, cur) = pyr.split_at_mut(s);
            let src = &prev[s - 1];
            if cfg.presmoothing {
                let np = pw * ph;
                imgops::blur_separable(src, pw, ph, &kernel, &mut ws.tmp[..np], &mut ws.med[..np]);
                imgops::resize_bilinear(&ws.med[..np], pw, ph, &mut cur[0], sw, sh);
            } else {
                imgops::resize_bilinear(src, pw, ph, &mut cur[0], sw, sh);
            }
        }
    }
    ws.u1[ns - 1].iter_mut().for_each(|v| *v = 0.0);
    ws.u2[ns - 1].iter_mut().for_each(|v| *v = 0.0);
    for s in (0..ns).rev() {
        one_scale(cfg, s, ws);
        if s == 0 {
            break;
        }
        let (sw, sh) = ws.sizes[s];
        let (tw, th) = ws.sizes[s - 1];
        let k = 1.0 / cfg.scale_step;
        for which in 0..2 {
            let pyr = if which == 0 { &mut ws.u1 } else { &mut ws.u2 };
            let (lo, hi) = pyr.split_at_mut(s);
            imgops::resize_bilinear(&hi[0], sw, sh, &mut lo[s - 1], tw, th);
            lo[s - 1].iter_mut().for_each(|v| *v *= k);
        }
    }
}

#[inline(always)]
fn fmin(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn fmax(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// Constants of the fused primal pass. Row-planar layouts: row `y` of `data` holds the four
/// blocks `[I1wx | I1wy | grad | rho_c]` of `w` values, row `y` of `p` the blocks
/// `[p11 | p12 | p21 | p22]`, row `y` of `p3` the blocks `[p31 | p32]`.
struct PrimalCtx {
    w: usize,
    lt: f32,
    theta: f32,
    gamma: f32,
}

/// The rows the primal pass reads for one output row: that row of `data`, `p` and `p3` and
/// the row above of `p` and `p3` (zeros above the first row).
struct PrimalIn<'a> {
    drow: &'a [f32],
    prow: &'a [f32],
    pup: &'a [f32],
    p3row: &'a [f32],
    p3up: &'a [f32],
}

impl PrimalCtx {
    /// Thresholding, divergence and primal update of one row of `u1`, `u2`, `u3` (in place);
    /// returns the row's squared change. `sq` is a scratch row of `w` values.
    fn row(
        &self,
        i: &PrimalIn<'_>,
        u1r: &mut [f32],
        u2r: &mut [f32],
        u3r: &mut [f32],
        sq: &mut [f32],
    ) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if simd::has_avx2() {
            // SAFETY: the CPU supports AVX2 (checked at run time).
            return unsafe { self.row_avx2(i, u1r, u2r, u3r, sq) };
        }
        self.row_impl(i, u1r, u2r, u3r, sq)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn row_avx2(
        &self,
        i: &PrimalIn<'_>,
        u1r: &mut [f32],
        u2r: &mut [f32],
        u3r: &mut [f32],
        sq: &mut [f32],
    ) -> f32 {
        self.row_impl(i, u1r, u2r, u3r, sq)
    }

    #[inline(always)]
    fn row_impl(
        &self,
        i: &PrimalIn<'_>,
        u1r: &mut [f32],
        u2r: &mut [f32],
        u3r: &mut [f32],
        sq: &mut [f32],
    ) -> f32 {
        let w = self.w;
        let (u1r, u2r, u3r, sq) = (&mut u1r[..w], &mut u2r[..w], &mut u3r[..w], &mut sq[..w]);
        let p11 = &i.prow[..w];
        let p12 = &i.prow[w..2 * w];
        let p21 = &i.prow[2 * w..3 * w];
        let p22 = &i.prow[3 * w..4 * w];
        let p12u = &i.pup[w..2 * w];
        let p22u = &i.pup[3 * w..4 * w];
        let ixr = &i.drow[..w];
        let iyr = &i.drow[w..2 * w];
        let gr = &i.drow[2 * w..3 * w];
        let rhor = &i.drow[3 * w..4 * w];
        let (lt, theta) = (self.lt, self.theta);
        if self.gamma > 0.0 {
            // rare path: illumination term, scalar code
            for x in 0..w {
                let lp = if x > 0 { i.p3row[x - 1] } else { 0.0 };
                let div3 = i.p3row[x] - lp + i.p3row[w + x] - i.p3up[w + x];
                let uo3 = u3r[x];
                let (ix, iy) = (ixr[x], iyr[x]);
                let (uo1, uo2) = (u1r[x], u2r[x]);
                let rho = rhor[x] + ix * uo1 + iy * uo2 + self.gamma * uo3;
                let coef = fmax(fmin(-rho / fmax(gr[x], 1e-30), lt), -lt);
                let l11 = if x > 0 { p11[x - 1] } else { 0.0 };
                let l21 = if x > 0 { p21[x - 1] } else { 0.0 };
                let n1 = uo1 + coef * ix + theta * (p11[x] - l11 + p12[x] - p12u[x]);
                let n2 = uo2 + coef * iy + theta * (p21[x] - l21 + p22[x] - p22u[x]);
                let n3 = uo3 + coef * self.gamma + theta * div3;
                u1r[x] = n1;
                u2r[x] = n2;
                u3r[x] = n3;
                sq[x] = (n1 - uo1).powi(2) + (n2 - uo2).powi(2) + (n3 - uo3).powi(2);
            }
        } else {
            let c = primal_cell(
                p11[0] + p12[0] - p12u[0],
                p21[0] + p22[0] - p22u[0],
                ixr[0],
                iyr[0],
                gr[0],
                rhor[0],
                u1r[0],
                u2r[0],
                lt,
                theta,
            );
            (u1r[0], u2r[0], sq[0]) = c;
            for x in 1..w {
                let c = primal_cell(
                    p11[x] - p11[x - 1] + p12[x] - p12u[x],
                    p21[x] - p21[x - 1] + p22[x] - p22u[x],
                    ixr[x],
                    iyr[x],
                    gr[x],
                    rhor[x],
                    u1r[x],
                    u2r[x],
                    lt,
                    theta,
                );
                (u1r[x], u2r[x], sq[x]) = c;
            }
        }
        sum_f32(sq)
    }
}

/// One pixel of the fused step: thresholding `v = u + clamp(-rho/|∇I|², -λθ, λθ) ∇I`, then
/// `u' = v + θ div p`; returns `(u1', u2', |u' - u|²)`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn primal_cell(
    div1: f32,
    div2: f32,
    ix: f32,
    iy: f32,
    g: f32,
    rho_c: f32,
    uo1: f32,
    uo2: f32,
    lt: f32,
    theta: f32,
) -> (f32, f32, f32) {
    let rho = rho_c + ix * uo1 + iy * uo2;
    let coef = fmax(fmin(-rho / fmax(g, 1e-30), lt), -lt);
    let n1 = uo1 + coef * ix + theta * div1;
    let n2 = uo2 + coef * iy + theta * div2;
    (n1, n2, (n1 - uo1) * (n1 - uo1) + (n2 - uo2) * (n2 - uo2))
}

/// Sum with eight independent accumulators (vectorisable, deterministic).
fn sum_f32(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] += c[l];
        }
    }
    let mut s: f32 = chunks.remainder().iter().sum();
    s += acc.iter().sum::<f32>();
    s
}

/// Constants of the dual pass.
struct DualCtx {
    w: usize,
    taut: f32,
    use_gamma: bool,
}

/// The flow rows the dual pass reads for one output row: that row and the row below (the row
/// itself below the last row, where the forward difference is zero).
struct DualIn<'a> {
    u1r: &'a [f32],
    u2r: &'a [f32],
    u3r: &'a [f32],
    u1d: &'a [f32],
    u2d: &'a [f32],
    u3d: &'a [f32],
}

impl DualCtx {
    /// Forward gradient and dual update of one row of `p` (`4 w` values) and `p3` (`2 w`).
    fn row(&self, i: &DualIn<'_>, prow: &mut [f32], p3row: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if simd::has_avx2() {
            // SAFETY: the CPU supports AVX2 (checked at run time).
            unsafe { self.row_avx2(i, prow, p3row) };
            return;
        }
        self.row_impl(i, prow, p3row)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn row_avx2(&self, i: &DualIn<'_>, prow: &mut [f32], p3row: &mut [f32]) {
        self.row_impl(i, prow, p3row)
    }

    #[inline(always)]
    fn row_impl(&self, i: &DualIn<'_>, prow: &mut [f32], p3row: &mut [f32]) {
        let w = self.w;
        let taut = self.taut;
        let (p11, rest) = prow.split_at_mut(w);
        let (p12, rest) = rest.split_at_mut(w);
        let (p21, p22) = rest.split_at_mut(w);
        let (u1r, u2r, u1d, u2d) = (&i.u1r[..w], &i.u2r[..w], &i.u1d[..w], &i.u2d[..w]);
        let (p11, p12, p21, p22) = (&mut p11[..w], &mut p12[..w], &mut p21[..w], &mut p22[..w]);
        for x in 0..w {
            let (u1x, u2x) = if x + 1 < w { (u1r[x + 1] - u1r[x], u2r[x + 1] - u2r[x]) } else { (0.0, 0.0) };
            let u1y = u1d[x] - u1r[x];
            let u2y = u2d[x] - u2r[x];
            let k1 = 1.0 / (1.0 + taut * (u1x * u1x + u1y * u1y).sqrt());
            let k2 = 1.0 / (1.0 + taut * (u2x * u2x + u2y * u2y).sqrt());
            p11[x] = (p11[x] + taut * u1x) * k1;
            p12[x] = (p12[x] + taut * u1y) * k1;
            p21[x] = (p21[x] + taut * u2x) * k2;
            p22[x] = (p22[x] + taut * u2y) * k2;
        }
        if self.use_gamma {
            let (u3r, u3d) = (&i.u3r[..w], &i.u3d[..w]);
            let (p31, p32) = p3row.split_at_mut(w);
            for x in 0..w {
                let u3x = if x + 1 < w { u3r[x + 1] - u3r[x] } else { 0.0 };
                let u3y = u3d[x] - u3r[x];
                let k3 = 1.0 / (1.0 + taut * (u3x * u3x + u3y * u3y).sqrt());
                p31[x] = (p31[x] + taut * u3x) * k3;
                p32[x] = (p32[x] + taut * u3y) * k3;
            }
        }
    }
}

fn one_scale(cfg: &TvL1Config, s: usize, ws: &mut Workspace) {
    let (w, h) = ws.sizes[s];
    let n = w * h;
    let use_gamma = cfg.gamma > 0.0;
    let i0 = &ws.i0[s];
    let i1 = &ws.i1[s];
    let u1 = &mut ws.u1[s];
    let u2 = &mut ws.u2[s];
    let i1x = &mut ws.i1x[..n];
    let i1y = &mut ws.i1y[..n];
    imgops::centered_gradient(i1, w, h, i1x, i1y);
    let img4 = &mut ws.img4[..n];
    for (((q, &v), &gx), &gy) in img4.iter_mut().zip(i1.iter()).zip(i1x.iter()).zip(i1y.iter()) {
        *q = [v, gx, gy, 0.0];
    }
    let img4 = &*img4;
    let zeros = &mut ws.tmp[..4 * w];
    zeros.iter_mut().for_each(|v| *v = 0.0);
    let ctx = Level {
        w,
        h,
        i0,
        img4,
        g2: cfg.gamma * cfg.gamma,
        zeros,
        primal: PrimalCtx { w, lt: cfg.lambda * cfg.theta, theta: cfg.theta, gamma: cfg.gamma },
        dual: DualCtx { w, taut: cfg.tau / cfg.theta, use_gamma },
        scaled_eps: cfg.epsilon * cfg.epsilon * n as f32,
        median: cfg.median_filtering,
        warps: cfg.warps,
        inner: cfg.inner_iterations,
        outer: cfg.outer_iterations,
    };
    let bufs = Buffers {
        u1,
        u2,
        u3: &mut ws.u3[..n],
        p: &mut ws.p[..4 * n],
        p3: &mut ws.p3[..2 * n],
        data: &mut ws.data[..4 * n],
        med: &mut ws.med[..n],
        med2: &mut ws.med2[..n],
        err: &mut ws.err,
        sq: &mut ws.sq,
    };
    if ctx.bands().1 > 1 && rayon::current_thread_index().is_none() {
        // Run the level's loop on a worker of the pool, so that each phase's parallel loop forks
        // and joins inside the pool instead of waking it up from outside.
        rayon::scope(|_| ctx.run(bufs));
    } else {
        ctx.run(bufs);
    }
}

/// Images smaller than this many pixels are iterated on one thread.
const PAR_MIN_PIXELS: usize = 1024;

/// Row bands per pool thread in each parallel phase.
const BANDS_PER_THREAD: usize = 2;

/// Fewest rows of a band.
const MIN_BAND_ROWS: usize = 12;

/// The inputs and constants of one pyramid level's warps and iterations.
struct Level<'a> {
    w: usize,
    h: usize,
    i0: &'a [f32],
    /// I1 and its gradient, interleaved (see `Workspace::img4`).
    img4: &'a [[f32; 4]],
    g2: f32,
    /// A zero row of `p` (`4 w` values), the row above the first one.
    zeros: &'a [f32],
    primal: PrimalCtx,
    dual: DualCtx,
    scaled_eps: f32,
    median: usize,
    warps: usize,
    inner: usize,
    outer: usize,
}

/// The buffers one level's iterations update: the flow, the dual variables, the data term, the
/// filtered flow, and scratch (`err` one value per row, `sq` one row per band).
struct Buffers<'a> {
    u1: &'a mut [f32],
    u2: &'a mut [f32],
    u3: &'a mut [f32],
    p: &'a mut [f32],
    p3: &'a mut [f32],
    data: &'a mut [f32],
    med: &'a mut [f32],
    med2: &'a mut [f32],
    err: &'a mut Vec<f32>,
    sq: &'a mut Vec<f32>,
}

/// Runs `f(band index, item)` over the bands of `it` in parallel on the rayon pool. With a
/// single band nothing is forked: rayon runs it on the calling thread.
fn for_bands<I, T>(it: I, f: impl Fn(usize, T) + Sync + Send)
where
    I: IndexedParallelIterator<Item = T>,
    T: Send,
{
    it.enumerate().for_each(|(k, t)| f(k, t));
}

impl Level<'_> {
    /// Rows per band and number of bands: one band on one thread, inside a busy pool's worker
    /// that runs other flows (see [`Level::run`]) or for a small level; else a few bands per
    /// thread of at least [`MIN_BAND_ROWS`] rows.
    fn bands(&self) -> (usize, usize) {
        let (w, h) = (self.w, self.h);
        let threads = rayon::current_num_threads();
        if threads <= 1 || w * h < PAR_MIN_PIXELS {
            return (h, 1);
        }
        let rows = h.div_ceil(BANDS_PER_THREAD * threads).max(MIN_BAND_ROWS).min(h);
        (rows, h.div_ceil(rows))
    }

    /// The warps of one pyramid level, as OpenCV's `DualTVL1OpticalFlow` runs them: for each
    /// warp the warped image and data-term constants, then the outer iterations (median
    /// filtering of the flow) and the inner iterations (primal pass, dual pass, stopping rule
    /// on the summed squared change).
    ///
    /// Threads: every pass is a parallel loop over bands of rows (rayon), each band writing
    /// only its own rows and reading what no band of the same pass writes: the primal pass
    /// writes the flow and reads the dual variables, the dual pass the reverse. The squared
    /// changes are kept per row and summed in row order, so the flow is bit for bit the same
    /// for any number of threads and bands.
    fn run(&self, b: Buffers<'_>) {
        let (w, h) = (self.w, self.h);
        let (rows, nb) = self.bands();
        let Buffers { u1, u2, u3, p, p3, data, med, med2, err, sq } = b;
        err.resize(h.max(err.len()), 0.0);
        sq.resize((nb * w).max(sq.len()), 0.0);
        let err = &mut err[..h];
        let sq = &mut sq[..nb * w];
        p.fill(0.0);
        p3.fill(0.0);
        u3.fill(0.0);
        for _ in 0..self.warps {
            {
                let (u1, u2) = (&*u1, &*u2);
                for_bands(data.par_chunks_mut(4 * w * rows), |k, d| {
                    let (y0, y1) = (k * rows, ((k + 1) * rows).min(h));
                    self.warp_rows(d, y0, &u1[y0 * w..y1 * w], &u2[y0 * w..y1 * w]);
                });
            }
            let mut error = f32::MAX;
            let mut n_outer = 0;
            while error > self.scaled_eps && n_outer < self.outer {
                n_outer += 1;
                if self.median > 1 {
                    for (u, m) in [(&mut *u1, &mut *med), (&mut *u2, &mut *med2)] {
                        let src = &*u;
                        for_bands(m.par_chunks_mut(w * rows), |k, band| {
                            crate::median::median_rows(src, w, h, self.median, k * rows, band);
                        });
                        u.copy_from_slice(m);
                    }
                }
                let mut n_inner = 0;
                while error > self.scaled_eps && n_inner < self.inner {
                    n_inner += 1;
                    {
                        let (p, p3, data) = (&*p, &*p3, &*data);
                        let it = (
                            u1.par_chunks_mut(w * rows),
                            u2.par_chunks_mut(w * rows),
                            u3.par_chunks_mut(w * rows),
                            err.par_chunks_mut(rows),
                            sq.par_chunks_mut(w),
                        )
                            .into_par_iter();
                        for_bands(it, |k, (b1, b2, b3, e, s)| {
                            self.primal_band(k * rows, b1, b2, b3, e, s, p, p3, data);
                        });
                    }
                    {
                        let (u1, u2, u3) = (&*u1, &*u2, &*u3);
                        let it =
                            (p.par_chunks_mut(4 * w * rows), p3.par_chunks_mut(2 * w * rows)).into_par_iter();
                        for_bands(it, |k, (bp, bp3)| self.dual_band(k * rows, bp, bp3, u1, u2, u3));
                    }
                    // row by row from the first: the same sum for any number of bands
                    error = err.iter().sum();
                }
            }
        }
    }

    /// The primal pass over the rows `y0..` of one band (`u1`, `u2`, `u3` hold the band's rows,
    /// `err` gets their squared changes).
    #[allow(clippy::too_many_arguments)]
    fn primal_band(
        &self,
        y0: usize,
        u1: &mut [f32],
        u2: &mut [f32],
        u3: &mut [f32],
        err: &mut [f32],
        sq: &mut [f32],
        p: &[f32],
        p3: &[f32],
        data: &[f32],
    ) {
        let w = self.w;
        let rows = u1.chunks_exact_mut(w).zip(u2.chunks_exact_mut(w)).zip(u3.chunks_exact_mut(w)).zip(err);
        for (r, (((u1r, u2r), u3r), e)) in rows.enumerate() {
            let y = y0 + r;
            let (pup, p3up) = if y == 0 {
                (&self.zeros[..4 * w], &self.zeros[..2 * w])
            } else {
                (&p[4 * (y - 1) * w..4 * y * w], &p3[2 * (y - 1) * w..2 * y * w])
            };
            let inp = PrimalIn {
                drow: &data[4 * y * w..4 * (y + 1) * w],
                prow: &p[4 * y * w..4 * (y + 1) * w],
                pup,
                p3row: &p3[2 * y * w..2 * (y + 1) * w],
                p3up,
            };
            *e = self.primal.row(&inp, u1r, u2r, u3r, sq);
        }
    }

    /// The dual pass over the rows `y0..` of one band (`p`, `p3` hold the band's rows).
    fn dual_band(&self, y0: usize, p: &mut [f32], p3: &mut [f32], u1: &[f32], u2: &[f32], u3: &[f32]) {
        let (w, h) = (self.w, self.h);
        for (r, (prow, p3row)) in p.chunks_exact_mut(4 * w).zip(p3.chunks_exact_mut(2 * w)).enumerate() {
            let y = y0 + r;
            // the forward difference is zero below the last row
            let yd = if y + 1 == h { y } else { y + 1 };
            let inp = DualIn {
                u1r: &u1[y * w..(y + 1) * w],
                u2r: &u2[y * w..(y + 1) * w],
                u3r: &u3[y * w..(y + 1) * w],
                u1d: &u1[yd * w..(yd + 1) * w],
                u2d: &u2[yd * w..(yd + 1) * w],
                u3d: &u3[yd * w..(yd + 1) * w],
            };
            self.dual.row(&inp, prow, p3row);
        }
    }

    /// Warps `I1` and its gradient with the flow rows `u1`, `u2` (rows `y0..`) and writes the
    /// data-term rows `[I1wx | I1wy | |grad|² + gamma² | rho_c]` into `data`.
    fn warp_rows(&self, data: &mut [f32], y0: usize, u1: &[f32], u2: &[f32]) {
        let (w, h) = (self.w, self.h);
        for (r, row) in data.chunks_mut(4 * w).enumerate() {
            let y = y0 + r;
            for x in 0..w {
                let (i, k) = (y * w + x, r * w + x);
                let taps = CubicTaps::new(w, h, x as f32 + u1[k], y as f32 + u2[k]);
                let [iw, ix, iy, _] = taps.sample4(self.img4, w);
                row[x] = ix;
                row[w + x] = iy;
                row[2 * w + x] = ix * ix + iy * iy + self.g2;
                row[3 * w + x] = iw - ix * u1[k] - iy * u2[k] - self.i0[i];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_opencv() {
        let c = TvL1Config::default();
        assert_eq!((c.tau, c.lambda, c.theta), (0.25, 0.15, 0.3));
        assert_eq!((c.nscales, c.warps, c.inner_iterations, c.outer_iterations), (5, 5, 30, 10));
        assert_eq!((c.epsilon, c.scale_step, c.gamma, c.median_filtering), (0.01, 0.8, 0.0, 5));
    }

    #[test]
    fn invalid_configs_are_rejected() {
        for c in [
            TvL1Config { tau: 0.3, ..Default::default() },
            TvL1Config { lambda: 0.0, ..Default::default() },
            TvL1Config { scale_step: 1.0, ..Default::default() },
            TvL1Config { nscales: 0, ..Default::default() },
            TvL1Config { median_filtering: 4, ..Default::default() },
            TvL1Config { gamma: f32::NAN, ..Default::default() },
        ] {
            assert!(c.build().is_err(), "{c:?}");
        }
    }
}
