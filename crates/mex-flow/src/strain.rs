//! Optical strain (with the variants the field uses), magnitude / orientation, and the STSTNet
//! input builder.
//!
//! The strain tensor of a flow `(u, v)` is `ε = ½(∇w + ∇wᵀ)`; its magnitude is
//! `sqrt(u_x² + v_y² + ½ C)` where the cross term `C` differs between implementations
//! (the papers and code cited below):
//! * [`CrossTerm::SquareOfSum`]: `C = (u_y + v_x)²` — the STSTNet paper (eq. 5-7) and SOFTNet's code;
//! * [`CrossTerm::SumOfSquares`]: `C = u_y² + v_x²` — the MEB toolkit's code.
//!
//! and the derivative scheme differs too ([`Derivative`]).

use crate::error::{invalid, Result};
use crate::FlowField;
use serde::{Deserialize, Serialize};

/// The cross (shear) term of the strain magnitude.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossTerm {
    /// `½ (u_y + v_x)²` (STSTNet paper, SOFTNet).
    SquareOfSum,
    /// `½ (u_y² + v_x²)` (MEB).
    SumOfSquares,
}

/// The spatial derivative scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Derivative {
    /// Centred differences `(f(x+1) - f(x-1)) / 2`, one-sided at the borders (`numpy.gradient`).
    Central,
    /// Forward differences `f(x+1) - f(x)`, 0 at the last column / row (SOFTNet up to sign,
    /// which the squares remove).
    Forward,
    /// OpenCV's 3x3 `Sobel` (unnormalised, i.e. 8 times the derivative; `BORDER_REFLECT_101`) (MEB).
    Sobel,
}

/// Which strain variant to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StrainConfig {
    /// Cross term.
    pub cross: CrossTerm,
    /// Derivative scheme.
    pub derivative: Derivative,
}

impl Default for StrainConfig {
    /// The STSTNet paper's definition with centred differences.
    fn default() -> Self {
        Self::ststnet()
    }
}

impl StrainConfig {
    /// STSTNet (paper eq. 5-7): square-of-sum cross term, centred differences.
    pub fn ststnet() -> Self {
        Self { cross: CrossTerm::SquareOfSum, derivative: Derivative::Central }
    }

    /// SOFTNet's code: square-of-sum cross term, forward differences.
    pub fn softnet() -> Self {
        Self { cross: CrossTerm::SquareOfSum, derivative: Derivative::Forward }
    }

    /// MEB's code: sum-of-squares cross term, Sobel derivatives.
    pub fn meb() -> Self {
        Self { cross: CrossTerm::SumOfSquares, derivative: Derivative::Sobel }
    }
}

/// Spatial derivatives `(f_x, f_y)` of a plane with the given scheme.
pub fn derivatives(f: &[f32], w: usize, h: usize, scheme: Derivative) -> (Vec<f32>, Vec<f32>) {
    let mut dx = vec![0.0f32; w * h];
    let mut dy = vec![0.0f32; w * h];
    if w == 0 || h == 0 {
        return (dx, dy);
    }
    let at = |x: usize, y: usize| f[y * w + x];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            match scheme {
                Derivative::Central => {
                    dx[i] = if w == 1 {
                        0.0
                    } else if x == 0 {
                        at(1, y) - at(0, y)
                    } else if x == w - 1 {
                        at(x, y) - at(x - 1, y)
                    } else {
                        0.5 * (at(x + 1, y) - at(x - 1, y))
                    };
                    dy[i] = if h == 1 {
                        0.0
                    } else if y == 0 {
                        at(x, 1) - at(x, 0)
                    } else if y == h - 1 {
                        at(x, y) - at(x, y - 1)
                    } else {
                        0.5 * (at(x, y + 1) - at(x, y - 1))
                    };
                }
                Derivative::Forward => {
                    dx[i] = if x + 1 < w { at(x + 1, y) - at(x, y) } else { 0.0 };
                    dy[i] = if y + 1 < h { at(x, y + 1) - at(x, y) } else { 0.0 };
                }
                Derivative::Sobel => {
                    let r = |v: isize, n: usize| -> usize {
                        if n == 1 {
                            0
                        } else if v < 0 {
                            (-v) as usize
                        } else if v as usize >= n {
                            2 * n - 2 - v as usize
                        } else {
                            v as usize
                        }
                    };
                    let (xi, yi) = (x as isize, y as isize);
                    let p = |ox: isize, oy: isize| at(r(xi + ox, w), r(yi + oy, h));
                    dx[i] = (p(1, -1) - p(-1, -1)) + 2.0 * (p(1, 0) - p(-1, 0)) + (p(1, 1) - p(-1, 1));
                    dy[i] = (p(-1, 1) - p(-1, -1)) + 2.0 * (p(0, 1) - p(0, -1)) + (p(1, 1) - p(1, -1));
                }
            }
        }
    }
    (dx, dy)
}

/// Per-pixel optical strain magnitude of a flow field.
pub fn optical_strain(flow: &FlowField, cfg: &StrainConfig) -> Vec<f32> {
    let (w, h) = flow.size();
    let (ux, uy) = derivatives(flow.u(), w, h, cfg.derivative);
    let (vx, vy) = derivatives(flow.v(), w, h, cfg.derivative);
    (0..w * h)
        .map(|i| {
            let cross = match cfg.cross {
                CrossTerm::SquareOfSum => (uy[i] + vx[i]).powi(2),
                CrossTerm::SumOfSquares => uy[i] * uy[i] + vx[i] * vx[i],
            };
            (ux[i] * ux[i] + vy[i] * vy[i] + 0.5 * cross).sqrt()
        })
        .collect()
}

/// Per-pixel flow magnitude `sqrt(u² + v²)`.
pub fn magnitude(flow: &FlowField) -> Vec<f32> {
    flow.magnitude()
}

/// Per-pixel flow orientation `atan2(v, u)` in radians, `(-π, π]` (image axes: y down).
pub fn orientation(flow: &FlowField) -> Vec<f32> {
    flow.angle()
}

/// Area-averaging resize of one plane to `dw x dh` (exact box integration; OpenCV's
/// `INTER_AREA` for down-scaling).
pub fn resize_area(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; dw * dh];
    if sw == 0 || sh == 0 || dw == 0 || dh == 0 {
        return out;
    }
    let (fx, fy) = (sw as f64 / dw as f64, sh as f64 / dh as f64);
    // weights of source index i for destination cell [a, b)
    let spans = |n: usize, f: f64, sn: usize| -> Vec<Vec<(usize, f64)>> {
        (0..n)
            .map(|d| {
                let (a, b) = (d as f64 * f, (d + 1) as f64 * f);
                if f <= 1.0 {
                    // up-sampling: bilinear on pixel centres
                    let c = ((d as f64 + 0.5) * f - 0.5).clamp(0.0, (sn - 1) as f64);
                    let i0 = c.floor() as usize;
                    let i1 = (i0 + 1).min(sn - 1);
                    let t = c - i0 as f64;
                    return vec![(i0, 1.0 - t), (i1, t)];
                }
                let mut v = Vec::new();
                let mut i = a.floor() as usize;
                while (i as f64) < b && i < sn {
                    let lo = a.max(i as f64);
                    let hi = b.min((i + 1) as f64);
                    if hi > lo {
                        v.push((i, (hi - lo) / f));
                    }
                    i += 1;
                }
                v
            })
            .collect()
    };
    let xs = spans(dw, fx, sw);
    let ys = spans(dh, fy, sh);
    for (dy, yw) in ys.iter().enumerate() {
        for (dx, xw) in xs.iter().enumerate() {
            let mut s = 0.0f64;
            for &(yi, wy) in yw {
                for &(xi, wx) in xw {
                    s += wy * wx * f64::from(src[yi * sw + xi]);
                }
            }
            out[dy * dw + dx] = s as f32;
        }
    }
    out
}

/// Min-max normalisation to `[0, 1]` (a constant plane maps to 0).
pub fn min_max_normalise(v: &mut [f32]) {
    let (lo, hi) = v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let span = hi - lo;
    for x in v.iter_mut() {
        *x = if span > 0.0 && span.is_finite() { (*x - lo) / span } else { 0.0 };
    }
}

/// Builder of STSTNet's three-channel input: `(u, v, strain)` resized to `size x size` by area
/// averaging and min-max normalised per channel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StstnetInputConfig {
    /// Output side (STSTNet: 28).
    pub size: usize,
    /// Strain variant.
    pub strain: StrainConfig,
}

impl Default for StstnetInputConfig {
    fn default() -> Self {
        Self { size: 28, strain: StrainConfig::ststnet() }
    }
}

/// STSTNet's input for one sample: three `size x size` planes in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StstnetInput {
    /// Side length.
    pub size: usize,
    /// Horizontal flow, normalised.
    pub u: Vec<f32>,
    /// Vertical flow, normalised.
    pub v: Vec<f32>,
    /// Optical strain, normalised.
    pub strain: Vec<f32>,
}

impl StstnetInputConfig {
    /// Builds the input from a flow field (strain computed at full resolution, then resized).
    pub fn build(&self, flow: &FlowField) -> Result<StstnetInput> {
        if self.size == 0 {
            return Err(invalid("size", self.size, "must be >= 1"));
        }
        let (w, h) = flow.size();
        if w == 0 || h == 0 {
            return Err(crate::Error::Empty { what: "flow field" });
        }
        crate::check_finite(flow.u(), "flow u")?;
        crate::check_finite(flow.v(), "flow v")?;
        let s = optical_strain(flow, &self.strain);
        let n = self.size;
        let mut u = resize_area(flow.u(), w, h, n, n);
        let mut v = resize_area(flow.v(), w, h, n, n);
        let mut st = resize_area(&s, w, h, n, n);
        min_max_normalise(&mut u);
        min_max_normalise(&mut v);
        min_max_normalise(&mut st);
        Ok(StstnetInput { size: n, u, v, strain: st })
    }
}

impl StstnetInput {
    /// Channels-first floats in `(u, v, strain)` order, values in `[0, 1]`.
    pub fn to_chw(&self) -> Vec<f32> {
        [&self.u[..], &self.v[..], &self.strain[..]].concat()
    }

    /// The released data's 8-bit PNG convention: an RGB image with **R = u, G = v, B = strain**
    /// (each `round(255 x normalised)`). The released PNGs have every channel spanning 0..255
    /// (per-image min-max) and the B channel is the non-negative, mostly dark strain (median 13 of
    /// 255 over 200 released inputs, versus 128 and 143 for R and G). The R = u, G = v assignment
    /// follows the paper's channel order and cannot be verified from the statistics alone.
    /// Read back with OpenCV's `imread`, the channels come in B, G, R order: `(strain, v, u)`.
    pub fn to_rgb8(&self) -> image::RgbImage {
        let n = self.size as u32;
        let q = |x: f32| (x * 255.0).round().clamp(0.0, 255.0) as u8;
        image::RgbImage::from_fn(n, n, |x, y| {
            let i = (y * n + x) as usize;
            image::Rgb([q(self.u[i]), q(self.v[i]), q(self.strain[i])])
        })
    }

    /// The input the released STSTNet weights expect: channels-first floats 0..255 in OpenCV's
    /// B, G, R order of the 8-bit PNG, i.e. `(strain, v, u)`, quantised as the PNG is.
    pub fn to_released_bgr_chw(&self) -> Vec<f32> {
        let q = |x: f32| (x * 255.0).round().clamp(0.0, 255.0);
        self.strain.iter().chain(&self.v).chain(&self.u).map(|&x| q(x)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// u = a x + b y, v = c x + d y: u_x = a, u_y = b, v_x = c, v_y = d everywhere.
    fn linear(w: usize, h: usize, a: f32, b: f32, c: f32, d: f32) -> FlowField {
        FlowField::from_fn(w, h, |x, y| (a * x as f32 + b * y as f32, c * x as f32 + d * y as f32))
    }

    #[test]
    fn strain_of_linear_field_is_analytic() {
        let (a, b, c, d) = (0.03f32, -0.02f32, 0.05f32, 0.01f32);
        let f = linear(12, 9, a, b, c, d);
        let sos = (a * a + d * d + 0.5 * (b + c).powi(2)).sqrt();
        let soq = (a * a + d * d + 0.5 * (b * b + c * c)).sqrt();
        for (cfg, expect, scale) in [
            (StrainConfig::ststnet(), sos, 1.0),
            (StrainConfig { cross: CrossTerm::SumOfSquares, derivative: Derivative::Central }, soq, 1.0),
            (StrainConfig::meb(), soq, 8.0),
        ] {
            let s = optical_strain(&f, &cfg);
            // central differences are exact everywhere on a linear field; Sobel in the interior
            // (BORDER_REFLECT_101 mirrors the field at the border)
            for y in 1..8 {
                for x in 1..11 {
                    let v = s[y * 12 + x];
                    assert!((v - expect * scale).abs() < 1e-4 * scale, "{cfg:?} at {x},{y}: {v}");
                }
            }
            if cfg.derivative == Derivative::Central {
                assert!(s.iter().all(|v| (v - expect).abs() < 1e-4));
            }
        }
        // forward differences: exact away from the last row / column
        let s = optical_strain(&f, &StrainConfig::softnet());
        assert!((s[3 * 12 + 4] - sos).abs() < 1e-5);
    }

    #[test]
    fn square_of_sum_and_sum_of_squares_differ_for_shear() {
        let f = linear(8, 8, 0.0, 0.1, -0.1, 0.0); // rotation: u_y + v_x = 0
        let a = optical_strain(&f, &StrainConfig::ststnet());
        let b =
            optical_strain(&f, &StrainConfig { cross: CrossTerm::SumOfSquares, ..StrainConfig::ststnet() });
        assert!(a[20].abs() < 1e-6);
        assert!((b[20] - (0.5f32 * 0.02).sqrt()).abs() < 1e-5);
    }

    #[test]
    fn ststnet_input_is_normalised_and_sized() {
        let f = linear(64, 64, 0.01, 0.02, -0.01, 0.03);
        let inp = StstnetInputConfig::default().build(&f).unwrap();
        assert_eq!(inp.u.len(), 28 * 28);
        for ch in [&inp.u, &inp.v] {
            let lo = ch.iter().cloned().fold(f32::INFINITY, f32::min);
            let hi = ch.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            assert!(lo.abs() < 1e-6 && (hi - 1.0).abs() < 1e-6);
        }
        let img = inp.to_rgb8();
        assert_eq!(img.dimensions(), (28, 28));
        // R = u: u grows with x and y, so the top-left is 0 and the bottom-right 255
        assert_eq!(img.get_pixel(0, 0)[0], 0);
        assert_eq!(img.get_pixel(27, 27)[0], 255);
        let bgr = inp.to_released_bgr_chw();
        assert_eq!(bgr[2 * 784 + 27 * 28 + 27], 255.0);
        assert!(StstnetInputConfig { size: 0, ..Default::default() }.build(&f).is_err());
    }

    #[test]
    fn area_resize_preserves_mean() {
        let src: Vec<f32> = (0..64 * 64).map(|i| (i % 13) as f32).collect();
        let out = resize_area(&src, 64, 64, 28, 28);
        let m1: f32 = src.iter().sum::<f32>() / src.len() as f32;
        let m2: f32 = out.iter().sum::<f32>() / out.len() as f32;
        assert!((m1 - m2).abs() < 0.05, "{m1} {m2}");
    }
}
