//! Farnebäck's two-frame motion estimation by polynomial expansion (SCIA 2003), following
//! OpenCV's `calcOpticalFlowFarneback`: a pyramid whose levels are Gaussian-smoothed
//! (`sigma = (1/scale - 1) / 2`) and bilinearly resized copies of the input, a separable
//! polynomial expansion of each level (`poly_n`, `poly_sigma`), the per-pixel `A`, `b` matrices
//! warped by the current flow with OpenCV's border attenuation, a box (or Gaussian) average over
//! `winsize`, and `iterations` solves of the 2x2 system per level.

use crate::error::{invalid, Result};
use crate::imgops::{self, band_rows, for_bands};
use crate::{validate_pair, with_workspace, FlowEstimator, FlowField, GrayF32};
use kernels::{poly_band, update_band, PolyKernel};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

mod kernels;

/// Farnebäck parameters; `Default` equals OpenCV's documented defaults
/// (`pyr_scale 0.5, levels 5, winsize 13, iterations 10, poly_n 5, poly_sigma 1.1`, box window).
///
/// ```
/// use mex_flow::{synth, FarnebackConfig, FlowEstimator};
/// # fn main() -> mex_flow::Result<()> {
/// let (f0, f1, truth) = synth::translated_pair(64, 64, 1.2, 0.4, 5);
/// let fb = FarnebackConfig::default().build()?;
/// let mut flow = mex_flow::FlowField::zeros(0, 0);
/// fb.estimate_into(&f0, &f1, &mut flow)?; // reuses `flow` and the estimator's buffers
/// assert!(flow.epe_interior(&truth, 8)? < 0.3);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FarnebackConfig {
    /// Scale between pyramid levels, in (0, 1).
    pub pyr_scale: f64,
    /// Extra pyramid levels (0 = the input only); levels smaller than 32 px are dropped, as in OpenCV.
    pub levels: usize,
    /// Averaging window size (odd).
    pub winsize: usize,
    /// Iterations per level.
    pub iterations: usize,
    /// Neighbourhood of the polynomial expansion (`2 poly_n + 1` pixels), typically 5 or 7.
    pub poly_n: usize,
    /// Gaussian sigma of the polynomial expansion (1.1 for `poly_n` 5, 1.5 for 7).
    pub poly_sigma: f64,
    /// Gaussian instead of box averaging window (`OPTFLOW_FARNEBACK_GAUSSIAN`).
    pub gaussian: bool,
}

impl Default for FarnebackConfig {
    fn default() -> Self {
        Self {
            pyr_scale: 0.5,
            levels: 5,
            winsize: 13,
            iterations: 10,
            poly_n: 5,
            poly_sigma: 1.1,
            gaussian: false,
        }
    }
}

impl FarnebackConfig {
    /// Checks every parameter.
    pub fn validate(&self) -> Result<()> {
        if !(self.pyr_scale > 0.0 && self.pyr_scale < 1.0) {
            return Err(invalid("pyr_scale", self.pyr_scale, "must be in (0, 1)"));
        }
        if self.winsize < 3 || self.winsize.is_multiple_of(2) {
            return Err(invalid("winsize", self.winsize, "must be odd and >= 3"));
        }
        if self.iterations == 0 {
            return Err(invalid("iterations", self.iterations, "must be >= 1"));
        }
        if !(1..=9).contains(&self.poly_n) {
            return Err(invalid("poly_n", self.poly_n, "must be in 1..=9 (5 or 7 are usual)"));
        }
        if !(self.poly_sigma.is_finite() && self.poly_sigma > 0.0) {
            return Err(invalid("poly_sigma", self.poly_sigma, "must be finite and > 0"));
        }
        Ok(())
    }

    /// Validates and builds the estimator.
    pub fn build(&self) -> Result<Farneback> {
        self.validate()?;
        Ok(Farneback { cfg: self.clone(), ws: Mutex::new(Workspace::default()) })
    }
}

/// The Farnebäck estimator. Build it with [`FarnebackConfig::build`].
#[derive(Debug)]
pub struct Farneback {
    cfg: FarnebackConfig,
    ws: Mutex<Workspace>,
}

impl Farneback {
    /// The configuration.
    pub fn config(&self) -> &FarnebackConfig {
        &self.cfg
    }
}

const MIN_LEVEL_SIZE: f64 = 32.0;
const MIN_SIZE: usize = 8;

#[derive(Debug, Default)]
struct Workspace {
    blur0: Vec<f32>,
    blur1: Vec<f32>,
    tmp: Vec<f32>,
    img0: Vec<f32>,
    img1: Vec<f32>,
    r0: Vec<f32>,
    r1: Vec<f32>,
    m: Vec<f32>,
    mb: Vec<f32>,
    mtmp: Vec<f32>,
    flow: Vec<f32>,
    prev: Vec<f32>,
    acc: Vec<f64>,
}

impl FlowEstimator for Farneback {
    fn name(&self) -> &'static str {
        "farneback"
    }

    fn estimate_into(&self, frame0: &GrayF32, frame1: &GrayF32, out: &mut FlowField) -> Result<()> {
        validate_pair(frame0, frame1, MIN_SIZE, "farneback")?;
        let (w, h) = (frame0.width() as usize, frame0.height() as usize);
        with_workspace(&self.ws, |ws| {
            run(&self.cfg, frame0.as_raw(), frame1.as_raw(), w, h, ws);
            if out.size() != (w, h) {
                out.reset(w, h);
            }
            let (ou, ov) = out.planes_mut();
            for i in 0..w * h {
                ou[i] = ws.flow[2 * i];
                ov[i] = ws.flow[2 * i + 1];
            }
        });
        Ok(())
    }
}

fn run(cfg: &FarnebackConfig, a: &[f32], b: &[f32], w: usize, h: usize, ws: &mut Workspace) {
    let n = w * h;
    let mut levels = 0;
    let mut scale = 1.0;
    while levels < cfg.levels {
        scale *= cfg.pyr_scale;
        if (w as f64) * scale < MIN_LEVEL_SIZE || (h as f64) * scale < MIN_LEVEL_SIZE {
            break;
        }
        levels += 1;
    }
    for v in [&mut ws.blur0, &mut ws.blur1, &mut ws.tmp, &mut ws.img0, &mut ws.img1] {
        v.resize(n, 0.0);
    }
    for v in [&mut ws.r0, &mut ws.r1, &mut ws.m, &mut ws.mb, &mut ws.mtmp] {
        v.resize(5 * n, 0.0);
    }
    ws.flow.resize(2 * n, 0.0);
    ws.prev.resize(2 * n, 0.0);
    let (g, xg, xxg, ig) = poly_kernels(cfg.poly_n, cfg.poly_sigma);
    let mut prev_size: Option<(usize, usize)> = None;
    for k in (0..=levels).rev() {
        let scale = cfg.pyr_scale.powi(k as i32);
        let sigma = (1.0 / scale - 1.0) * 0.5;
        let ksize = (((sigma * 5.0).round() as usize) | 1).max(3);
        let lw = ((w as f64) * scale).round() as usize;
        let lh = ((h as f64) * scale).round() as usize;
        let ln = lw * lh;
        // flow initialisation
        match prev_size {
            None => ws.flow[..2 * ln].iter_mut().for_each(|v| *v = 0.0),
            Some((pw, ph)) => {
                // resize each channel of the previous (interleaved) flow
                let inv = (1.0 / cfg.pyr_scale) as f32;
                for c in 0..2 {
                    for i in 0..pw * ph {
                        ws.tmp[i] = ws.prev[2 * i + c];
                    }
                    imgops::resize_bilinear(&ws.tmp[..pw * ph], pw, ph, &mut ws.blur0[..ln], lw, lh);
                    for i in 0..ln {
                        ws.flow[2 * i + c] = ws.blur0[i] * inv;
                    }
                }
            }
        }
        // pyramid level of both frames and their polynomial expansions
        let kernel = imgops::gaussian_kernel(sigma, ksize);
        for (src, img, r) in [(a, &mut ws.img0, &mut ws.r0), (b, &mut ws.img1, &mut ws.r1)] {
            imgops::blur_separable(src, w, h, &kernel, &mut ws.tmp, &mut ws.blur0);
            imgops::resize_bilinear(&ws.blur0, w, h, &mut img[..ln], lw, lh);
            poly_exp(&img[..ln], lw, lh, cfg.poly_n, &g, &xg, &xxg, ig, &mut r[..5 * ln]);
        }
        let (r0, r1) = (&ws.r0[..5 * ln], &ws.r1[..5 * ln]);
        update_matrices(r0, r1, &ws.flow[..2 * ln], lw, lh, &mut ws.m[..5 * ln]);
        let wkernel = if cfg.gaussian { Some(gauss_window(cfg.winsize)) } else { None };
        for it in 0..cfg.iterations {
            match &wkernel {
                None => imgops::box_filter::<5>(
                    &ws.m[..5 * ln],
                    lw,
                    lh,
                    cfg.winsize,
                    &mut ws.mtmp[..5 * ln],
                    &mut ws.mb[..5 * ln],
                    &mut ws.acc,
                ),
                Some(kern) => {
                    for c in 0..5 {
                        for i in 0..ln {
                            ws.blur0[i] = ws.m[5 * i + c];
                        }
                        imgops::blur_separable(
                            &ws.blur0[..ln],
                            lw,
                            lh,
                            kern,
                            &mut ws.tmp[..ln],
                            &mut ws.blur1[..ln],
                        );
                        for i in 0..ln {
                            ws.mb[5 * i + c] = ws.blur1[i];
                        }
                    }
                }
            }
            solve_flow(&ws.mb[..5 * ln], &mut ws.flow[..2 * ln]);
            if it + 1 < cfg.iterations {
                update_matrices(r0, r1, &ws.flow[..2 * ln], lw, lh, &mut ws.m[..5 * ln]);
            }
        }
        ws.prev[..2 * ln].copy_from_slice(&ws.flow[..2 * ln]);
        prev_size = Some((lw, lh));
    }
}

fn gauss_window(winsize: usize) -> Vec<f32> {
    let m = (winsize / 2) as i64;
    let sigma = (m as f64 * 0.3).max(1e-6);
    let mut k: Vec<f64> = (-m..=m).map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp()).collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    k.into_iter().map(|v| v as f32).collect()
}

/// The 1-D kernels `g`, `x g`, `x² g` (index `k + n`) and the needed entries
/// `(G⁻¹₁₁, G⁻¹₀₃, G⁻¹₃₃, G⁻¹₅₅)` of the inverse Gram matrix of the basis
/// `{1, x, y, x², y², xy}` under the Gaussian applicability.
type PolyKernels = (Vec<f32>, Vec<f32>, Vec<f32>, [f64; 4]);

fn poly_kernels(n: usize, sigma: f64) -> PolyKernels {
    let ni = n as i64;
    let mut g64: Vec<f64> = (-ni..=ni).map(|x| (-((x * x) as f64) / (2.0 * sigma * sigma)).exp()).collect();
    let s: f64 = g64.iter().sum();
    g64.iter_mut().for_each(|v| *v /= s);
    let g: Vec<f32> = g64.iter().map(|&v| v as f32).collect();
    let xg: Vec<f32> = (-ni..=ni).zip(&g).map(|(x, &v)| x as f32 * v).collect();
    let xxg: Vec<f32> = (-ni..=ni).zip(&g).map(|(x, &v)| (x * x) as f32 * v).collect();
    // Gram matrix entries (computed from the f32 kernel as OpenCV does)
    let (mut g00, mut g11, mut g33, mut g55) = (0.0f64, 0.0, 0.0, 0.0);
    for y in -ni..=ni {
        for x in -ni..=ni {
            let gy = f64::from(g[(y + ni) as usize]);
            let gx = f64::from(g[(x + ni) as usize]);
            let (xf, yf) = (x as f64, y as f64);
            g00 += gy * gx;
            g11 += gy * gx * xf * xf;
            g33 += gy * gx * xf * xf * xf * xf;
            g55 += gy * gx * xf * xf * yf * yf;
        }
    }
    // block {1, x², y²}: [[g00, g11, g11], [g11, g33, g55], [g11, g55, g33]]
    let (a, b, c, d) = (g00, g11, g33, g55);
    let det = a * (c * c - d * d) - 2.0 * b * b * (c - d);
    let ig03 = -b * (c - d) / det;
    let ig33 = (a * c - b * b) / det;
    (g, xg, xxg, [1.0 / g11, ig03, ig33, 1.0 / g55])
}

/// Polynomial expansion: per pixel `[r_y, r_x, r_yy, r_xx, r_xy]` (OpenCV's channel order).
#[allow(clippy::too_many_arguments)]
fn poly_exp(
    src: &[f32],
    w: usize,
    h: usize,
    n: usize,
    g: &[f32],
    xg: &[f32],
    xxg: &[f32],
    ig: [f64; 4],
    dst: &mut [f32],
) {
    let rows = band_rows(h, w);
    let k = PolyKernel { g, xg, xxg, ig, n };
    // five planes per pixel: a band of `rows` rows is `5 w rows` values
    for_bands(dst, 5 * w, rows, |y0, band| poly_band(src, w, h, &k, y0, band));
}

/// Per pixel `[G11, G12, G22, h1, h2]` (y-first order, as OpenCV) from the expansions of both
/// frames with the second sampled at `x + flow(x)`.
fn update_matrices(r0: &[f32], r1: &[f32], flow: &[f32], w: usize, h: usize, m: &mut [f32]) {
    let rows = band_rows(h, w);
    for_bands(m, 5 * w, rows, |y0, band| update_band(r0, r1, flow, w, h, y0, band));
}

/// Solves the averaged 2x2 systems (with OpenCV's 1e-3 regulariser of the determinant).
fn solve_flow(mb: &[f32], flow: &mut [f32]) {
    for (f, m) in flow.chunks_exact_mut(2).zip(mb.chunks_exact(5)) {
        let (g11, g12, g22, h1, h2) =
            (f64::from(m[0]), f64::from(m[1]), f64::from(m[2]), f64::from(m[3]), f64::from(m[4]));
        let idet = 1.0 / (g11 * g22 - g12 * g12 + 1e-3);
        f[0] = ((g11 * h2 - g12 * h1) * idet) as f32;
        f[1] = ((g22 * h1 - g12 * h2) * idet) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polynomial_expansion_recovers_a_quadratic() {
        // f = 3 + 2x - y + 0.5x² + 0.25y² + 0.1xy around the centre: the expansion returns the
        // linear and quadratic coefficients exactly in the interior.
        let (w, h) = (21usize, 21usize);
        let f = |x: f32, y: f32| 3.0 + 2.0 * x - y + 0.5 * x * x + 0.25 * y * y + 0.1 * x * y;
        let src: Vec<f32> = (0..w * h).map(|i| f((i % w) as f32 - 10.0, (i / w) as f32 - 10.0)).collect();
        let (g, xg, xxg, ig) = poly_kernels(5, 1.1);
        let mut dst = vec![0.0; 5 * w * h];
        poly_exp(&src, w, h, 5, &g, &xg, &xxg, ig, &mut dst);
        let c = 5 * (10 * w + 10);
        let r = &dst[c..c + 5];
        assert!((r[0] + 1.0).abs() < 1e-3, "{r:?}"); // y
        assert!((r[1] - 2.0).abs() < 1e-3, "{r:?}"); // x
        assert!((r[2] - 0.25).abs() < 1e-3, "{r:?}"); // y²
        assert!((r[3] - 0.5).abs() < 1e-3, "{r:?}"); // x²
        assert!((r[4] - 0.1).abs() < 1e-3, "{r:?}"); // xy
    }

    #[test]
    fn invalid_configs_are_rejected() {
        for c in [
            FarnebackConfig { pyr_scale: 1.0, ..Default::default() },
            FarnebackConfig { winsize: 4, ..Default::default() },
            FarnebackConfig { iterations: 0, ..Default::default() },
            FarnebackConfig { poly_sigma: -1.0, ..Default::default() },
        ] {
            assert!(c.build().is_err(), "{c:?}");
        }
    }
}
