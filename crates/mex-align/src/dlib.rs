//! dlib's `shape_predictor` (Kazemi & Sullivan 2014, an ensemble of regression trees) in pure Rust:
//! reads dlib's own serialisation format and runs the cascade exactly as
//! `dlib/image_processing/shape_predictor.h` does.
//!
//! Serialisation (dlib/serialize.h): integers are a control byte (low 4 bits = number of
//! little-endian magnitude bytes that follow, bit 7 = negative) plus those bytes; floats are
//! `float_details` = integer mantissa and integer exponent (value = mantissa · 2^exponent);
//! `std::vector` = length then items; `matrix` = `-rows`, `-cols`, then the elements row by row;
//! `dlib::vector<float,2>` = x then y. The predictor is `version (=1), initial_shape,
//! forests (vector of vector of trees: splits (idx1, idx2, thresh), leaf_values), anchor_idx, deltas`.

use std::path::Path;

use image::GrayImage;
use mex_core::{BBox, LandmarkScheme, Landmarks, Point2};

use crate::{Error, LandmarkModel, Result};

/// One split node: go left when `pixel[idx1] - pixel[idx2] > thresh`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// First feature pixel.
    pub idx1: u32,
    /// Second feature pixel.
    pub idx2: u32,
    /// Threshold on the intensity difference.
    pub thresh: f32,
}

/// A complete binary regression tree stored as dlib stores it (splits in breadth-first order).
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionTree {
    /// Internal nodes; children of `i` are `2i+1` (left) and `2i+2` (right).
    pub splits: Vec<Split>,
    /// Leaf shape increments (each of the shape's length), `splits.len() + 1` of them.
    pub leaf_values: Vec<Vec<f32>>,
}

impl RegressionTree {
    #[inline]
    fn leaf(&self, pixels: &[f32]) -> &[f32] {
        let mut i = 0usize;
        while i < self.splits.len() {
            let s = self.splits[i];
            i = if pixels[s.idx1 as usize] - pixels[s.idx2 as usize] > s.thresh {
                2 * i + 1
            } else {
                2 * i + 2
            };
        }
        &self.leaf_values[i - self.splits.len()]
    }
}

/// A dlib shape predictor (e.g. `shape_predictor_68_face_landmarks.dat`).
#[derive(Debug, Clone, PartialEq)]
pub struct ShapePredictor {
    /// Mean shape in box-normalised coordinates, `x0, y0, x1, y1, ...`.
    pub initial_shape: Vec<f32>,
    /// One forest per cascade level.
    pub forests: Vec<Vec<RegressionTree>>,
    /// Per level, the landmark each feature pixel is anchored to.
    pub anchor_idx: Vec<Vec<u32>>,
    /// Per level, each feature pixel's offset from its anchor in mean-shape coordinates.
    pub deltas: Vec<Vec<[f32; 2]>>,
}

/// A dlib `rectangle` (inclusive corners, integer pixels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DlibRect {
    /// Left column.
    pub left: i64,
    /// Top row.
    pub top: i64,
    /// Right column (inclusive).
    pub right: i64,
    /// Bottom row (inclusive).
    pub bottom: i64,
}

impl DlibRect {
    /// The rectangle `dlib.rectangle(round(x0), round(y0), round(x1), round(y1))` for a box.
    pub fn from_bbox(b: &BBox) -> Self {
        let r = |v: f32| v.round() as i64;
        Self { left: r(b.x0), top: r(b.y0), right: r(b.x1), bottom: r(b.y1) }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::DlibModel { path: None, offset: self.pos, reason: reason.into() }
    }

    fn byte(&mut self) -> Result<u8> {
        let v = *self.b.get(self.pos).ok_or_else(|| self.err("unexpected end of file (truncated model)"))?;
        self.pos += 1;
        Ok(v)
    }

    /// dlib's `unpack_int` for a signed 64-bit integer.
    fn int(&mut self) -> Result<i64> {
        let ctl = self.byte()?;
        let size = (ctl & 0x0F) as usize;
        if ctl & 0x70 != 0 || size > 8 {
            self.pos -= 1;
            return Err(self.err(format!("bad integer control byte 0x{ctl:02x}")));
        }
        let mut v: u64 = 0;
        for i in 0..size {
            v |= u64::from(self.byte()?) << (8 * i);
        }
        let v = i64::try_from(v).map_err(|_| self.err("integer overflow"))?;
        Ok(if ctl & 0x80 != 0 { -v } else { v })
    }

    fn uint(&mut self, what: &str) -> Result<u64> {
        let start = self.pos;
        let v = self.int()?;
        u64::try_from(v).map_err(|_| Error::DlibModel {
            path: None,
            offset: start,
            reason: format!("negative {what} {v}"),
        })
    }

    /// A container length, bounded by the bytes left (each item takes at least one byte).
    fn len(&mut self, what: &str) -> Result<usize> {
        let start = self.pos;
        let n = self.uint(what)?;
        if n > (self.b.len() - self.pos) as u64 {
            return Err(Error::DlibModel {
                path: None,
                offset: start,
                reason: format!(
                    "{what} {n} exceeds the remaining {} bytes (corrupt or truncated)",
                    self.b.len() - self.pos
                ),
            });
        }
        Ok(n as usize)
    }

    /// dlib's `float_details` encoding.
    fn float(&mut self) -> Result<f32> {
        let start = self.pos;
        if let Some(&c) = self.b.get(self.pos) {
            if c & 0x70 != 0 {
                return Err(self.err("old ASCII float encoding is not supported"));
            }
        }
        let mantissa = self.int()?;
        let exponent = self.int()?;
        let v = match exponent {
            32000 => f64::INFINITY,
            32001 => f64::NEG_INFINITY,
            32002 => f64::NAN,
            e if (-2000..=2000).contains(&e) => mantissa as f64 * 2f64.powi(e as i32),
            e => {
                return Err(Error::DlibModel {
                    path: None,
                    offset: start,
                    reason: format!("float exponent {e} out of range"),
                })
            }
        };
        if !v.is_finite() {
            return Err(Error::DlibModel {
                path: None,
                offset: start,
                reason: "non-finite value in model".into(),
            });
        }
        Ok(v as f32)
    }

    fn column(&mut self, what: &str) -> Result<Vec<f32>> {
        let start = self.pos;
        let nr = self.int()?.unsigned_abs();
        let nc = self.int()?.unsigned_abs();
        let n = nr.checked_mul(nc).filter(|&n| n <= (self.b.len() - self.pos) as u64).ok_or_else(|| {
            Error::DlibModel {
                path: None,
                offset: start,
                reason: format!("{what}: bad matrix size {nr}x{nc}"),
            }
        })?;
        if nc != 1 && n > 0 {
            return Err(Error::DlibModel {
                path: None,
                offset: start,
                reason: format!("{what}: {nr}x{nc} is not a column"),
            });
        }
        (0..n).map(|_| self.float()).collect()
    }
}

fn put_int(out: &mut Vec<u8>, v: i64) {
    let neg = v < 0;
    let mut m = v.unsigned_abs();
    let mut bytes = Vec::with_capacity(8);
    loop {
        bytes.push((m & 0xFF) as u8);
        m >>= 8;
        if m == 0 {
            break;
        }
    }
    out.push(bytes.len() as u8 | if neg { 0x80 } else { 0 });
    out.extend_from_slice(&bytes);
}

fn put_float(out: &mut Vec<u8>, v: f32) {
    if v == 0.0 {
        put_int(out, 0);
        put_int(out, 0);
        return;
    }
    // v = m · 2^(e-24) with |m| < 2^24 exactly.
    let (mut m, mut e) = (f64::from(v), 0i64);
    while m.abs() >= 1.0 {
        m /= 2.0;
        e += 1;
    }
    while m.abs() < 0.5 {
        m *= 2.0;
        e -= 1;
    }
    put_int(out, (m * f64::from(1u32 << 24)) as i64);
    put_int(out, e - 24);
}

fn put_column(out: &mut Vec<u8>, v: &[f32]) {
    put_int(out, -(v.len() as i64));
    put_int(out, -1);
    for &x in v {
        put_float(out, x);
    }
}

impl ShapePredictor {
    /// Parses a model from dlib's serialisation. Corrupt or truncated bytes give
    /// [`Error::DlibModel`] with the byte offset.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { b: bytes, pos: 0 };
        let version = r.int()?;
        if version != 1 {
            return Err(Error::DlibModel {
                path: None,
                offset: 0,
                reason: format!("unexpected shape_predictor version {version} (expected 1)"),
            });
        }
        let initial_shape = r.column("initial_shape")?;
        let nlevels = r.len("number of cascade levels")?;
        let mut forests = Vec::with_capacity(nlevels);
        for _ in 0..nlevels {
            let ntrees = r.len("number of trees")?;
            let mut trees = Vec::with_capacity(ntrees);
            for _ in 0..ntrees {
                let nsplits = r.len("number of splits")?;
                let mut splits = Vec::with_capacity(nsplits);
                for _ in 0..nsplits {
                    let idx1 = r.uint("split index")?;
                    let idx2 = r.uint("split index")?;
                    let thresh = r.float()?;
                    let to32 = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
                    splits.push(Split { idx1: to32(idx1), idx2: to32(idx2), thresh });
                }
                let nleaves = r.len("number of leaves")?;
                let leaf_values = (0..nleaves).map(|_| r.column("leaf value")).collect::<Result<Vec<_>>>()?;
                trees.push(RegressionTree { splits, leaf_values });
            }
            forests.push(trees);
        }
        let n = r.len("number of anchor lists")?;
        let mut anchor_idx = Vec::with_capacity(n);
        for _ in 0..n {
            let m = r.len("number of anchors")?;
            anchor_idx.push(
                (0..m)
                    .map(|_| r.uint("anchor index").map(|v| u32::try_from(v).unwrap_or(u32::MAX)))
                    .collect::<Result<Vec<_>>>()?,
            );
        }
        let n = r.len("number of delta lists")?;
        let mut deltas = Vec::with_capacity(n);
        for _ in 0..n {
            let m = r.len("number of deltas")?;
            deltas.push((0..m).map(|_| Ok([r.float()?, r.float()?])).collect::<Result<Vec<_>>>()?);
        }
        let sp = Self { initial_shape, forests, anchor_idx, deltas };
        sp.validate().map_err(|reason| Error::DlibModel { path: None, offset: r.pos, reason })?;
        Ok(sp)
    }

    /// Reads a model file (e.g. `/usr/share/dlib/shape_predictor_68_face_landmarks.dat`).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            Error::DlibModel { offset, reason, .. } => {
                Error::DlibModel { path: Some(path.to_path_buf()), offset, reason }
            }
            e => e,
        })
    }

    /// Serialises the model in dlib's format (readable by dlib's `deserialize`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_int(&mut out, 1);
        put_column(&mut out, &self.initial_shape);
        put_int(&mut out, self.forests.len() as i64);
        for f in &self.forests {
            put_int(&mut out, f.len() as i64);
            for t in f {
                put_int(&mut out, t.splits.len() as i64);
                for s in &t.splits {
                    put_int(&mut out, i64::from(s.idx1));
                    put_int(&mut out, i64::from(s.idx2));
                    put_float(&mut out, s.thresh);
                }
                put_int(&mut out, t.leaf_values.len() as i64);
                for l in &t.leaf_values {
                    put_column(&mut out, l);
                }
            }
        }
        put_int(&mut out, self.anchor_idx.len() as i64);
        for a in &self.anchor_idx {
            put_int(&mut out, a.len() as i64);
            for &i in a {
                put_int(&mut out, i64::from(i));
            }
        }
        put_int(&mut out, self.deltas.len() as i64);
        for d in &self.deltas {
            put_int(&mut out, d.len() as i64);
            for p in d {
                put_float(&mut out, p[0]);
                put_float(&mut out, p[1]);
            }
        }
        out
    }

    /// Structural checks that make prediction panic-free.
    fn validate(&self) -> std::result::Result<(), String> {
        let len = self.initial_shape.len();
        if len == 0 || !len.is_multiple_of(2) {
            return Err(format!("initial shape has {len} values (needs a positive even number)"));
        }
        let nparts = len / 2;
        if self.forests.len() != self.anchor_idx.len() || self.forests.len() != self.deltas.len() {
            return Err(format!(
                "{} cascade levels but {} anchor lists and {} delta lists",
                self.forests.len(),
                self.anchor_idx.len(),
                self.deltas.len()
            ));
        }
        for (lvl, ((trees, anchors), deltas)) in
            self.forests.iter().zip(&self.anchor_idx).zip(&self.deltas).enumerate()
        {
            if anchors.len() != deltas.len() {
                return Err(format!("level {lvl}: {} anchors but {} deltas", anchors.len(), deltas.len()));
            }
            if let Some(a) = anchors.iter().find(|&&a| a as usize >= nparts) {
                return Err(format!("level {lvl}: anchor {a} >= {nparts} parts"));
            }
            for (ti, t) in trees.iter().enumerate() {
                if t.leaf_values.len() != t.splits.len() + 1 {
                    return Err(format!(
                        "level {lvl} tree {ti}: {} splits but {} leaves",
                        t.splits.len(),
                        t.leaf_values.len()
                    ));
                }
                if let Some(s) = t
                    .splits
                    .iter()
                    .find(|s| s.idx1 as usize >= deltas.len() || s.idx2 as usize >= deltas.len())
                {
                    return Err(format!(
                        "level {lvl} tree {ti}: split feature {s:?} >= {} pixels",
                        deltas.len()
                    ));
                }
                if let Some(l) = t.leaf_values.iter().find(|l| l.len() != len) {
                    return Err(format!(
                        "level {lvl} tree {ti}: leaf of length {} (shape has {len})",
                        l.len()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Number of landmarks.
    pub fn num_parts(&self) -> usize {
        self.initial_shape.len() / 2
    }

    /// Runs the cascade on `rect` of a gray image, exactly as dlib's `shape_predictor::operator()`;
    /// returns the landmarks in image pixels without dlib's final rounding to integers.
    pub fn predict(&self, img: &GrayImage, rect: DlibRect) -> Vec<Point2> {
        let mut shape = self.initial_shape.clone();
        let maxd = self.deltas.iter().map(Vec::len).max().unwrap_or(0);
        let mut pixels = vec![0.0f32; maxd];
        let mut leaves: Vec<&[f32]> =
            Vec::with_capacity(self.forests.iter().map(Vec::len).max().unwrap_or(0));
        // unnormalizing_tform(rect): (0,0) -> tl, (1,0) -> tr, (1,1) -> br.
        let (l, t) = (rect.left as f64, rect.top as f64);
        let (sw, sh) = ((rect.right - rect.left) as f64, (rect.bottom - rect.top) as f64);
        let (w, h) = (img.width() as i64, img.height() as i64);
        let raw = img.as_raw();
        for lvl in 0..self.forests.len() {
            let (m00, m01, m10, m11) = similarity_linear(&self.initial_shape, &shape);
            let deltas = &self.deltas[lvl];
            for ((px, d), &a) in pixels.iter_mut().zip(deltas).zip(&self.anchor_idx[lvl]) {
                let a = a as usize;
                let x = m00 * d[0] + m01 * d[1] + shape[2 * a];
                let y = m10 * d[0] + m11 * d[1] + shape[2 * a + 1];
                // dlib converts the mapped point to an integer `point` by rounding.
                let ix = (l + f64::from(x) * sw + 0.5).floor() as i64;
                let iy = (t + f64::from(y) * sh + 0.5).floor() as i64;
                *px = if ix >= 0 && iy >= 0 && ix < w && iy < h {
                    f32::from(raw[(iy * w + ix) as usize])
                } else {
                    0.0
                };
            }
            let feats = &pixels[..deltas.len()];
            // Walk every tree first (the features do not depend on the shape within a level), then
            // add the leaves in the same order while prefetching the ones ahead: the leaf tables are
            // far larger than the caches, so the sum is bound by memory latency otherwise.
            leaves.clear();
            leaves.extend(self.forests[lvl].iter().map(|tree| tree.leaf(feats)));
            for i in 0..leaves.len() {
                if let Some(ahead) = leaves.get(i + PREFETCH_AHEAD) {
                    prefetch(ahead);
                }
                for (s, v) in shape.iter_mut().zip(leaves[i]) {
                    *s += *v;
                }
            }
        }
        shape
            .chunks_exact(2)
            .map(|p| Point2::new((l + f64::from(p[0]) * sw) as f32, (t + f64::from(p[1]) * sh) as f32))
            .collect()
    }
}

/// How many leaves ahead [`ShapePredictor::predict`] prefetches.
const PREFETCH_AHEAD: usize = 6;

/// Hints the CPU to fetch every cache line of `v` (no effect on results).
#[inline(always)]
fn prefetch(v: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for c in v.chunks(16) {
            // SAFETY: prefetching is a hint; SSE is part of the x86-64 baseline and the pointer is
            // valid (it is never dereferenced by the instruction in a way that can fault).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(c.as_ptr().cast::<i8>()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// dlib's `find_similarity_transform(from, to)` (Umeyama) restricted to its 2x2 linear part, cast
/// to `f32` as `extract_feature_pixel_values` does.
fn similarity_linear(from: &[f32], to: &[f32]) -> (f32, f32, f32, f32) {
    let n = from.len() / 2;
    if n <= 1 {
        return (1.0, 0.0, 0.0, 1.0);
    }
    let (mut mfx, mut mfy, mut mtx, mut mty) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for i in 0..n {
        mfx += f64::from(from[2 * i]);
        mfy += f64::from(from[2 * i + 1]);
        mtx += f64::from(to[2 * i]);
        mty += f64::from(to[2 * i + 1]);
    }
    let nf = n as f64;
    mfx /= nf;
    mfy /= nf;
    mtx /= nf;
    mty /= nf;
    let mut sigma_from = 0.0;
    let mut cov = [[0.0f64; 2]; 2];
    for i in 0..n {
        let fx = f64::from(from[2 * i]) - mfx;
        let fy = f64::from(from[2 * i + 1]) - mfy;
        let tx = f64::from(to[2 * i]) - mtx;
        let ty = f64::from(to[2 * i + 1]) - mty;
        sigma_from += fx * fx + fy * fy;
        cov[0][0] += tx * fx;
        cov[0][1] += tx * fy;
        cov[1][0] += ty * fx;
        cov[1][1] += ty * fy;
    }
    sigma_from /= nf;
    for r in &mut cov {
        for v in r.iter_mut() {
            *v /= nf;
        }
    }
    // For 2x2, Umeyama's c·R (with the reflection fix) is the closest scaled rotation:
    // R = rot(θ) with θ = atan2(cov10 - cov01, cov00 + cov11), c = trace(DS)/σ² =
    // |(cov00 + cov11, cov10 - cov01)| / σ².
    let p = cov[0][0] + cov[1][1];
    let q = cov[1][0] - cov[0][1];
    let norm = p.hypot(q);
    if norm == 0.0 {
        let c = 0.0;
        return (c, 0.0, 0.0, c);
    }
    let c = if sigma_from != 0.0 { norm / sigma_from } else { 1.0 };
    let (cos, sin) = (p / norm, q / norm);
    ((c * cos) as f32, (-c * sin) as f32, (c * sin) as f32, (c * cos) as f32)
}

impl LandmarkModel for ShapePredictor {
    fn fit(&self, img: &GrayImage, bbox: &BBox) -> Result<Landmarks> {
        if img.width() == 0 || img.height() == 0 {
            return Err(Error::BadImage {
                width: img.width(),
                height: img.height(),
                reason: "empty image".into(),
            });
        }
        if !(bbox.x0.is_finite() && bbox.y0.is_finite() && bbox.x1.is_finite() && bbox.y1.is_finite()) {
            return Err(Error::param("bbox", format!("{bbox:?}"), "non-finite box"));
        }
        let pts = self.predict(img, DlibRect::from_bbox(bbox));
        let scheme = match pts.len() {
            68 => LandmarkScheme::SixtyEight,
            5 => LandmarkScheme::Five,
            n => {
                return Err(Error::param(
                    "shape predictor",
                    n,
                    "only 5- and 68-point models map to a landmark scheme",
                ))
            }
        };
        Ok(Landmarks::new(scheme, pts)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_and_float_encodings_round_trip() {
        for v in [0i64, 1, -1, 127, 128, 255, 256, -70000, i64::MAX / 3] {
            let mut b = Vec::new();
            put_int(&mut b, v);
            assert_eq!(Reader { b: &b, pos: 0 }.int().unwrap(), v);
        }
        // Hand-made: 0x02 0x34 0x12 = 0x1234; 0x81 0x05 = -5.
        assert_eq!(Reader { b: &[0x02, 0x34, 0x12], pos: 0 }.int().unwrap(), 0x1234);
        assert_eq!(Reader { b: &[0x81, 0x05], pos: 0 }.int().unwrap(), -5);
        // float_details: mantissa 3, exponent -1 = 1.5.
        assert_eq!(Reader { b: &[0x01, 0x03, 0x81, 0x01], pos: 0 }.float().unwrap(), 1.5);
        for v in [0.0f32, 1.0, -0.3, 1e-7, 12345.678, -2.5e4] {
            let mut b = Vec::new();
            put_float(&mut b, v);
            assert_eq!(Reader { b: &b, pos: 0 }.float().unwrap(), v);
        }
    }

    #[test]
    fn similarity_linear_recovers_rotation_scale() {
        let from = [0.0f32, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let (c, s) = (2.0f32 * 0.3f32.cos(), 2.0f32 * 0.3f32.sin());
        let to: Vec<f32> =
            from.chunks(2).flat_map(|p| [c * p[0] - s * p[1] + 5.0, s * p[0] + c * p[1] - 1.0]).collect();
        let (a, b, cc, d) = similarity_linear(&from, &to);
        assert!(
            (a - c).abs() < 1e-5 && (b + s).abs() < 1e-5 && (cc - s).abs() < 1e-5 && (d - c).abs() < 1e-5
        );
    }
}
