//! Dual TV-L1 optical flow (Zach, Pock and Bischof 2007), following the scheme of Sánchez,
//! Meinhardt-Llopis and Facciolo (IPOL 2013) as OpenCV's `DualTVL1OpticalFlow` implements it:
//! a pyramid of `nscales` levels (factor `scale_step`), `warps` bicubic warpings per level,
//! centred image gradients, the pointwise thresholding step, a primal update with the backward
//! divergence of the dual variable, a dual update with the forward gradient, inner / outer
//! iterations stopped by `epsilon`, and median filtering of the flow before each outer iteration.
//!
//! Implementation notes: `f32` throughout; the thresholding, primal update and stopping error
//! are fused in one pass over a row and the forward gradient with the dual update in a second;
//! all buffers live in a reusable workspace. Threads: each pyramid level runs as one parallel
//! region on the rayon pool's workers (`rayon::broadcast`). The rows are split into a few bands
//! per thread and the level into phases (one per inner iteration, one or two per outer
//! iteration); in each phase every thread runs the bands of its own range of rows and then takes
//! over the bands another thread has not started, so a thread slowed down by another tenant of
//! its core takes fewer bands while the others keep their rows in their caches. Each band
//! recomputes the first flow row of the band below instead of waiting for it (see
//! `IterCtx::run`). Forking rayon tasks per pass cost more than it saved at 128x128, and extra
//! threads next to the pool's workers left the workers spinning on the same cores. Called from
//! inside a rayon worker, the iterations stay on that thread. Results do not depend on the
//! thread count.

use crate::error::{invalid, Result};
use crate::imgops::{self, CubicTaps};
use crate::{validate_pair, with_workspace, FlowEstimator, FlowField, GrayF32};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Dual TV-L1 parameters; `Default` equals OpenCV's `DualTVL1OpticalFlow::create()`.
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
    /// Per-row errors of two consecutive inner iterations.
    err: Vec<f32>,
    /// Each band's published boundary rows (two parities), then each thread's private halo rows,
    /// see [`IterCtx::run`].
    snap: Vec<f32>,
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
        if imgops::has_avx2() {
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
        if imgops::has_avx2() {
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
    let data = &mut ws.data[..4 * n];
    let p = &mut ws.p[..4 * n];
    let p3 = &mut ws.p3[..2 * n];
    let u3 = &mut ws.u3[..n];
    let med = &mut ws.med[..n];
    let med2 = &mut ws.med2[..n];
    let err = &mut ws.err;
    let snap = &mut ws.snap;
    let (zeros, sq) = ws.tmp.split_at_mut(4 * w);
    zeros.iter_mut().for_each(|v| *v = 0.0);
    let ctx = IterCtx {
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
    ctx.run(Buffers { u1, u2, u3, p, p3, data, med, med2, err, sq, snap });
}

/// Images smaller than this many pixels are iterated on one thread.
const PAR_MIN_PIXELS: usize = 1024;

/// Bands per thread of a parallel region: a thread that is done with its own bands takes over
/// the bands of a slower thread (another tenant on its core) one at a time.
const BANDS_PER_THREAD: usize = 4;

/// Fewest rows of a band (each band recomputes one flow row of the band below).
const MIN_BAND_ROWS: usize = 12;

/// Held while a parallel region runs on the rayon pool (see [`IterCtx::run`]).
static REGION: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The inputs and constants of one pyramid level's warps and iterations.
struct IterCtx<'a> {
    w: usize,
    h: usize,
    i0: &'a [f32],
    /// I1 and its gradient, interleaved (see `Workspace::img4`).
    img4: &'a [[f32; 4]],
    g2: f32,
    zeros: &'a [f32],
    primal: PrimalCtx,
    dual: DualCtx,
    scaled_eps: f32,
    median: usize,
    warps: usize,
    inner: usize,
    outer: usize,
}

/// The buffers one level's iterations update: the flow, the dual variables, and scratch (`err`
/// holds `2 h` values, `sq` at least one row per thread).
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
    sq: &'a mut [f32],
    snap: &'a mut Vec<f32>,
}

/// Per band in the `snap` buffer: two parities of published rows, `SNAP` rows of `w` values
/// each (the first row of `u1`, `u2`, `u3`, the first row of `p` and `p3`, the last row of `p`
/// and `p3`). After the bands, each thread has `HALO` private rows.
const SNAP: usize = 15;
const HALO: usize = 3;

/// Values (64 bytes) left between the parts of a shared buffer that different threads write, so
/// that no cache line is written by two threads.
const PAD: usize = 16;

/// One phase of a level's program. Every band of a phase is done before any band of the next
/// one starts; within a phase each band writes only its own rows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Zero the band's dual variables and `u3` (first warp of the level), warp `I1` with its
    /// flow rows (each warp), and median-filter the flow into `med` / `med2` (each outer
    /// iteration, when filtering).
    Prep { zero: bool, warp: bool, median: bool },
    /// Copy the filtered flow back (when filtering) and publish the band's boundary rows.
    Publish { copy_back: bool },
    /// One inner iteration: primal pass, halo row, dual pass, publication, per-row errors.
    Iter,
    /// The level is done.
    End,
}

impl Phase {
    /// The phase and the parity of the published rows it reads, packed for an atomic.
    fn pack(self, par: usize) -> u32 {
        let (kind, flags) = match self {
            Phase::End => (0, 0),
            Phase::Prep { zero, warp, median } => {
                (1, u32::from(zero) | u32::from(warp) << 1 | u32::from(median) << 2)
            }
            Phase::Publish { copy_back } => (2, u32::from(copy_back)),
            Phase::Iter => (3, 0),
        };
        kind | flags << 2 | (par as u32) << 8
    }

    fn unpack(v: u32) -> (Phase, usize) {
        let f = |bit: u32| (v >> (2 + bit)) & 1 == 1;
        let phase = match v & 3 {
            1 => Phase::Prep { zero: f(0), warp: f(1), median: f(2) },
            2 => Phase::Publish { copy_back: f(0) },
            3 => Phase::Iter,
            _ => Phase::End,
        };
        (phase, (v >> 8) as usize & 1)
    }
}

/// Where a level's program stands: read and advanced only by the thread that finishes a
/// phase's last band (see [`IterCtx::worker`]).
struct Program {
    warp: usize,
    n_outer: usize,
    n_inner: usize,
    error: f32,
    par: usize,
}

impl IterCtx<'_> {
    /// The warps of one pyramid level: for each, the warped image and data-term constants, then
    /// the outer iterations (median filtering of the flow) and inner iterations (primal and
    /// dual passes, epsilon stopping rule).
    ///
    /// With more than one thread the level runs as **one parallel region** on the rayon pool's
    /// workers (`rayon::broadcast`). The rows are split into a few bands per thread, and the
    /// level into phases (one per inner iteration, one or two per outer iteration; see
    /// [`Phase`]). In every phase each thread runs the bands of its home range (so its rows stay
    /// in its core's cache) and then takes the bands that other threads have not started yet
    /// (see [`Schedule`]); a band of the next phase starts once every band of this one is done.
    /// So a thread that runs slower for a while (on a shared host, another tenant on its core)
    /// takes fewer bands instead of holding the other threads at a barrier. Within an inner
    /// iteration a band runs the primal pass over its rows and then the dual pass, which needs
    /// the new flow of the first row of the band below: it recomputes that row itself (a halo
    /// row) from the rows the band below published at the end of the previous iteration (its
    /// first flow row, its first row of `p`), and its primal pass reads the last row of `p`
    /// that the band above published. Published rows and per-row errors alternate between two
    /// parities, so a band never overwrites what a band of the same phase still reads. The
    /// thread that finishes a phase's last band sums the per-row errors in row order and
    /// decides the next phase; results are bit-identical to the one-thread path. Called from
    /// inside a rayon worker (for example flows of many samples computed in parallel), the
    /// level runs on that one thread: the parallelism is outside.
    fn run(&self, b: Buffers<'_>) {
        let (w, h) = (self.w, self.h);
        let inside_pool = rayon::current_thread_index().is_some();
        let threads = if inside_pool || w * h < PAR_MIN_PIXELS {
            1
        } else {
            rayon::current_num_threads().min(b.sq.len() / (w + PAD)).max(1)
        };
        let want = if threads == 1 {
            1
        } else {
            (h / MIN_BAND_ROWS).clamp(1, (BANDS_PER_THREAD * threads).min(MAX_BANDS))
        };
        // no empty band: every band below another has a first row to publish
        let rows = h.div_ceil(want);
        let nb = h.div_ceil(rows);
        let threads = if nb == 1 { 1 } else { threads };
        let snap_len = nb * (2 * SNAP * w + PAD) + threads * (HALO * w + PAD);
        if b.snap.len() < snap_len {
            b.snap.resize(snap_len, 0.0);
        }
        // per-row errors: band k's rows at `par * err_len + y + k * PAD`
        let err_len = h + nb * PAD;
        if b.err.len() < 2 * err_len {
            b.err.resize(2 * err_len, 0.0);
        }
        let first = Phase::Prep { zero: true, warp: true, median: self.median > 1 };
        let shared = Region {
            u1: SharedRows::new(b.u1),
            u2: SharedRows::new(b.u2),
            u3: SharedRows::new(b.u3),
            p: SharedRows::new(b.p),
            p3: SharedRows::new(b.p3),
            data: SharedRows::new(b.data),
            med: SharedRows::new(b.med),
            med2: SharedRows::new(b.med2),
            err: SharedRows::new(b.err),
            sq: SharedRows::new(b.sq),
            snap: SharedRows::new(b.snap),
            sched: Schedule::new(first.pack(0), threads),
            program: Mutex::new(Program { warp: 0, n_outer: 0, n_inner: 0, error: f32::MAX, par: 0 }),
            nb,
            rows,
            err_len,
        };
        if threads == 1 {
            self.worker(&shared, 0);
            return;
        }
        // On the pool's own workers (one call each), not on extra threads: the pool's workers
        // would otherwise spin looking for work next to the region's threads, on the same cores.
        // One region at a time per process: the region's workers wait for each other's bands,
        // so two regions whose jobs reached the workers in different orders would wait for each
        // other forever. Callers outside the pool queue here (a pool worker never takes this
        // lock: inside the pool the iterations stay on the calling thread, above).
        let _region = REGION.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        rayon::broadcast(|ctx| {
            if ctx.index() < threads {
                self.worker(&shared, ctx.index());
            }
        });
    }

    /// Thread `t` of a region: phase after phase until the level ends, runs the bands of its
    /// home range (first to last), then takes the bands the other threads have not started
    /// (each range's last first). The thread that finishes a phase's last band decides the
    /// next phase.
    fn worker(&self, r: &Region, t: usize) {
        use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
        let (nb, nt) = (r.nb, r.sched.ranges.len());
        let mut k = 0;
        loop {
            // a thread that fell behind (descheduled) joins the phase under way
            k = r.sched.wait_ready(k);
            let (phase, par) = Phase::unpack(r.sched.desc[k % 2].load(Acquire));
            if phase == Phase::End {
                return;
            }
            // `phase` is phase `k` whenever a claim for phase `k` succeeds (see `Schedule`)
            for j in (0..nt).map(|d| (t + d) % nt) {
                while let Some(band) = r.sched.claim(j, k, j == t, nb) {
                    self.band(r, phase, par, band, t);
                    if r.sched.done.fetch_add(1, AcqRel) + 1 == (k + 1) * nb {
                        let next = {
                            let mut prog =
                                r.program.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                            self.next_phase(&mut prog, phase, r).pack(prog.par)
                        };
                        if Phase::unpack(next).0 == Phase::End {
                            r.sched.desc.iter().for_each(|d| d.store(next, Relaxed));
                            r.sched.ready.store(usize::MAX, Release);
                        } else {
                            r.sched.desc[(k + 1) % 2].store(next, Relaxed);
                            r.sched.ready.store(k + 1, Release);
                        }
                    }
                }
            }
            k += 1;
        }
    }

    /// The phase after `done`, as the one-thread loops would run them: warps, outer iterations
    /// (median filtering, publication), inner iterations stopped by the error or the count.
    fn next_phase(&self, st: &mut Program, done: Phase, r: &Region) -> Phase {
        let multi = r.nb > 1;
        // an outer iteration starts with the publication (after the median, if filtering)
        let start_outer = if self.median > 1 || multi {
            Phase::Publish { copy_back: self.median > 1 }
        } else {
            Phase::Iter
        };
        match done {
            Phase::Prep { .. } => start_outer,
            Phase::Publish { .. } => Phase::Iter,
            Phase::Iter => {
                // SAFETY: every band of the inner iteration is done, and no band of the next
                // phase has started: nobody writes the errors of parity `par`.
                st.error = unsafe { r.error_sum(st.par, self.h) };
                st.par ^= 1;
                st.n_inner += 1;
                if st.error > self.scaled_eps && st.n_inner < self.inner {
                    return Phase::Iter;
                }
                st.n_inner = 0;
                st.n_outer += 1;
                if st.error > self.scaled_eps && st.n_outer < self.outer {
                    return if self.median > 1 {
                        Phase::Prep { zero: false, warp: false, median: true }
                    } else {
                        start_outer
                    };
                }
                st.warp += 1;
                if st.warp == self.warps {
                    return Phase::End;
                }
                st.n_outer = 0;
                st.error = f32::MAX;
                Phase::Prep { zero: false, warp: true, median: self.median > 1 }
            }
            Phase::End => Phase::End,
        }
    }

    /// Band `k`'s part of `phase` on thread `t`; `par` is the parity of the published rows.
    fn band(&self, r: &Region, phase: Phase, par: usize, k: usize, t: usize) {
        let (w, h) = (self.w, self.h);
        let (y0, y1) = r.band(k, h);
        let multi = r.nb > 1;
        // SAFETY (every `unsafe` block below): within a phase a band writes only its own rows of
        // the flow, dual variables, data term and filtered flow, its own published rows of one
        // parity and its own error rows, and its thread's scratch rows, while the bands read
        // only rows nobody writes in this phase (published rows of the other parity, the whole
        // flow in a median phase); phases are ordered by the schedule (see `run`).
        match phase {
            Phase::Prep { zero, warp, median } => {
                if zero {
                    unsafe { r.p.rows(4 * y0 * w, 4 * y1 * w) }.fill(0.0);
                    unsafe { r.p3.rows(2 * y0 * w, 2 * y1 * w) }.fill(0.0);
                    unsafe { r.u3.rows(y0 * w, y1 * w) }.fill(0.0);
                }
                if warp {
                    unsafe {
                        self.warp_rows(
                            r.data.rows(4 * y0 * w, 4 * y1 * w),
                            y0,
                            r.u1.get(y0 * w, y1 * w),
                            r.u2.get(y0 * w, y1 * w),
                        )
                    };
                }
                if median {
                    for (u, m) in [(&r.u1, &r.med), (&r.u2, &r.med2)] {
                        imgops::median_rows(unsafe { u.all() }, w, h, self.median, y0, unsafe {
                            m.rows(y0 * w, y1 * w)
                        });
                    }
                }
            }
            Phase::Publish { copy_back } => {
                if copy_back {
                    for (u, m) in [(&r.u1, &r.med), (&r.u2, &r.med2)] {
                        unsafe { u.rows(y0 * w, y1 * w) }.copy_from_slice(unsafe { m.get(y0 * w, y1 * w) });
                    }
                }
                if multi {
                    unsafe { self.publish(r, k, (y0, y1), par) };
                }
            }
            Phase::Iter => self.iterate(r, par, k, t),
            Phase::End => {}
        }
    }

    /// Copies the rows of band `k` (rows `y0..y1`) that the neighbouring bands read into its
    /// published rows of parity `par`.
    ///
    /// # Safety
    /// Called within a phase in which no band reads parity `par` of band `k` and nobody writes
    /// rows `y0` and `y1 - 1` of the flow and the dual variables.
    unsafe fn publish(&self, r: &Region, k: usize, (y0, y1): (usize, usize), par: usize) {
        let w = self.w;
        let o = r.snap_at(k, par, w);
        // SAFETY: band `k`'s own published rows (the caller's promise) and rows of the flow and
        // dual variables that nobody writes meanwhile.
        let dst = unsafe { r.snap.rows(o, o + SNAP * w) };
        let (last, y) = (y1 - 1, y0);
        let parts: [(&SharedRows, usize, usize); 7] = [
            (&r.u1, y * w, w),
            (&r.u2, y * w, w),
            (&r.u3, y * w, w),
            (&r.p, 4 * y * w, 4 * w),
            (&r.p3, 2 * y * w, 2 * w),
            (&r.p, 4 * last * w, 4 * w),
            (&r.p3, 2 * last * w, 2 * w),
        ];
        let mut at = 0;
        for (src, start, len) in parts {
            dst[at..at + len].copy_from_slice(unsafe { src.get(start, start + len) });
            at += len;
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

    /// One inner iteration of band `k` on thread `t`: reads the neighbours' published rows of
    /// parity `par`, publishes its own rows as parity `par ^ 1`, and writes its per-row errors
    /// as parity `par`.
    fn iterate(&self, r: &Region, par: usize, k: usize, t: usize) {
        let (w, h) = (self.w, self.h);
        let (y0, y1) = r.band(k, h);
        let multi = r.nb > 1;
        // SAFETY (every `unsafe` block below): see `band`.
        let sq = unsafe { r.sq.rows(t * (w + PAD), t * (w + PAD) + w) };
        let halo = r.halo_at(t, w);
        // the published rows of the neighbours, parity `par`
        let above = (k > 0).then(|| unsafe {
            let o = r.snap_at(k - 1, par, w);
            r.snap.get(o + 9 * w, o + SNAP * w)
        });
        let below = (y1 < h).then(|| unsafe {
            let o = r.snap_at(k + 1, par, w);
            r.snap.get(o, o + 9 * w)
        });
        // primal pass over the own rows
        for y in y0..y1 {
            let (pup, p3up) = match (y == y0, above) {
                (false, _) => unsafe {
                    (r.p.get(4 * (y - 1) * w, 4 * y * w), r.p3.get(2 * (y - 1) * w, 2 * y * w))
                },
                (true, Some(a)) => (&a[..4 * w], &a[4 * w..6 * w]),
                (true, None) => (&self.zeros[..4 * w], &self.zeros[..2 * w]),
            };
            let inp = PrimalIn {
                drow: unsafe { r.data.get(4 * y * w, 4 * (y + 1) * w) },
                prow: unsafe { r.p.get(4 * y * w, 4 * (y + 1) * w) },
                pup,
                p3row: unsafe { r.p3.get(2 * y * w, 2 * (y + 1) * w) },
                p3up,
            };
            let (u1r, u2r, u3r) = unsafe {
                (r.u1.rows(y * w, (y + 1) * w), r.u2.rows(y * w, (y + 1) * w), r.u3.rows(y * w, (y + 1) * w))
            };
            let e = self.primal.row(&inp, u1r, u2r, u3r, sq);
            let at = r.err_at(par, k, y);
            let slot = unsafe { r.err.rows(at, at + 1) };
            slot[0] = e;
        }
        // the halo row: the new flow of the first row of the band below
        if let Some(b) = below {
            let hrow = unsafe { r.snap.rows(halo, halo + 3 * w) };
            hrow.copy_from_slice(&b[..3 * w]);
            let (h1, rest) = hrow.split_at_mut(w);
            let (h2, h3) = rest.split_at_mut(w);
            let inp = PrimalIn {
                drow: unsafe { r.data.get(4 * y1 * w, 4 * (y1 + 1) * w) },
                prow: &b[3 * w..7 * w],
                pup: unsafe { r.p.get(4 * (y1 - 1) * w, 4 * y1 * w) },
                p3row: &b[7 * w..9 * w],
                p3up: unsafe { r.p3.get(2 * (y1 - 1) * w, 2 * y1 * w) },
            };
            self.primal.row(&inp, h1, h2, h3, sq);
        }
        // dual pass over the own rows
        for y in y0..y1 {
            let row = |u: usize, y: usize| {
                let u = [&r.u1, &r.u2, &r.u3][u];
                unsafe { u.get(y * w, (y + 1) * w) }
            };
            let (u1r, u2r, u3r) = (row(0, y), row(1, y), row(2, y));
            let (u1d, u2d, u3d) = if y + 1 == h {
                (u1r, u2r, u3r)
            } else if y + 1 == y1 {
                let hr = unsafe { r.snap.get(halo, halo + 3 * w) };
                (&hr[..w], &hr[w..2 * w], &hr[2 * w..])
            } else {
                (row(0, y + 1), row(1, y + 1), row(2, y + 1))
            };
            let inp = DualIn { u1r, u2r, u3r, u1d, u2d, u3d };
            let (prow, p3row) =
                unsafe { (r.p.rows(4 * y * w, 4 * (y + 1) * w), r.p3.rows(2 * y * w, 2 * (y + 1) * w)) };
            self.dual.row(&inp, prow, p3row);
        }
        if multi {
            unsafe { self.publish(r, k, (y0, y1), par ^ 1) };
        }
    }
}

/// The buffers and the schedule of one parallel region (see [`IterCtx::run`]).
struct Region {
    u1: SharedRows,
    u2: SharedRows,
    u3: SharedRows,
    p: SharedRows,
    p3: SharedRows,
    data: SharedRows,
    med: SharedRows,
    med2: SharedRows,
    err: SharedRows,
    sq: SharedRows,
    snap: SharedRows,
    sched: Schedule,
    program: Mutex<Program>,
    /// Number of bands.
    nb: usize,
    /// Rows per band (the last band may have fewer).
    rows: usize,
    /// Values per parity of `err`.
    err_len: usize,
}

impl Region {
    /// Rows `y0..y1` of band `k`.
    fn band(&self, k: usize, h: usize) -> (usize, usize) {
        ((k * self.rows).min(h), ((k + 1) * self.rows).min(h))
    }

    /// Start of band `k`'s published rows of parity `par` in the `snap` buffer.
    fn snap_at(&self, k: usize, par: usize, w: usize) -> usize {
        k * (2 * SNAP * w + PAD) + par * SNAP * w
    }

    /// Start of thread `t`'s private halo rows in the `snap` buffer.
    fn halo_at(&self, t: usize, w: usize) -> usize {
        self.nb * (2 * SNAP * w + PAD) + t * (HALO * w + PAD)
    }

    /// Position of row `y` of band `k` in parity `par` of `err`.
    fn err_at(&self, par: usize, k: usize, y: usize) -> usize {
        par * self.err_len + y + k * PAD
    }

    /// Sum of the per-row errors of parity `par`, row by row from the first (the same order for
    /// any number of bands).
    ///
    /// # Safety
    /// No thread may write parity `par` of `err` meanwhile.
    unsafe fn error_sum(&self, par: usize, h: usize) -> f32 {
        // SAFETY: the caller's promise.
        let errs = unsafe { self.err.get(par * self.err_len, (par + 1) * self.err_len) };
        (0..self.nb)
            .flat_map(|k| {
                let (a, b) = self.band(k, h);
                errs[a + k * PAD..b + k * PAD].iter().copied()
            })
            .sum()
    }
}

/// A mutable `f32` buffer shared by the threads of one parallel region. The region's schedule
/// orders the accesses: within a phase each band writes only its own rows and nobody reads
/// what anybody writes.
struct SharedRows {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: the pointer comes from a `&mut [f32]` that outlives the region (the region is a
// `rayon::broadcast` that returns inside the borrow), and accesses are ordered by the schedule.
unsafe impl Send for SharedRows {}
// SAFETY: as above.
unsafe impl Sync for SharedRows {}

impl SharedRows {
    fn new(s: &mut [f32]) -> Self {
        Self { ptr: s.as_mut_ptr(), len: s.len() }
    }

    /// Elements `a..b` (clamped to the buffer), mutable.
    ///
    /// # Safety
    /// No other thread may access `a..b` while the returned slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn rows(&self, a: usize, b: usize) -> &mut [f32] {
        let (a, b) = (a.min(self.len), b.min(self.len).max(a.min(self.len)));
        // SAFETY: `a <= b <= len` of the original slice; exclusivity is the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(a), b - a) }
    }

    /// Elements `a..b` (clamped to the buffer), shared.
    ///
    /// # Safety
    /// No thread may write `a..b` while the returned slice lives.
    unsafe fn get(&self, a: usize, b: usize) -> &[f32] {
        let (a, b) = (a.min(self.len), b.min(self.len).max(a.min(self.len)));
        // SAFETY: `a <= b <= len` of the original slice; no concurrent writes is the caller's
        // promise.
        unsafe { std::slice::from_raw_parts(self.ptr.add(a), b - a) }
    }

    /// The whole buffer, shared.
    ///
    /// # Safety
    /// No thread may write the buffer while the returned slice lives.
    unsafe fn all(&self) -> &[f32] {
        // SAFETY: as for `get`.
        unsafe { self.get(0, self.len) }
    }
}

/// The phase schedule of a region. Thread `t`'s home range is bands `t * nb / nt .. (t + 1) *
/// nb / nt`; `ranges[t]` packs the phase it is claimed in (plus one), and the first and one past
/// the last band of it not yet claimed: the owner claims from the front, other threads from the
/// back, each with a compare-and-swap, so every band of a phase runs exactly once. `done` counts
/// finished bands, `ready` is the newest phase whose predecessor is done, and `desc` holds the
/// packed phases `k` and `k + 1` (see [`Phase::pack`]). Slot `k % 2` is overwritten only when
/// phase `k + 1` is done, which needs phase `k` done; so a thread that read the slot and then
/// claimed a band of phase `k` read phase `k`. At the end both slots hold [`Phase::End`] and
/// `ready` is `usize::MAX`. Each counter sits on a cache line of its own.
struct Schedule {
    ranges: Vec<CachePadded<std::sync::atomic::AtomicU64>>,
    done: CachePadded<std::sync::atomic::AtomicUsize>,
    ready: CachePadded<std::sync::atomic::AtomicUsize>,
    desc: [std::sync::atomic::AtomicU32; 2],
}

/// A value alone on its cache line.
#[repr(align(64))]
struct CachePadded<T>(T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Spins of a waiting thread before it starts yielding (see [`Schedule::wait_ready`]).
const SPIN_BEFORE_YIELD: u32 = 1 << 11;

/// Most bands of a region (12 bits each for the front and back of a range).
const MAX_BANDS: usize = 4095;

impl Schedule {
    fn new(first: u32, threads: usize) -> Self {
        use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};
        Self {
            ranges: (0..threads).map(|_| CachePadded(AtomicU64::new(0))).collect(),
            done: CachePadded(AtomicUsize::new(0)),
            ready: CachePadded(AtomicUsize::new(0)),
            desc: [AtomicU32::new(first), AtomicU32::new(0)],
        }
    }

    /// Claims a band of thread `j`'s home range for phase `k`: the first one left for the owner
    /// (`front`), the last one left for another thread. `None` once the range is used up for
    /// phase `k`, or when phase `k` is over.
    fn claim(&self, j: usize, k: usize, front: bool, nb: usize) -> Option<usize> {
        use std::sync::atomic::Ordering::{AcqRel, Acquire};
        let nt = self.ranges.len();
        let (start, end) = (j * nb / nt, (j + 1) * nb / nt);
        let tag = k as u64 + 1;
        let word = &self.ranges[j];
        let mut cur = word.load(Acquire);
        loop {
            let (ph, f, b) = (cur >> 24, (cur >> 12 & 0xfff) as usize, (cur & 0xfff) as usize);
            if ph > tag {
                return None;
            }
            let (f, b) = if ph < tag { (start, end) } else { (f, b) };
            if f >= b {
                return None;
            }
            let (f2, b2, band) = if front { (f + 1, b, f) } else { (f, b - 1, b - 1) };
            let new = tag << 24 | (f2 as u64) << 12 | b2 as u64;
            match word.compare_exchange_weak(cur, new, AcqRel, Acquire) {
                Ok(_) => return Some(band),
                Err(v) => cur = v,
            }
        }
    }

    /// Waits until phase `k` or a later one may start, and returns the newest such phase.
    fn wait_ready(&self, k: usize) -> usize {
        use std::sync::atomic::Ordering::Acquire;
        let mut spins = 0u32;
        loop {
            let ready = self.ready.load(Acquire);
            if ready >= k {
                return ready;
            }
            // About 30 µs of spinning (a pause is ~15 ns here) covers a phase's usual
            // imbalance; then yield. With 16,384 spins (~250 µs) a waiting thread kept its core
            // while the thread it waited for, descheduled or sharing the core, could not
            // finish: two solvers running at once took up to 253 ms a flow against 46 ms on one
            // thread (docs/performance.md).
            if spins < SPIN_BEFORE_YIELD {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
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
