use crate::{CoreError, Result};
use serde::{Deserialize, Serialize};

/// A point in image coordinates (pixels; x to the right, y down).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Point2 {
    /// Horizontal coordinate.
    pub x: f32,
    /// Vertical coordinate.
    pub y: f32,
}

impl Point2 {
    /// A point.
    pub const fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }

    /// Euclidean distance to `other`.
    pub fn distance(&self, other: &Point2) -> f32 {
        (self.x - other.x).hypot(self.y - other.y)
    }
}

/// An axis-aligned box `[x0, x1) x [y0, y1)` in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BBox {
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Right edge.
    pub x1: f32,
    /// Bottom edge.
    pub y1: f32,
}

impl BBox {
    /// A box from its corners.
    pub const fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> Self {
        Self { x0, y0, x1, y1 }
    }

    /// Width (0 when degenerate).
    pub fn width(&self) -> f32 {
        (self.x1 - self.x0).max(0.0)
    }

    /// Height (0 when degenerate).
    pub fn height(&self) -> f32 {
        (self.y1 - self.y0).max(0.0)
    }

    /// Area (0 when degenerate).
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// Centre point.
    pub fn center(&self) -> Point2 {
        Point2::new(0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1))
    }

    /// Intersection over union with `other` (0 when both are empty).
    pub fn iou(&self, other: &BBox) -> f32 {
        let ix = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let iy = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        let inter = ix * iy;
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }
}

/// Which landmark convention a [`Landmarks`] set follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LandmarkScheme {
    /// MTCNN's five points: left eye, right eye, nose tip, left mouth corner, right mouth corner
    /// (left/right as seen in the image).
    Five,
    /// The iBUG 300-W 68-point scheme used by dlib (jaw 0-16, brows 17-26, nose 27-35,
    /// eyes 36-47, mouth 48-67).
    SixtyEight,
}

impl LandmarkScheme {
    /// Number of points of the scheme.
    pub const fn len(self) -> usize {
        match self {
            LandmarkScheme::Five => 5,
            LandmarkScheme::SixtyEight => 68,
        }
    }

    /// Always false: every scheme has points (for clippy's `len_without_is_empty`).
    pub const fn is_empty(self) -> bool {
        false
    }
}

/// A set of facial landmarks in image pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Landmarks {
    /// The convention the points follow.
    pub scheme: LandmarkScheme,
    /// The points, `scheme.len()` of them.
    pub points: Vec<Point2>,
}

impl Landmarks {
    /// Builds a set, checking the number of points against the scheme.
    pub fn new(scheme: LandmarkScheme, points: Vec<Point2>) -> Result<Self> {
        if points.len() != scheme.len() {
            return Err(CoreError::SizeMismatch { left: (points.len(), 0), right: (scheme.len(), 0) });
        }
        if points.iter().any(|p| !p.x.is_finite() || !p.y.is_finite()) {
            return Err(CoreError::NonFinite { what: "landmarks" });
        }
        Ok(Self { scheme, points })
    }

    /// The tight box around the points.
    pub fn bbox(&self) -> BBox {
        let mut b = BBox::new(f32::INFINITY, f32::INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY);
        for p in &self.points {
            b.x0 = b.x0.min(p.x);
            b.y0 = b.y0.min(p.y);
            b.x1 = b.x1.max(p.x);
            b.y1 = b.y1.max(p.y);
        }
        b
    }

    /// Maps every point through a similarity transform.
    pub fn transformed(&self, t: &Similarity) -> Landmarks {
        Landmarks { scheme: self.scheme, points: self.points.iter().map(|p| t.apply(*p)).collect() }
    }
}

/// A 2-D similarity transform (rotation, uniform scale, translation):
/// `x' = a·x − b·y + tx`, `y' = b·x + a·y + ty`, with `a = s·cos θ`, `b = s·sin θ`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Similarity {
    /// `s·cos θ`.
    pub a: f64,
    /// `s·sin θ`.
    pub b: f64,
    /// Horizontal translation.
    pub tx: f64,
    /// Vertical translation.
    pub ty: f64,
}

impl Default for Similarity {
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl Similarity {
    /// The identity.
    pub const IDENTITY: Similarity = Similarity { a: 1.0, b: 0.0, tx: 0.0, ty: 0.0 };

    /// From scale, rotation (radians, counter-clockwise in a y-up frame, i.e. clockwise on screen)
    /// and translation.
    pub fn from_params(scale: f64, angle: f64, tx: f64, ty: f64) -> Self {
        Self { a: scale * angle.cos(), b: scale * angle.sin(), tx, ty }
    }

    /// Uniform scale factor.
    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }

    /// Rotation angle in radians.
    pub fn angle(&self) -> f64 {
        self.b.atan2(self.a)
    }

    /// Maps a point.
    pub fn apply(&self, p: Point2) -> Point2 {
        let (x, y) = (f64::from(p.x), f64::from(p.y));
        Point2::new((self.a * x - self.b * y + self.tx) as f32, (self.b * x + self.a * y + self.ty) as f32)
    }

    /// Maps `(x, y)` in double precision.
    pub fn apply_f64(&self, x: f64, y: f64) -> (f64, f64) {
        (self.a * x - self.b * y + self.tx, self.b * x + self.a * y + self.ty)
    }

    /// The inverse transform; errors when the transform is degenerate (scale 0 or non-finite).
    pub fn inverse(&self) -> Result<Similarity> {
        let d = self.a * self.a + self.b * self.b;
        if !(d.is_finite() && d > 1e-300) {
            return Err(CoreError::InvalidParam {
                name: "similarity",
                value: format!("{self:?}"),
                reason: "degenerate (zero scale) transform has no inverse",
            });
        }
        let (ia, ib) = (self.a / d, -self.b / d);
        Ok(Similarity {
            a: ia,
            b: ib,
            tx: -(ia * self.tx - ib * self.ty),
            ty: -(ib * self.tx + ia * self.ty),
        })
    }

    /// `self ∘ other`: first `other`, then `self`.
    pub fn compose(&self, other: &Similarity) -> Similarity {
        Similarity {
            a: self.a * other.a - self.b * other.b,
            b: self.b * other.a + self.a * other.b,
            tx: self.a * other.tx - self.b * other.ty + self.tx,
            ty: self.b * other.tx + self.a * other.ty + self.ty,
        }
    }

    /// Least-squares similarity mapping `src[i]` onto `dst[i]` (Umeyama 1991, without reflection).
    ///
    /// Errors when the sets differ in length, hold fewer than two points, hold non-finite
    /// values, or when `src` is degenerate (all points equal).
    pub fn estimate(src: &[Point2], dst: &[Point2]) -> Result<Similarity> {
        Self::estimate_weighted(src, dst, None)
    }

    /// [`Similarity::estimate`] with optional non-negative per-point weights.
    pub fn estimate_weighted(src: &[Point2], dst: &[Point2], weights: Option<&[f32]>) -> Result<Similarity> {
        if src.len() != dst.len() {
            return Err(CoreError::SizeMismatch { left: (src.len(), 0), right: (dst.len(), 0) });
        }
        if let Some(w) = weights {
            if w.len() != src.len() {
                return Err(CoreError::SizeMismatch { left: (w.len(), 0), right: (src.len(), 0) });
            }
        }
        if src.len() < 2 {
            return Err(CoreError::Empty { what: "similarity estimation needs at least two points" });
        }
        let wt = |i: usize| weights.map_or(1.0, |w| f64::from(w[i]));
        let mut wsum = 0.0;
        let (mut msx, mut msy, mut mdx, mut mdy) = (0.0, 0.0, 0.0, 0.0);
        for i in 0..src.len() {
            let (s, d, w) = (src[i], dst[i], wt(i));
            if !(s.x.is_finite() && s.y.is_finite() && d.x.is_finite() && d.y.is_finite() && w.is_finite()) {
                return Err(CoreError::NonFinite { what: "similarity estimation points" });
            }
            wsum += w;
            msx += w * f64::from(s.x);
            msy += w * f64::from(s.y);
            mdx += w * f64::from(d.x);
            mdy += w * f64::from(d.y);
        }
        if wsum <= 0.0 {
            return Err(CoreError::InvalidParam {
                name: "weights",
                value: wsum.to_string(),
                reason: "sum must be positive",
            });
        }
        msx /= wsum;
        msy /= wsum;
        mdx /= wsum;
        mdy /= wsum;
        // Closed form for 2-D similarity: minimise sum w |R s + t - d|².
        let (mut sxx, mut sxy, mut var) = (0.0, 0.0, 0.0);
        for i in 0..src.len() {
            let w = wt(i);
            let (sx, sy) = (f64::from(src[i].x) - msx, f64::from(src[i].y) - msy);
            let (dx, dy) = (f64::from(dst[i].x) - mdx, f64::from(dst[i].y) - mdy);
            sxx += w * (sx * dx + sy * dy);
            sxy += w * (sx * dy - sy * dx);
            var += w * (sx * sx + sy * sy);
        }
        if var <= 1e-12 * wsum {
            return Err(CoreError::InvalidParam {
                name: "src",
                value: "all points equal".into(),
                reason: "degenerate point set",
            });
        }
        let a = sxx / var;
        let b = sxy / var;
        Ok(Similarity { a, b, tx: mdx - (a * msx - b * msy), ty: mdy - (b * msx + a * msy) })
    }
}

/// Reduces 68 iBUG 300-W points to MTCNN's five: the eye centres (means of points 36-41 and
/// 42-47), the nose tip (30) and the mouth corners (48, 54), in image-left to image-right order.
/// `None` unless `p` holds 68 points.
///
/// ```
/// use mex_core::{five_from_68, Point2};
/// let p: Vec<Point2> = (0..68).map(|i| Point2::new(i as f32, 0.0)).collect();
/// let f = five_from_68(&p).unwrap();
/// assert_eq!((f[0].x, f[1].x, f[2].x, f[3].x, f[4].x), (38.5, 44.5, 30.0, 48.0, 54.0));
/// assert!(five_from_68(&p[..5]).is_none());
/// ```
pub fn five_from_68(p: &[Point2]) -> Option<[Point2; 5]> {
    if p.len() != 68 {
        return None;
    }
    let mean = |r: std::ops::Range<usize>| {
        let n = r.len() as f32;
        let (sx, sy) = r.fold((0.0, 0.0), |(sx, sy), i| (sx + p[i].x, sy + p[i].y));
        Point2::new(sx / n, sy / n)
    };
    Some([mean(36..42), mean(42..48), p[30], p[48], p[54]])
}

/// Left/right counterpart of every 68-point index (iBUG 300-W order); points on the midline map
/// to themselves.
pub const MIRROR_68: [usize; 68] = [
    16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, // jaw 0-16
    26, 25, 24, 23, 22, 21, 20, 19, 18, 17, // brows 17-26
    27, 28, 29, 30, // nose bridge
    35, 34, 33, 32, 31, // nose base 31-35
    45, 44, 43, 42, 47, 46, // eye 36-41 -> 42-47
    39, 38, 37, 36, 41, 40, // eye 42-47 -> 36-41
    54, 53, 52, 51, 50, 49, 48, // outer upper lip 48-54
    59, 58, 57, 56, 55, // outer lower lip 55-59
    64, 63, 62, 61, 60, // inner upper lip 60-64
    67, 66, 65, // inner lower lip 65-67
];

/// OpenFace's mean dlib face (`TEMPLATE` in `openface/align_dlib.py`, Amos et al., Apache-2.0):
/// the 68 iBUG points of an average face, before min-max normalisation. mex-align derives its
/// alignment templates from it and mex-data's synthetic landmark tracks start from it.
pub const OPENFACE_MEAN_FACE_68: [(f64, f64); 68] = [
    (0.0792396913815, 0.339223741112),
    (0.0829219487236, 0.456955367943),
    (0.0967927109165, 0.575648016728),
    (0.122141515615, 0.691921601066),
    (0.168687863544, 0.800341263616),
    (0.239789390707, 0.895732504778),
    (0.325662452515, 0.977068762493),
    (0.422318282013, 1.04329000149),
    (0.531777802068, 1.06080371126),
    (0.641296298053, 1.03981924107),
    (0.738105872266, 0.972268833998),
    (0.824444363295, 0.889624082279),
    (0.894792677532, 0.792494155836),
    (0.939395486253, 0.681546643421),
    (0.96111933829, 0.562238253072),
    (0.970579841181, 0.441758925744),
    (0.971193274221, 0.322118743967),
    (0.163846223133, 0.249151738053),
    (0.21780354657, 0.204255863861),
    (0.291299351124, 0.192367318323),
    (0.367460241458, 0.203582210627),
    (0.4392945113, 0.233135599851),
    (0.586445962425, 0.228141644834),
    (0.660152671635, 0.195923841854),
    (0.737466449096, 0.182360984545),
    (0.813236546239, 0.192828009114),
    (0.8707571886, 0.235293377042),
    (0.51534533827, 0.31863546193),
    (0.516221448289, 0.396200446263),
    (0.517118861835, 0.473797687758),
    (0.51816430343, 0.553157797772),
    (0.433701156035, 0.604054457668),
    (0.475501237769, 0.62076344024),
    (0.520712933176, 0.634268222208),
    (0.565874114041, 0.618796581487),
    (0.607054002672, 0.60157671656),
    (0.252418718401, 0.331052263829),
    (0.298663015648, 0.302646354002),
    (0.355749724218, 0.303020650651),
    (0.403718978315, 0.33867711083),
    (0.352507175597, 0.349987615384),
    (0.296791759886, 0.350478978225),
    (0.631326076346, 0.334136672344),
    (0.679073381078, 0.29645404267),
    (0.73597236153, 0.294721285802),
    (0.782865376271, 0.321305281656),
    (0.740312274764, 0.341849376713),
    (0.68499850091, 0.343734332172),
    (0.353167761422, 0.746189164237),
    (0.414587777921, 0.719053835073),
    (0.477677654595, 0.706835892494),
    (0.522732900812, 0.717092275768),
    (0.569832064287, 0.705414478982),
    (0.635195811927, 0.71565572516),
    (0.69951672331, 0.739419187253),
    (0.639447159575, 0.805236879972),
    (0.576410514055, 0.835436670169),
    (0.525398405766, 0.841706377792),
    (0.47641545769, 0.837505914975),
    (0.41379548902, 0.810045601727),
    (0.380084785646, 0.749979603086),
    (0.477955996282, 0.74513234612),
    (0.523389793327, 0.748924302636),
    (0.571057789237, 0.74332894691),
    (0.672409137852, 0.744177032192),
    (0.572539621444, 0.776609286626),
    (0.5240106503, 0.783370783245),
    (0.477561227414, 0.778476346951),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn estimate_recovers_known_similarity() {
        let t = Similarity::from_params(1.7, 0.4, 12.0, -3.0);
        let src: Vec<Point2> = [(0.0, 0.0), (10.0, 0.0), (3.0, 7.0), (-4.0, 2.0), (5.0, 5.0)]
            .iter()
            .map(|&(x, y)| Point2::new(x, y))
            .collect();
        let dst: Vec<Point2> = src.iter().map(|p| t.apply(*p)).collect();
        let e = Similarity::estimate(&src, &dst).unwrap();
        assert!((e.scale() - 1.7).abs() < 1e-5);
        assert!((e.angle() - 0.4).abs() < 1e-5);
        assert!((e.tx - 12.0).abs() < 1e-4 && (e.ty + 3.0).abs() < 1e-4);
    }

    #[test]
    fn inverse_and_compose_give_identity() {
        let t = Similarity::from_params(0.5, -1.1, 3.0, 9.0);
        let id = t.compose(&t.inverse().unwrap());
        let p = id.apply(Point2::new(17.0, -4.0));
        assert!(close(p.x, 17.0) && close(p.y, -4.0));
        assert!(Similarity::from_params(0.0, 0.0, 1.0, 1.0).inverse().is_err());
    }

    #[test]
    fn estimate_rejects_bad_input() {
        let p = [Point2::new(1.0, 1.0), Point2::new(1.0, 1.0)];
        assert!(Similarity::estimate(&p, &p).is_err());
        assert!(Similarity::estimate(&p[..1], &p[..1]).is_err());
        assert!(Similarity::estimate(&p, &p[..1]).is_err());
        let n = [Point2::new(f32::NAN, 1.0), Point2::new(2.0, 1.0)];
        assert!(Similarity::estimate(&n, &n).is_err());
    }

    #[test]
    fn bbox_iou() {
        let a = BBox::new(0.0, 0.0, 2.0, 2.0);
        let b = BBox::new(1.0, 0.0, 3.0, 2.0);
        assert!(close(a.iou(&b), 2.0 / 6.0));
        assert!(close(a.iou(&a), 1.0));
    }

    #[test]
    fn landmarks_check_count() {
        assert!(Landmarks::new(LandmarkScheme::Five, vec![Point2::default(); 4]).is_err());
        assert!(Landmarks::new(LandmarkScheme::Five, vec![Point2::default(); 5]).is_ok());
    }
}
