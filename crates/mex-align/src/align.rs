//! Similarity alignment of faces to a canonical template, and clip alignment.

use image::{Rgb, RgbImage};
use mex_core::{GrayF32, Landmarks, Point2, Similarity};
use serde::{Deserialize, Serialize};

use crate::template::template;
use crate::{Error, Result};

/// Alignment parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlignConfig {
    /// Side of the square output crop in pixels.
    pub size: u32,
    /// Margin on each side, as a fraction of `size`: the template's unit square maps to
    /// `[margin·size, (1-margin)·size]²`.
    pub margin: f32,
}

impl Default for AlignConfig {
    fn default() -> Self {
        Self { size: 128, margin: 0.15 }
    }
}

impl AlignConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        if !(8..=4096).contains(&self.size) {
            return Err(Error::param("size", self.size, "must lie in 8..=4096"));
        }
        if !(self.margin.is_finite() && (-0.5..0.45).contains(&self.margin)) {
            return Err(Error::param("margin", self.margin, "must lie in [-0.5, 0.45)"));
        }
        Ok(())
    }

    /// Validates and builds the aligner.
    pub fn build(&self) -> Result<Aligner> {
        self.validate()?;
        Ok(Aligner { config: self.clone() })
    }
}

/// Maps faces onto the canonical template (Umeyama least squares) and warps them (bilinear).
#[derive(Debug, Clone)]
pub struct Aligner {
    config: AlignConfig,
}

impl Aligner {
    /// The configuration.
    pub fn config(&self) -> &AlignConfig {
        &self.config
    }

    /// The template of `landmarks`' scheme in crop pixels.
    pub fn template_pixels(&self, scheme: mex_core::LandmarkScheme) -> Vec<Point2> {
        let s = self.config.size as f32;
        let m = self.config.margin * s;
        let k = s - 2.0 * m;
        template(scheme).into_iter().map(|p| Point2::new(m + p.x * k, m + p.y * k)).collect()
    }

    /// The similarity taking image pixels to crop pixels for these landmarks.
    pub fn transform(&self, landmarks: &Landmarks) -> Result<Similarity> {
        let dst = self.template_pixels(landmarks.scheme);
        Ok(Similarity::estimate(&landmarks.points, &dst)?)
    }

    /// Warps a gray image into the crop with `t` (image → crop).
    pub fn warp_gray(&self, img: &GrayF32, t: &Similarity) -> Result<GrayF32> {
        let mut out = GrayF32::new(self.config.size, self.config.size);
        warp_gray_into(img, t, &mut out)?;
        Ok(out)
    }

    /// Warps an RGB image into the crop with `t` (image → crop).
    pub fn warp_rgb(&self, img: &RgbImage, t: &Similarity) -> Result<RgbImage> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Err(Error::BadImage { width: w, height: h, reason: "empty image".into() });
        }
        let inv = t.inverse()?;
        let s = self.config.size;
        let mut out = RgbImage::new(s, s);
        let raw = img.as_raw();
        for (u, v, px) in out.enumerate_pixels_mut() {
            let (x, y) = inv.apply_f64(f64::from(u), f64::from(v));
            let mut c = [0.0f32; 3];
            bilinear(w as usize, h as usize, x as f32, y as f32, |i, wt| {
                for k in 0..3 {
                    c[k] += wt * f32::from(raw[3 * i + k]);
                }
            });
            *px = Rgb(c.map(|v| v.round().clamp(0.0, 255.0) as u8));
        }
        Ok(out)
    }

    /// Aligns one gray image from its landmarks: `(crop, image → crop transform)`.
    pub fn align_gray(&self, img: &GrayF32, landmarks: &Landmarks) -> Result<(GrayF32, Similarity)> {
        let t = self.transform(landmarks)?;
        Ok((self.warp_gray(img, &t)?, t))
    }

    /// Aligns a clip (see [`ClipMode`]). `landmarks[i]` are frame `i`'s landmarks, `None` where no
    /// face was found; missing frames take the nearest frame's transform. Errors with
    /// [`Error::NoFace`] when no frame (in `Onset` mode: the first frame) has landmarks.
    pub fn align_clip(
        &self,
        frames: &[GrayF32],
        landmarks: &[Option<Landmarks>],
        mode: ClipMode,
    ) -> Result<AlignedClip> {
        if frames.len() != landmarks.len() {
            return Err(Error::SizeMismatch { left: (frames.len(), 0), right: (landmarks.len(), 0) });
        }
        if frames.is_empty() {
            return Err(Error::param("frames", 0, "a clip needs at least one frame"));
        }
        let transforms: Vec<Similarity> = match mode {
            ClipMode::Onset => {
                let lm = landmarks[0]
                    .as_ref()
                    .ok_or_else(|| Error::NoFace { context: Some("onset frame 0".into()) })?;
                vec![self.transform(lm)?; frames.len()]
            }
            ClipMode::PerFrame { smoothing_radius } => {
                let raw: Vec<Option<Similarity>> = landmarks
                    .iter()
                    .map(|l| l.as_ref().map(|l| self.transform(l)).transpose())
                    .collect::<Result<_>>()?;
                if raw.iter().all(Option::is_none) {
                    return Err(Error::NoFace { context: Some("every frame of the clip".into()) });
                }
                let filled = fill_nearest(&raw);
                smooth(&filled, smoothing_radius)
            }
        };
        let aligned =
            frames.iter().zip(&transforms).map(|(f, t)| self.warp_gray(f, t)).collect::<Result<Vec<_>>>()?;
        Ok(AlignedClip { frames: aligned, transforms })
    }
}

/// How a clip is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ClipMode {
    /// The onset (first) frame's transform for every frame (as MEB's crop_and_align does): no
    /// landmark jitter enters the crops, head motion stays.
    Onset,
    /// Each frame's own transform, smoothed over time with a centred moving average of the
    /// transform parameters over `2·smoothing_radius + 1` frames (0 = no smoothing).
    PerFrame {
        /// Half-width of the moving-average window, in frames.
        smoothing_radius: usize,
    },
}

/// An aligned clip: gray crops and the image → crop transform of each frame.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignedClip {
    /// Aligned frames, all `size x size`.
    pub frames: Vec<GrayF32>,
    /// Image → crop transform of each frame.
    pub transforms: Vec<Similarity>,
}

fn fill_nearest(raw: &[Option<Similarity>]) -> Vec<Similarity> {
    (0..raw.len())
        .map(|i| {
            (0..raw.len())
                .flat_map(|d| [i.checked_sub(d), Some(i + d)])
                .flatten()
                .find_map(|j| raw.get(j).copied().flatten())
                .unwrap_or_default()
        })
        .collect()
}

fn smooth(t: &[Similarity], r: usize) -> Vec<Similarity> {
    if r == 0 {
        return t.to_vec();
    }
    (0..t.len())
        .map(|i| {
            let lo = i.saturating_sub(r);
            let hi = (i + r).min(t.len() - 1);
            let n = (hi - lo + 1) as f64;
            let mut s = Similarity { a: 0.0, b: 0.0, tx: 0.0, ty: 0.0 };
            for x in &t[lo..=hi] {
                s.a += x.a / n;
                s.b += x.b / n;
                s.tx += x.tx / n;
                s.ty += x.ty / n;
            }
            s
        })
        .collect()
}

/// Bilinear sampling with edge clamping: calls `f(index, weight)` for the (up to) four taps.
#[inline]
fn bilinear(w: usize, h: usize, x: f32, y: f32, mut f: impl FnMut(usize, f32)) {
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let x0 = x.floor() as usize;
    let y0 = y.floor() as usize;
    let x1 = (x0 + 1).min(w - 1);
    let y1 = (y0 + 1).min(h - 1);
    let fx = x - x0 as f32;
    let fy = y - y0 as f32;
    f(y0 * w + x0, (1.0 - fx) * (1.0 - fy));
    f(y0 * w + x1, fx * (1.0 - fy));
    f(y1 * w + x0, (1.0 - fx) * fy);
    f(y1 * w + x1, fx * fy);
}

/// Warps `img` into `out` (its size is the crop size) with `t` (image → crop), bilinear, edges
/// clamped. Errors on an empty image or a degenerate transform.
pub fn warp_gray_into(img: &GrayF32, t: &Similarity, out: &mut GrayF32) -> Result<()> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err(Error::BadImage { width: w, height: h, reason: "empty image".into() });
    }
    let inv = t.inverse()?;
    let raw = img.as_raw();
    let ow = out.width() as usize;
    for (i, px) in out.iter_mut().enumerate() {
        let (u, v) = ((i % ow) as f64, (i / ow) as f64);
        let (x, y) = inv.apply_f64(u, v);
        let mut acc = 0.0f32;
        bilinear(w as usize, h as usize, x as f32, y as f32, |k, wt| acc += wt * raw[k]);
        *px = acc;
    }
    Ok(())
}

/// Normalised cross-correlation of two equal-size images (1 = identical up to gain and offset).
pub fn ncc(a: &GrayF32, b: &GrayF32) -> Result<f64> {
    if a.dimensions() != b.dimensions() {
        let (aw, ah) = a.dimensions();
        let (bw, bh) = b.dimensions();
        return Err(Error::SizeMismatch {
            left: (aw as usize, ah as usize),
            right: (bw as usize, bh as usize),
        });
    }
    let n = a.as_raw().len() as f64;
    if n == 0.0 {
        return Err(Error::BadImage { width: 0, height: 0, reason: "empty image".into() });
    }
    let ma = a.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let mb = b.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.as_raw().iter().zip(b.as_raw()) {
        let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    Ok(if saa > 0.0 && sbb > 0.0 { sab / (saa * sbb).sqrt() } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mex_core::LandmarkScheme;

    #[test]
    fn transform_maps_template_onto_itself_and_recovers_known_motion() {
        let al = AlignConfig { size: 100, margin: 0.1 }.build().unwrap();
        let tpl = al.template_pixels(LandmarkScheme::Five);
        // Landmarks = template moved by a known similarity: the estimated transform is its inverse.
        let motion = Similarity::from_params(1.7, 0.3, 40.0, -12.0);
        let pts: Vec<Point2> = tpl.iter().map(|p| motion.apply(*p)).collect();
        let t = al.transform(&Landmarks::new(LandmarkScheme::Five, pts).unwrap()).unwrap();
        let id = t.compose(&motion);
        assert!((id.a - 1.0).abs() < 1e-5 && id.b.abs() < 1e-5 && id.tx.abs() < 1e-3 && id.ty.abs() < 1e-3);
    }

    #[test]
    fn warp_of_a_shift_moves_pixels() {
        let img = GrayF32::from_fn(20, 20, |x, y| image::Luma([(x * 3 + y * 7) as f32]));
        let al = AlignConfig { size: 8, margin: 0.0 }.build().unwrap();
        let t = Similarity { a: 1.0, b: 0.0, tx: -5.0, ty: -4.0 };
        let out = al.warp_gray(&img, &t).unwrap();
        // out(u, v) = img(u + 5, v + 4)
        assert_eq!(out.get_pixel(2, 3)[0], ((2 + 5) * 3 + (3 + 4) * 7) as f32);
        // Half-pixel shift: bilinear average.
        let t = Similarity { a: 1.0, b: 0.0, tx: -0.5, ty: 0.0 };
        let out = al.warp_gray(&img, &t).unwrap();
        assert!((out.get_pixel(1, 1)[0] - (1.5 * 3.0 + 7.0)).abs() < 1e-5);
    }

    #[test]
    fn clip_modes() {
        let al = AlignConfig { size: 16, margin: 0.1 }.build().unwrap();
        let frames: Vec<GrayF32> =
            (0..5).map(|i| GrayF32::from_fn(40, 40, |x, y| image::Luma([(x + y + i) as f32]))).collect();
        let tpl = al.template_pixels(LandmarkScheme::Five);
        let lms: Vec<Option<Landmarks>> = (0..5)
            .map(|i| {
                let m = Similarity::from_params(1.5, 0.0, 3.0 + i as f64, 2.0);
                if i == 2 {
                    None
                } else {
                    Some(
                        Landmarks::new(LandmarkScheme::Five, tpl.iter().map(|p| m.apply(*p)).collect())
                            .unwrap(),
                    )
                }
            })
            .collect();
        let onset = al.align_clip(&frames, &lms, ClipMode::Onset).unwrap();
        assert!(onset.transforms.iter().all(|t| *t == onset.transforms[0]));
        let per = al.align_clip(&frames, &lms, ClipMode::PerFrame { smoothing_radius: 0 }).unwrap();
        // Frame 2 has no face: nearest frame (1) transform.
        assert_eq!(per.transforms[2], per.transforms[1]);
        let sm = al.align_clip(&frames, &lms, ClipMode::PerFrame { smoothing_radius: 1 }).unwrap();
        // Translation is linear in i except the filled frame: the average at 3 is over 2(=1),3,4.
        let tx: Vec<f64> = per.transforms.iter().map(|t| t.tx).collect();
        assert!((sm.transforms[3].tx - (tx[2] + tx[3] + tx[4]) / 3.0).abs() < 1e-9);
        let none: Vec<Option<Landmarks>> = vec![None; 5];
        assert!(matches!(al.align_clip(&frames, &none, ClipMode::Onset), Err(Error::NoFace { .. })));
        assert!(matches!(
            al.align_clip(&frames, &none, ClipMode::PerFrame { smoothing_radius: 2 }),
            Err(Error::NoFace { .. })
        ));
    }

    #[test]
    fn config_validation() {
        assert!(AlignConfig { size: 0, margin: 0.1 }.build().is_err());
        assert!(AlignConfig { size: 64, margin: f32::NAN }.build().is_err());
        assert!(AlignConfig::default().build().is_ok());
    }
}
