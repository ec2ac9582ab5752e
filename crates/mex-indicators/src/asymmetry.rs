//! Facial asymmetry.
//!
//! * **Landmark asymmetry index** per region ([`landmark_asymmetry`]): the 68 points are
//!   similarity-normalised (origin between the eye centres, eye axis horizontal, unit length =
//!   the inter-ocular distance); the facial midline is the total-least-squares line through the
//!   nose bridge and tip (27, 28, 29, 30) and the chin (8); each image-left point is mirrored
//!   across it and its distance to its image-right counterpart ([`MIRROR_68`]) is averaged over
//!   the region's pairs. Points on the midline (51, 57, 62, 66 of the mouth) are paired with
//!   themselves: their term is twice their distance from the midline. Regions: brows 17-26,
//!   eyes 36-47, mouth 48-67; `composite` is the mean of the three. Units: inter-ocular
//!   distances; 0 for a perfectly symmetric face. OpenDBM mirrors across the plane through 27,
//!   30 and 8 the same way (its `fac_asymmask*` features).
//! * **Signed motion asymmetry** of a movement ([`motion_asymmetry`]):
//!   `(E_left − E_right) / (E_left + E_right)` in `[−1, 1]`, where `E_side` is the sum over the
//!   movement's frames and the side's regions of the squared regional motion (flow energy).
//!   Positive: the image-left side (the subject's right side for a non-mirrored camera) moves
//!   more.
//! * **Emotrics percent asymmetry** ([`percent_asymmetry`]): `|L − R| · 100 / max(L, R)`,
//!   the larger side standing for the healthy side (Guarin et al. 2018, Emotrics), applied to
//!   the mouth-corner excursions.

use crate::geometry::{check_68, FaceFrame};
use crate::Result;
use mex_core::Landmarks;
use serde::{Deserialize, Serialize};

pub use mex_core::MIRROR_68;

/// The image-left (or midline) member of each pair of a region: brows, eyes, mouth.
const BROW_PAIRS: [usize; 5] = [17, 18, 19, 20, 21];
const EYE_PAIRS: [usize; 6] = [36, 37, 38, 39, 40, 41];
const MOUTH_PAIRS: [usize; 12] = [48, 49, 50, 51, 59, 58, 57, 60, 61, 62, 67, 66];

/// Per-frame landmark asymmetry indices (inter-ocular distances).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LandmarkAsymmetry {
    /// Brows (17-26).
    pub brows: f64,
    /// Eyes (36-47).
    pub eyes: f64,
    /// Mouth (48-67).
    pub mouth: f64,
    /// Mean of the three regions.
    pub composite: f64,
}

/// The landmark asymmetry indices of one face (module docs).
///
/// ```
/// use mex_core::{LandmarkScheme, Landmarks, Point2};
/// use mex_indicators::{landmark_asymmetry, MIRROR_68};
/// // A face symmetric about x = 50: every point's counterpart is its mirror image.
/// let mut pts: Vec<Point2> = (0..68).map(|i| Point2::new(20.0 + (i % 7) as f32, i as f32)).collect();
/// for i in 0..68 {
///     let j = MIRROR_68[i];
///     if j == i {
///         pts[i].x = 50.0;
///     } else if i < j {
///         pts[j] = Point2::new(100.0 - pts[i].x, pts[i].y);
///     }
/// }
/// let lm = Landmarks::new(LandmarkScheme::SixtyEight, pts.clone()).unwrap();
/// let a = landmark_asymmetry(&lm).unwrap();
/// assert!(a.composite < 1e-5);
/// // Lifting the image-left mouth corner by 10 % of the inter-ocular distance:
/// let iod = mex_indicators::interocular_distance(&lm).unwrap() as f32;
/// pts[48].y -= 0.1 * iod;
/// let b = landmark_asymmetry(&Landmarks::new(LandmarkScheme::SixtyEight, pts).unwrap()).unwrap();
/// assert!(b.mouth > 0.005 && b.brows < 1e-5);
/// ```
pub fn landmark_asymmetry(lm: &Landmarks) -> Result<LandmarkAsymmetry> {
    let f = check_68(lm, 0)?;
    Ok(asymmetry_unchecked(lm, &f))
}

/// The asymmetries of a checked 68-point set `lm` whose face frame is `f`.
pub(crate) fn asymmetry_unchecked(lm: &Landmarks, f: &FaceFrame) -> LandmarkAsymmetry {
    let q: Vec<(f64, f64)> = lm.points.iter().map(|p| f.face_coords(*p)).collect();
    // Midline: TLS line through 27-30 and 8.
    let mid = [27usize, 28, 29, 30, 8];
    let n = mid.len() as f64;
    let c = (mid.iter().map(|&i| q[i].0).sum::<f64>() / n, mid.iter().map(|&i| q[i].1).sum::<f64>() / n);
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for &i in &mid {
        let (dx, dy) = (q[i].0 - c.0, q[i].1 - c.1);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    // Principal direction angle of the scatter; the midline runs along it.
    let theta = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    let d = (theta.cos(), theta.sin());
    let nrm = (-d.1, d.0);
    let reflect = |p: (f64, f64)| {
        let k = (p.0 - c.0) * nrm.0 + (p.1 - c.1) * nrm.1;
        (p.0 - 2.0 * k * nrm.0, p.1 - 2.0 * k * nrm.1)
    };
    let region = |idx: &[usize]| {
        idx.iter()
            .map(|&i| {
                let r = reflect(q[i]);
                let t = q[MIRROR_68[i]];
                (r.0 - t.0).hypot(r.1 - t.1)
            })
            .sum::<f64>()
            / idx.len() as f64
    };
    let (brows, eyes, mouth) = (region(&BROW_PAIRS), region(&EYE_PAIRS), region(&MOUTH_PAIRS));
    LandmarkAsymmetry { brows, eyes, mouth, composite: (brows + eyes + mouth) / 3.0 }
}

/// Signed motion asymmetry `(left − right) / (left + right)` of two non-negative energies, in
/// `[−1, 1]`; `None` when both are zero or either is negative or not finite.
///
/// ```
/// use mex_indicators::motion_asymmetry;
/// assert_eq!(motion_asymmetry(3.0, 1.0), Some(0.5));
/// assert_eq!(motion_asymmetry(0.0, 0.0), None);
/// ```
pub fn motion_asymmetry(left: f64, right: f64) -> Option<f64> {
    if !(left.is_finite() && right.is_finite() && left >= 0.0 && right >= 0.0) || left + right <= 0.0 {
        return None;
    }
    Some((left - right) / (left + right))
}

/// Emotrics percent asymmetry `|L − R| · 100 / max(L, R)` of two non-negative measurements
/// (the larger side taken as the healthy side); `None` when both are zero or invalid.
///
/// ```
/// use mex_indicators::percent_asymmetry;
/// assert_eq!(percent_asymmetry(4.0, 3.0), Some(25.0));
/// ```
pub fn percent_asymmetry(left: f64, right: f64) -> Option<f64> {
    if !(left.is_finite() && right.is_finite() && left >= 0.0 && right >= 0.0) {
        return None;
    }
    let m = left.max(right);
    (m > 0.0).then(|| (left - right).abs() * 100.0 / m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_table_is_an_involution() {
        for i in 0..68 {
            assert_eq!(MIRROR_68[MIRROR_68[i]], i, "{i}");
        }
        // Each region's pairs cover exactly the region's points.
        for (pairs, range) in
            [(&BROW_PAIRS[..], 17..27), (&EYE_PAIRS[..], 36..48), (&MOUTH_PAIRS[..], 48..68)]
        {
            let mut seen: Vec<usize> = pairs.iter().flat_map(|&i| [i, MIRROR_68[i]]).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen, range.collect::<Vec<_>>());
        }
    }
}
