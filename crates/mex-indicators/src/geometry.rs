//! Landmark checks and the face frame (eye centres, inter-ocular distance, axes).

use crate::{Error, Result};
use mex_core::{LandmarkScheme, Landmarks, Point2};

/// Checks that `lm` is a finite 68-point set with distinct eyes (`frame` labels errors) and
/// returns its face frame.
pub(crate) fn check_68(lm: &Landmarks, frame: usize) -> Result<FaceFrame> {
    if lm.scheme != LandmarkScheme::SixtyEight || lm.points.len() != 68 {
        return Err(Error::WrongScheme {
            frame,
            scheme: format!("{:?}", lm.scheme),
            n_points: lm.points.len(),
        });
    }
    if let Some((index, p)) =
        lm.points.iter().enumerate().find(|(_, p)| !(p.x.is_finite() && p.y.is_finite()))
    {
        return Err(Error::NonFiniteLandmark { frame, index, x: p.x, y: p.y });
    }
    let f = FaceFrame::new(&lm.points);
    if !(f.iod > 1e-6 && f.iod.is_finite()) {
        return Err(Error::DegenerateLandmarks { frame, interocular: f.iod });
    }
    Ok(f)
}

/// The face's own frame: origin at the midpoint of the eye centres (means of points 36-41 and
/// 42-47), `u` along the eye axis (image-left to image-right eye), `v` perpendicular pointing
/// down the face, unit length = the inter-ocular distance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaceFrame {
    pub origin: (f64, f64),
    pub u: (f64, f64),
    pub v: (f64, f64),
    pub iod: f64,
}

pub(crate) fn mean_point(p: &[Point2]) -> (f64, f64) {
    let n = p.len().max(1) as f64;
    (p.iter().map(|q| q.x as f64).sum::<f64>() / n, p.iter().map(|q| q.y as f64).sum::<f64>() / n)
}

impl FaceFrame {
    /// From 68 points (length checked by the caller).
    pub fn new(p: &[Point2]) -> Self {
        let l = mean_point(&p[36..42]);
        let r = mean_point(&p[42..48]);
        let (dx, dy) = (r.0 - l.0, r.1 - l.1);
        let iod = dx.hypot(dy);
        let k = if iod > 0.0 { 1.0 / iod } else { 0.0 };
        let u = (dx * k, dy * k);
        FaceFrame { origin: (0.5 * (l.0 + r.0), 0.5 * (l.1 + r.1)), u, v: (-u.1, u.0), iod }
    }

    /// Image point to face coordinates (inter-ocular units).
    pub fn face_coords(&self, p: Point2) -> (f64, f64) {
        let (dx, dy) = (p.x as f64 - self.origin.0, p.y as f64 - self.origin.1);
        ((dx * self.u.0 + dy * self.u.1) / self.iod, (dx * self.v.0 + dy * self.v.1) / self.iod)
    }

    /// `p` moved by `(a, b)` inter-ocular units along `(u, v)`.
    pub fn offset(&self, p: Point2, a: f64, b: f64) -> Point2 {
        Point2::new(
            (p.x as f64 + self.iod * (a * self.u.0 + b * self.v.0)) as f32,
            (p.y as f64 + self.iod * (a * self.u.1 + b * self.v.1)) as f32,
        )
    }
}

/// Inter-ocular distance of a 68-point set (distance between the eye centres, the means of
/// points 36-41 and 42-47), in the landmarks' pixels.
///
/// ```
/// use mex_core::{LandmarkScheme, Landmarks, Point2};
/// let mut pts = vec![Point2::new(0.0, 0.0); 68];
/// for i in 42..48 {
///     pts[i] = Point2::new(60.0, 0.0);
/// }
/// let lm = Landmarks::new(LandmarkScheme::SixtyEight, pts).unwrap();
/// assert_eq!(mex_indicators::interocular_distance(&lm).unwrap(), 60.0);
/// ```
pub fn interocular_distance(lm: &Landmarks) -> Result<f64> {
    if lm.scheme != LandmarkScheme::SixtyEight || lm.points.len() != 68 {
        return Err(Error::WrongScheme {
            frame: 0,
            scheme: format!("{:?}", lm.scheme),
            n_points: lm.points.len(),
        });
    }
    Ok(FaceFrame::new(&lm.points).iod)
}
