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

#[doc(hidden)]
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

#[doc(hidden)]
/// A complete binary regression tree stored as dlib stores it (splits in breadth-first order).
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionTree {
    /// Internal nodes; children of `i` are `2i+1` (left) and `2i+2` (right).
    pub splits: Vec<Split>,
    /// Leaf shape increments (each of the shape's length), `splits.len() + 1` of them.
    pub leaf_values: Vec<Vec<f32>>,
}

/// The leaf a tree with these splits (breadth-first) sends `pixels` to.
#[inline]
fn leaf_index(splits: &[Split], pixels: &[f32]) -> usize {
    let mut i = 0usize;
    while i < splits.len() {
        let s = splits[i];
        i = if pixels[s.idx1 as usize] - pixels[s.idx2 as usize] > s.thresh { 2 * i + 1 } else { 2 * i + 2 };
    }
    i - splits.len()
}

/// A dlib shape predictor (e.g. `shape_predictor_68_face_landmarks.dat`). Build it with
/// [`ShapePredictor::from_file`] or [`ShapePredictor::from_bytes`];
/// every constructor validates the model, so prediction cannot panic.
///
/// ```no_run
/// use mex_align::{DlibRect, ShapePredictor};
/// # fn main() -> mex_align::Result<()> {
/// // dlib's model is never vendored: Debian's `libdlib-data` installs it here.
/// let sp = ShapePredictor::from_file("/usr/share/dlib/shape_predictor_68_face_landmarks.dat")?;
/// let gray = mex_align::load_image("face.png")?.to_luma8();
/// let points = sp.predict(&gray, DlibRect { left: 180, top: 90, right: 330, bottom: 240 });
/// assert_eq!(points.len(), 68);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ShapePredictor {
    initial_shape: Vec<f32>,
    anchor_idx: Vec<Vec<u32>>,
    deltas: Vec<Vec<[f32; 2]>>,
    /// The forests, flattened.
    packed: Packed,
}

impl std::fmt::Debug for ShapePredictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShapePredictor")
            .field("parts", &self.num_parts())
            .field("levels", &self.packed.trees.len())
            .field("trees_per_level", &self.packed.trees.first().map_or(0, Vec::len))
            .field("leaf_values", &self.packed.leaves.len())
            .finish()
    }
}

impl PartialEq for ShapePredictor {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.packed, &other.packed);
        (&self.initial_shape, &self.anchor_idx, &self.deltas, &a.splits, &a.trees, a.leaves.as_slice())
            == (
                &other.initial_shape,
                &other.anchor_idx,
                &other.deltas,
                &b.splits,
                &b.trees,
                b.leaves.as_slice(),
            )
    }
}

/// The splits and leaves of every tree in two flat buffers, the leaves (65 MB for the 68-point
/// model) on transparent huge pages where Linux provides them. Prediction reads about 5,000
/// scattered leaves; on 4 KiB pages nearly each one missed the TLB, and the page walks, not
/// the memory bandwidth, bounded the time.
#[derive(Default)]
struct Packed {
    splits: Vec<Split>,
    leaves: HugeBuf,
    /// Per level, per tree: where its splits and leaves are.
    trees: Vec<Vec<TreeAt>>,
}

/// Where one tree lies in [`Packed`]'s buffers.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TreeAt {
    /// First split and number of splits.
    s0: usize,
    ns: usize,
    /// First leaf value, number of leaves and values per leaf.
    l0: usize,
    nl: usize,
    per: usize,
}

impl Packed {
    fn new(forests: &[Vec<RegressionTree>]) -> Self {
        let nvals = forests.iter().flatten().flat_map(|t| &t.leaf_values).map(Vec::len).sum();
        let mut leaves = HugeBuf::with_capacity(nvals);
        let mut splits = Vec::with_capacity(forests.iter().flatten().map(|t| t.splits.len()).sum());
        let trees = forests
            .iter()
            .map(|f| {
                f.iter()
                    .map(|t| {
                        let per = t.leaf_values.first().map_or(0, Vec::len);
                        let at = TreeAt {
                            s0: splits.len(),
                            ns: t.splits.len(),
                            l0: leaves.len(),
                            nl: t.leaf_values.len(),
                            per,
                        };
                        splits.extend_from_slice(&t.splits);
                        for l in &t.leaf_values {
                            leaves.extend_from_slice(l);
                        }
                        at
                    })
                    .collect()
            })
            .collect();
        Self { splits, leaves, trees }
    }
}

impl Clone for Packed {
    fn clone(&self) -> Self {
        let mut leaves = HugeBuf::with_capacity(self.leaves.len());
        leaves.extend_from_slice(self.leaves.as_slice());
        Self { splits: self.splits.clone(), leaves, trees: self.trees.clone() }
    }
}

/// A `Vec<f32>` whose values start on a 2 MiB boundary that was advised for transparent huge
/// pages before any of it was touched (large buffers on Linux; a plain vector otherwise).
#[derive(Default)]
struct HugeBuf {
    buf: Vec<f32>,
    /// Index of the first value (the values before it are padding up to the boundary).
    start: usize,
}

/// A transparent huge page.
const HUGE_PAGE: usize = 2 << 20;

impl HugeBuf {
    fn with_capacity(n: usize) -> Self {
        let bytes = n * std::mem::size_of::<f32>();
        if !cfg!(target_os = "linux") || bytes < 2 * HUGE_PAGE {
            return Self { buf: Vec::with_capacity(n), start: 0 };
        }
        let pad = HUGE_PAGE / std::mem::size_of::<f32>();
        let mut buf: Vec<f32> = Vec::with_capacity(n + pad);
        let addr = buf.as_ptr() as usize;
        let start = (addr.next_multiple_of(HUGE_PAGE) - addr) / std::mem::size_of::<f32>();
        #[cfg(target_os = "linux")]
        {
            let len = bytes / HUGE_PAGE * HUGE_PAGE;
            // SAFETY: `start + len / 4 <= n + pad` values lie inside the allocation (capacity
            // `n + pad`, `start < pad`); `madvise(MADV_HUGEPAGE)` is advice on how to back those
            // pages and changes neither their contents nor their validity. Failure (no THP
            // support) leaves ordinary pages, so the result is ignored.
            unsafe {
                libc::madvise(buf.as_mut_ptr().add(start).cast(), len, libc::MADV_HUGEPAGE);
            }
        }
        buf.resize(start, 0.0);
        Self { buf, start }
    }

    fn extend_from_slice(&mut self, v: &[f32]) {
        self.buf.extend_from_slice(v);
    }

    fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    fn as_slice(&self) -> &[f32] {
        &self.buf[self.start..]
    }
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
        Self::from_parts(initial_shape, forests, anchor_idx, deltas).map_err(|reason| Error::DlibModel {
            path: None,
            offset: r.pos,
            reason,
        })
    }

    #[doc(hidden)]
    /// A model from its parts (see [`ShapePredictor::initial_shape`] and the other accessors);
    /// an inconsistent model (leaf lengths, split or anchor indices out of range) is an
    /// [`Error::DlibModel`].
    pub fn new(
        initial_shape: Vec<f32>,
        forests: Vec<Vec<RegressionTree>>,
        anchor_idx: Vec<Vec<u32>>,
        deltas: Vec<Vec<[f32; 2]>>,
    ) -> Result<Self> {
        Self::from_parts(initial_shape, forests, anchor_idx, deltas).map_err(|reason| Error::DlibModel {
            path: None,
            offset: 0,
            reason,
        })
    }

    fn from_parts(
        initial_shape: Vec<f32>,
        forests: Vec<Vec<RegressionTree>>,
        anchor_idx: Vec<Vec<u32>>,
        deltas: Vec<Vec<[f32; 2]>>,
    ) -> std::result::Result<Self, String> {
        validate(&initial_shape, &forests, &anchor_idx, &deltas)?;
        // the trees are kept flattened only (no second copy of the leaves)
        Ok(Self { packed: Packed::new(&forests), initial_shape, anchor_idx, deltas })
    }

    /// Mean shape in box-normalised coordinates, `x0, y0, x1, y1, ...`.
    pub fn initial_shape(&self) -> &[f32] {
        &self.initial_shape
    }

    #[doc(hidden)]
    /// One forest per cascade level (rebuilt from the flattened form kept for prediction).
    pub fn forests(&self) -> Vec<Vec<RegressionTree>> {
        let pk = &self.packed;
        let leaves = pk.leaves.as_slice();
        pk.trees
            .iter()
            .map(|f| {
                f.iter()
                    .map(|&TreeAt { s0, ns, l0, nl, per }| RegressionTree {
                        splits: pk.splits[s0..s0 + ns].to_vec(),
                        leaf_values: (0..nl)
                            .map(|k| leaves[l0 + k * per..l0 + (k + 1) * per].to_vec())
                            .collect(),
                    })
                    .collect()
            })
            .collect()
    }

    #[doc(hidden)]
    /// Per level, the landmark each feature pixel is anchored to.
    pub fn anchor_idx(&self) -> &[Vec<u32>] {
        &self.anchor_idx
    }

    #[doc(hidden)]
    /// Per level, each feature pixel's offset from its anchor in mean-shape coordinates.
    pub fn deltas(&self) -> &[Vec<[f32; 2]>] {
        &self.deltas
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
        let pk = &self.packed;
        let leaves = pk.leaves.as_slice();
        put_int(&mut out, pk.trees.len() as i64);
        for f in &pk.trees {
            put_int(&mut out, f.len() as i64);
            for &TreeAt { s0, ns, l0, nl, per } in f {
                put_int(&mut out, ns as i64);
                for s in &pk.splits[s0..s0 + ns] {
                    put_int(&mut out, i64::from(s.idx1));
                    put_int(&mut out, i64::from(s.idx2));
                    put_float(&mut out, s.thresh);
                }
                put_int(&mut out, nl as i64);
                for k in 0..nl {
                    put_column(&mut out, &leaves[l0 + k * per..l0 + (k + 1) * per]);
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
            Vec::with_capacity(self.packed.trees.iter().map(Vec::len).max().unwrap_or(0));
        let pk = &self.packed;
        let (all_splits, all_leaves) = (&pk.splits, pk.leaves.as_slice());
        let len = shape.len();
        // unnormalizing_tform(rect): (0,0) -> tl, (1,0) -> tr, (1,1) -> br.
        let (l, t) = (rect.left as f64, rect.top as f64);
        let (sw, sh) = ((rect.right - rect.left) as f64, (rect.bottom - rect.top) as f64);
        let (w, h) = (img.width() as i64, img.height() as i64);
        let raw = img.as_raw();
        for lvl in 0..pk.trees.len() {
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
            leaves.extend(pk.trees[lvl].iter().map(|&TreeAt { s0, ns, l0, .. }| {
                let at = l0 + leaf_index(&all_splits[s0..s0 + ns], feats) * len;
                &all_leaves[at..at + len]
            }));
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

/// Structural checks that make prediction panic-free.
fn validate(
    initial_shape: &[f32],
    forests: &[Vec<RegressionTree>],
    anchor_idx: &[Vec<u32>],
    deltas: &[Vec<[f32; 2]>],
) -> std::result::Result<(), String> {
    let len = initial_shape.len();
    if len == 0 || !len.is_multiple_of(2) {
        return Err(format!("initial shape has {len} values (needs a positive even number)"));
    }
    let nparts = len / 2;
    if forests.len() != anchor_idx.len() || forests.len() != deltas.len() {
        return Err(format!(
            "{} cascade levels but {} anchor lists and {} delta lists",
            forests.len(),
            anchor_idx.len(),
            deltas.len()
        ));
    }
    for (lvl, ((trees, anchors), deltas)) in forests.iter().zip(anchor_idx).zip(deltas).enumerate() {
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
            if let Some(s) =
                t.splits.iter().find(|s| s.idx1 as usize >= deltas.len() || s.idx2 as usize >= deltas.len())
            {
                return Err(format!("level {lvl} tree {ti}: split feature {s:?} >= {} pixels", deltas.len()));
            }
            if let Some(l) = t.leaf_values.iter().find(|l| l.len() != len) {
                return Err(format!("level {lvl} tree {ti}: leaf of length {} (shape has {len})", l.len()));
            }
        }
    }
    Ok(())
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
        // dlib's 5-point model marks the four eye corners and the base of the nose, not
        // MTCNN's five points (eye centres, nose tip, mouth corners) that `LandmarkScheme::Five`
        // and its alignment template mean: only the 68-point scheme maps onto a scheme.
        if self.num_parts() != 68 {
            return Err(Error::param(
                "shape predictor",
                self.num_parts(),
                "only a 68-point model maps to a landmark scheme (dlib's 5-point model marks eye \
                 corners and the nose base, not MTCNN's five points; use `predict` for its raw points)",
            ));
        }
        let pts = self.predict(img, DlibRect::from_bbox(bbox));
        Ok(Landmarks::new(LandmarkScheme::SixtyEight, pts)?)
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
    fn inconsistent_models_are_refused_and_serialised_ones_rejected_on_reading() {
        let tree = |idx2| RegressionTree {
            splits: vec![Split { idx1: 0, idx2, thresh: 10.0 }],
            leaf_values: vec![vec![0.0, -0.25, 0.0, -0.25], vec![0.0, 0.25, 0.0, 0.25]],
        };
        let parts = |idx2| {
            (vec![0.25, 0.5, 0.75, 0.5], vec![vec![tree(idx2)]], vec![vec![0, 1]], vec![vec![[0.0, 0.0]; 2]])
        };
        let (a, f, i, d) = parts(1);
        assert!(ShapePredictor::new(a, f, i, d).is_ok());
        // a split index past the two feature pixels
        let (a, f, i, d) = parts(7);
        assert!(matches!(
            ShapePredictor::new(a.clone(), f.clone(), i.clone(), d.clone()),
            Err(Error::DlibModel { .. })
        ));
        let unchecked =
            ShapePredictor { initial_shape: a, anchor_idx: i, deltas: d, packed: Packed::new(&f) };
        assert!(matches!(ShapePredictor::from_bytes(&unchecked.to_bytes()), Err(Error::DlibModel { .. })));
    }

    #[test]
    fn huge_buffers_hold_their_values() {
        // above the huge-page threshold: padded to a 2 MiB boundary on Linux
        let n = 3 * HUGE_PAGE / 4 + 5;
        let mut b = HugeBuf::with_capacity(n);
        let vals: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
        b.extend_from_slice(&vals[..10]);
        b.extend_from_slice(&vals[10..]);
        assert_eq!((b.len(), b.as_slice()), (n, &vals[..]));
        if cfg!(target_os = "linux") {
            assert_eq!(b.as_slice().as_ptr() as usize % HUGE_PAGE, 0);
        }
        let small = HugeBuf::with_capacity(10);
        assert_eq!(small.start, 0);
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
