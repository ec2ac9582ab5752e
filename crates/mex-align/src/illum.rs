//! Illumination normalisation: histogram equalisation and CLAHE with OpenCV's semantics
//! (`cv::equalizeHist`, `cv::createCLAHE(clipLimit, tileGridSize)->apply`) on 8-bit values.

use mex_core::GrayF32;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

fn to_u8(img: &GrayF32) -> Vec<u8> {
    img.as_raw().iter().map(|&v| if v.is_nan() { 0 } else { v.round().clamp(0.0, 255.0) as u8 }).collect()
}

fn check(img: &GrayF32) -> Result<()> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err(Error::BadImage { width: w, height: h, reason: "empty image".into() });
    }
    Ok(())
}

/// OpenCV's `saturate_cast<uchar>(float)`: round half to even, clamp.
fn sat_u8(v: f32) -> u8 {
    v.round_ties_even().clamp(0.0, 255.0) as u8
}

/// Histogram equalisation as `cv::equalizeHist` (values rounded to 8 bits first; output 0..255).
pub fn equalize_hist(img: &GrayF32) -> Result<GrayF32> {
    check(img)?;
    let src = to_u8(img);
    let mut hist = [0u32; 256];
    for &v in &src {
        hist[v as usize] += 1;
    }
    let total = src.len() as u32;
    let mut lut = [0u8; 256];
    let first = hist.iter().position(|&c| c > 0).unwrap_or(0);
    if hist[first] == total {
        lut = [first as u8; 256];
    } else {
        let scale = 255.0f32 / (total - hist[first]) as f32;
        let mut sum = 0u32;
        for i in first + 1..256 {
            sum += hist[i];
            lut[i] = sat_u8(sum as f32 * scale);
        }
    }
    let (w, h) = img.dimensions();
    let data = src.iter().map(|&v| f32::from(lut[v as usize])).collect();
    GrayF32::from_raw(w, h, data).ok_or(Error::BadImage { width: w, height: h, reason: "buffer size".into() })
}

/// CLAHE parameters. `Default` = OpenCV's `createCLAHE()` (clip limit 40, 8x8 tiles).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClaheConfig {
    /// Contrast limit (relative to a uniform histogram); 0 disables clipping.
    pub clip_limit: f64,
    /// Number of tiles across.
    pub tiles_x: u32,
    /// Number of tiles down.
    pub tiles_y: u32,
}

impl Default for ClaheConfig {
    fn default() -> Self {
        Self { clip_limit: 40.0, tiles_x: 8, tiles_y: 8 }
    }
}

impl ClaheConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        if !(self.clip_limit.is_finite() && self.clip_limit >= 0.0) {
            return Err(Error::param("clip_limit", self.clip_limit, "must be finite and >= 0"));
        }
        if !(1..=256).contains(&self.tiles_x) || !(1..=256).contains(&self.tiles_y) {
            return Err(Error::param(
                "tiles",
                format!("{}x{}", self.tiles_x, self.tiles_y),
                "must lie in 1..=256",
            ));
        }
        Ok(())
    }
}

/// BORDER_REFLECT_101 index.
fn reflect101(i: usize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let j = i % period;
    if j < n {
        j
    } else {
        period - j
    }
}

/// Contrast-limited adaptive histogram equalisation with OpenCV's algorithm (reflect-101 padding
/// to a multiple of the tile grid, clip and redistribute with the residual step, bilinear
/// interpolation between tile look-up tables).
pub fn clahe(img: &GrayF32, cfg: &ClaheConfig) -> Result<GrayF32> {
    check(img)?;
    cfg.validate()?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (tx, ty) = (cfg.tiles_x as usize, cfg.tiles_y as usize);
    let src = to_u8(img);
    let (ew, eh) = if w % tx == 0 && h % ty == 0 { (w, h) } else { (w + tx - w % tx, h + ty - h % ty) };
    let ext: Vec<u8> = if (ew, eh) == (w, h) {
        src.clone()
    } else {
        (0..eh)
            .flat_map(|y| (0..ew).map(move |x| (x, y)))
            .map(|(x, y)| src[reflect101(y, h) * w + reflect101(x, w)])
            .collect()
    };
    let (tw, th) = (ew / tx, eh / ty);
    let area = (tw * th) as f64;
    let lut_scale = (255.0 / area) as f32;
    let clip = if cfg.clip_limit > 0.0 { ((cfg.clip_limit * area / 256.0) as i64).max(1) } else { 0 };
    let mut luts = vec![0u8; tx * ty * 256];
    for tyi in 0..ty {
        for txi in 0..tx {
            let mut hist = [0i64; 256];
            for y in tyi * th..(tyi + 1) * th {
                for &v in &ext[y * ew + txi * tw..y * ew + (txi + 1) * tw] {
                    hist[v as usize] += 1;
                }
            }
            if clip > 0 {
                let mut clipped = 0i64;
                for c in hist.iter_mut() {
                    if *c > clip {
                        clipped += *c - clip;
                        *c = clip;
                    }
                }
                let batch = clipped / 256;
                let mut residual = clipped - batch * 256;
                for c in hist.iter_mut() {
                    *c += batch;
                }
                if residual != 0 {
                    let step = (256 / residual).max(1) as usize;
                    let mut i = 0usize;
                    while i < 256 && residual > 0 {
                        hist[i] += 1;
                        i += step;
                        residual -= 1;
                    }
                }
            }
            let lut = &mut luts[(tyi * tx + txi) * 256..(tyi * tx + txi + 1) * 256];
            let mut sum = 0i64;
            for (l, &c) in lut.iter_mut().zip(&hist) {
                sum += c;
                *l = sat_u8(sum as f32 * lut_scale);
            }
        }
    }
    let inv_tw = 1.0f32 / tw as f32;
    let inv_th = 1.0f32 / th as f32;
    let mut out = vec![0.0f32; w * h];
    for y in 0..h {
        let tyf = y as f32 * inv_th - 0.5;
        let t1 = tyf.floor();
        let ya = tyf - t1;
        let ty1 = (t1 as i64).max(0) as usize;
        let ty2 = ((t1 as i64 + 1) as usize).min(ty - 1);
        for x in 0..w {
            let txf = x as f32 * inv_tw - 0.5;
            let t1x = txf.floor();
            let xa = txf - t1x;
            let tx1 = (t1x as i64).max(0) as usize;
            let tx2 = ((t1x as i64 + 1) as usize).min(tx - 1);
            let v = src[y * w + x] as usize;
            let l = |ty: usize, txx: usize| f32::from(luts[(ty * tx + txx) * 256 + v]);
            let res = (l(ty1, tx1) * (1.0 - xa) + l(ty1, tx2) * xa) * (1.0 - ya)
                + (l(ty2, tx1) * (1.0 - xa) + l(ty2, tx2) * xa) * ya;
            out[y * w + x] = f32::from(sat_u8(res));
        }
    }
    GrayF32::from_raw(w as u32, h as u32, out).ok_or(Error::BadImage {
        width: w as u32,
        height: h as u32,
        reason: "buffer size".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equalize_hand_example() {
        // Values 10 (x2), 20 (x1), 30 (x1): cdf after the first = 1, 2 -> scale 255/2.
        let img = GrayF32::from_raw(4, 1, vec![10.0, 10.0, 20.0, 30.0]).unwrap();
        let e = equalize_hist(&img).unwrap();
        assert_eq!(e.as_raw(), &vec![0.0, 0.0, 128.0, 255.0]);
        let flat = GrayF32::from_pixel(3, 3, image::Luma([77.0]));
        assert!(equalize_hist(&flat).unwrap().iter().all(|&v| v == 77.0));
        assert!(equalize_hist(&GrayF32::new(0, 0)).is_err());
    }

    #[test]
    fn clahe_single_tile_without_clip_is_equalisation_like() {
        // One tile, no clip: lut = round(cdf * 255 / N).
        let img = GrayF32::from_raw(4, 1, vec![10.0, 10.0, 20.0, 30.0]).unwrap();
        let c = clahe(&img, &ClaheConfig { clip_limit: 0.0, tiles_x: 1, tiles_y: 1 }).unwrap();
        assert_eq!(c.as_raw(), &vec![128.0, 128.0, 191.0, 255.0]);
        // Tiny images (smaller than the grid) work through padding.
        let tiny = GrayF32::from_fn(5, 5, |x, y| image::Luma([(x * 40 + y) as f32]));
        assert_eq!(clahe(&tiny, &ClaheConfig::default()).unwrap().dimensions(), (5, 5));
        assert!(clahe(&tiny, &ClaheConfig { clip_limit: -1.0, ..Default::default() }).is_err());
    }

    #[test]
    fn reflect101_indices() {
        assert_eq!((5..9).map(|i| reflect101(i, 5)).collect::<Vec<_>>(), vec![3, 2, 1, 0]);
    }
}
