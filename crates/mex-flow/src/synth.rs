//! Synthetic frame pairs with known flow, for tests, examples and benchmarks.
//!
//! Convention: the estimators return the flow `w` from `frame0` to `frame1`, with
//! `frame0(x) = frame1(x + w(x))`. The generators therefore take a texture as `frame1` and build
//! `frame0` by sampling it at `x + w(x)` (inverse warping), which makes `w` the exact flow on
//! `frame0`'s grid. Analytic textures are evaluated exactly; image textures with bicubic sampling.

use crate::{FlowField, GrayF32};
use mex_core::Similarity;

/// A deterministic SplitMix64 generator (no external dependency).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }
}

/// A smooth random texture: a sum of oriented sinusoids (wavelengths 5 to 24 px) around 128,
/// evaluable at any real position.
#[derive(Debug, Clone)]
pub struct SmoothTexture {
    comps: Vec<[f32; 4]>,
}

impl SmoothTexture {
    /// A texture from a seed.
    pub fn new(seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let comps = (0..14)
            .map(|_| {
                let lambda = rng.range(5.0, 24.0);
                let theta = rng.range(0.0, std::f64::consts::TAU);
                let k = std::f64::consts::TAU / lambda;
                [
                    rng.range(8.0, 18.0) as f32,
                    (k * theta.cos()) as f32,
                    (k * theta.sin()) as f32,
                    rng.range(0.0, std::f64::consts::TAU) as f32,
                ]
            })
            .collect();
        Self { comps }
    }

    /// Intensity at `(x, y)`.
    pub fn eval(&self, x: f32, y: f32) -> f32 {
        let s: f32 = self.comps.iter().map(|c| c[0] * (c[1] * x + c[2] * y + c[3]).sin()).sum();
        (128.0 + s).clamp(0.0, 255.0)
    }

    /// Rasterises the texture.
    pub fn render(&self, w: usize, h: usize) -> GrayF32 {
        GrayF32::from_fn(w as u32, h as u32, |x, y| image::Luma([self.eval(x as f32, y as f32)]))
    }
}

/// `(frame0, frame1)` from an analytic texture and a known flow field (exact).
pub fn pair_from_texture(tex: &SmoothTexture, flow: &FlowField) -> (GrayF32, GrayF32) {
    let (w, h) = flow.size();
    let f1 = tex.render(w, h);
    let f0 = GrayF32::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        image::Luma([tex.eval(x as f32 + flow.u()[i], y as f32 + flow.v()[i])])
    });
    (f0, f1)
}

/// `(frame0, frame1)` from an image texture (`frame1`) and a known flow field, sampling the image
/// bicubically at `x + w(x)`; the flow must have the image's size.
pub fn pair_from_image(img: &GrayF32, flow: &FlowField) -> (GrayF32, GrayF32) {
    let (w, h) = flow.size();
    let f0 = warp_bicubic(img, flow);
    let f1 = GrayF32::from_fn(w as u32, h as u32, |x, y| *img.get_pixel(x, y));
    (f0, f1)
}

/// Samples `img` at `x + flow(x)` for every pixel (bicubic, replicated borders): the backward warp.
pub fn warp_bicubic(img: &GrayF32, flow: &FlowField) -> GrayF32 {
    let (w, h) = flow.size();
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    GrayF32::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        let v = crate::imgops::sample_bicubic(
            img.as_raw(),
            iw,
            ih,
            x as f32 + flow.u()[i],
            y as f32 + flow.v()[i],
        );
        image::Luma([v.clamp(0.0, 255.0)])
    })
}

/// A constant translation field.
pub fn translation_field(w: usize, h: usize, dx: f32, dy: f32) -> FlowField {
    FlowField::from_fn(w, h, |_, _| (dx, dy))
}

/// The flow `S(x) - x` of a similarity transform.
pub fn similarity_field(w: usize, h: usize, s: &Similarity) -> FlowField {
    FlowField::from_fn(w, h, |x, y| {
        let (a, b) = s.apply_f64(x as f64, y as f64);
        ((a - x as f64) as f32, (b - y as f64) as f32)
    })
}

/// One Gaussian bump of displacement: centre, spread and peak displacement `(ax, ay)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bump {
    /// Centre x.
    pub cx: f32,
    /// Centre y.
    pub cy: f32,
    /// Standard deviation in pixels.
    pub sigma: f32,
    /// Peak horizontal displacement.
    pub ax: f32,
    /// Peak vertical displacement.
    pub ay: f32,
}

/// The sum of Gaussian bumps of displacement (smooth local deformations, the size of facial
/// action units).
pub fn bumps_field(w: usize, h: usize, bumps: &[Bump]) -> FlowField {
    FlowField::from_fn(w, h, |x, y| {
        let mut u = 0.0;
        let mut v = 0.0;
        for b in bumps {
            let d2 = (x as f32 - b.cx).powi(2) + (y as f32 - b.cy).powi(2);
            let g = (-d2 / (2.0 * b.sigma * b.sigma)).exp();
            u += b.ax * g;
            v += b.ay * g;
        }
        (u, v)
    })
}

/// `n` random bumps with peak displacements of `min_amp..max_amp` pixels in random directions
/// and spreads of 1/10 to 1/5 of the image side.
pub fn random_bumps(w: usize, h: usize, n: usize, min_amp: f32, max_amp: f32, seed: u64) -> Vec<Bump> {
    let mut rng = SplitMix64::new(seed ^ 0xB0B);
    let side = w.min(h) as f64;
    (0..n)
        .map(|_| {
            let amp = rng.range(f64::from(min_amp), f64::from(max_amp)) as f32;
            let dir = rng.range(0.0, std::f64::consts::TAU) as f32;
            Bump {
                cx: rng.range(0.25 * w as f64, 0.75 * w as f64) as f32,
                cy: rng.range(0.25 * h as f64, 0.75 * h as f64) as f32,
                sigma: rng.range(side / 10.0, side / 5.0) as f32,
                ax: amp * dir.cos(),
                ay: amp * dir.sin(),
            }
        })
        .collect()
}

/// A translated pair on a random smooth texture: `(frame0, frame1, true flow)`.
pub fn translated_pair(w: usize, h: usize, dx: f32, dy: f32, seed: u64) -> (GrayF32, GrayF32, FlowField) {
    let tex = SmoothTexture::new(seed);
    let flow = translation_field(w, h, dx, dy);
    let (f0, f1) = pair_from_texture(&tex, &flow);
    (f0, f1, flow)
}

/// A pair with random Gaussian-bump deformations (`0.2..max_amp` px) plus a sub-pixel
/// translation on a random smooth texture: `(frame0, frame1, true flow)`.
pub fn deformed_pair(w: usize, h: usize, max_amp: f32, seed: u64) -> (GrayF32, GrayF32, FlowField) {
    let tex = SmoothTexture::new(seed);
    let bumps = random_bumps(w, h, 3, 0.2, max_amp, seed);
    let flow = bumps_field(w, h, &bumps);
    let (f0, f1) = pair_from_texture(&tex, &flow);
    (f0, f1, flow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translated_pair_is_consistent() {
        let (f0, f1, flow) = translated_pair(32, 32, 2.0, -1.0, 3);
        // with an integer shift, frame0(x, y) = frame1(x + 2, y - 1) exactly
        for y in 1..31u32 {
            for x in 0..30u32 {
                assert!((f0.get_pixel(x, y)[0] - f1.get_pixel(x + 2, y - 1)[0]).abs() < 1e-3);
            }
        }
        assert_eq!(flow.get(5, 5), Some((2.0, -1.0)));
    }

    #[test]
    fn similarity_field_matches_transform() {
        let s = Similarity::from_params(1.01, 0.01, 0.5, -0.25);
        let f = similarity_field(16, 16, &s);
        let (u, v) = f.get(10, 3).unwrap();
        let p = s.apply_f64(10.0, 3.0);
        assert!((u - (p.0 - 10.0) as f32).abs() < 1e-5 && (v - (p.1 - 3.0) as f32).abs() < 1e-5);
    }
}
