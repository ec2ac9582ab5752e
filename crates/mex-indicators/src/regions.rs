//! Named facial regions defined from the 68 landmarks, as polygons and pixel masks.
//!
//! Each region is a polygon built from landmarks and small offsets in the face's own frame
//! (`u` along the eye axis, `v` down the face, in inter-ocular distances `d`), so it follows the
//! face's position, scale and in-plane rotation:
//!
//! | region | polygon |
//! |---|---|
//! | brow (left: 17-21, right: 22-26) | the brow points raised by 0.2 d, then back along them lowered by 0.1 d |
//! | eye (36-41, 42-47) | the eye contour, upper lid raised by 0.1 d, lower lid lowered by 0.06 d, corners pushed out by 0.06 d |
//! | cheek | below the eye (lower lid points 41, 40 lowered by 0.15 d, and 39), the nose wing (31 / 35), 0.15 d above the mouth corner, then the jaw (points 3, 2, 1 / 13, 14, 15) pulled 25 % toward the eye |
//! | nose | 27 widened by ±0.1 d, then the nose base 31-35 |
//! | mouth corner (48, 54) | a square of side 0.3 d centred on the corner, aligned with the eye axis |
//! | upper lip | the nose base 31-35, then the outer upper lip 53-49 |
//! | chin | the outer lower lip 59-55, then the jaw 10-6 |
//!
//! "Left" and "right" are image sides: the image-left regions are the subject's right side for
//! a non-mirrored camera. A mask holds the pixels whose centre `(x, y)` (integer coordinates, the
//! landmarks' pixel convention) lies inside the polygon (even-odd rule).
//!
//! On a canonical aligned crop (the face warped to a fixed template), the regions are fixed:
//! call [`region_masks`] once with the template landmarks expressed in crop pixels (for mex's
//! alignment, the 68-point template of `mex_align::template` mapped into the crop).

use crate::geometry::{check_68, FaceFrame};
use crate::Result;
use mex_core::{Landmarks, Point2};
use serde::{Deserialize, Serialize};

/// Which side of the face a region is on (image sides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    /// Image-left (the subject's right for a non-mirrored camera).
    Left,
    /// Image-right.
    Right,
    /// On the midline.
    Centre,
}

/// A named facial region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Region {
    /// Image-left brow (17-21).
    BrowLeft,
    /// Image-right brow (22-26).
    BrowRight,
    /// Image-left eye (36-41).
    EyeLeft,
    /// Image-right eye (42-47).
    EyeRight,
    /// Image-left cheek.
    CheekLeft,
    /// Image-right cheek.
    CheekRight,
    /// Nose (27, 31-35).
    Nose,
    /// Image-left mouth corner (48).
    MouthCornerLeft,
    /// Image-right mouth corner (54).
    MouthCornerRight,
    /// Upper lip (between the nose base and the outer upper lip).
    UpperLip,
    /// Chin (between the outer lower lip and the jaw).
    Chin,
}

/// Number of regions.
pub const N_REGIONS: usize = 11;

impl Region {
    /// Every region, in the order of per-region arrays.
    pub const ALL: [Region; N_REGIONS] = [
        Region::BrowLeft,
        Region::BrowRight,
        Region::EyeLeft,
        Region::EyeRight,
        Region::CheekLeft,
        Region::CheekRight,
        Region::Nose,
        Region::MouthCornerLeft,
        Region::MouthCornerRight,
        Region::UpperLip,
        Region::Chin,
    ];

    /// Snake-case name used in column and summary names.
    pub fn name(self) -> &'static str {
        match self {
            Region::BrowLeft => "brow_left",
            Region::BrowRight => "brow_right",
            Region::EyeLeft => "eye_left",
            Region::EyeRight => "eye_right",
            Region::CheekLeft => "cheek_left",
            Region::CheekRight => "cheek_right",
            Region::Nose => "nose",
            Region::MouthCornerLeft => "mouth_corner_left",
            Region::MouthCornerRight => "mouth_corner_right",
            Region::UpperLip => "upper_lip",
            Region::Chin => "chin",
        }
    }

    /// Position of the region in [`Region::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The image side of the region.
    pub fn side(self) -> Side {
        match self {
            Region::BrowLeft | Region::EyeLeft | Region::CheekLeft | Region::MouthCornerLeft => Side::Left,
            Region::BrowRight | Region::EyeRight | Region::CheekRight | Region::MouthCornerRight => {
                Side::Right
            }
            Region::Nose | Region::UpperLip | Region::Chin => Side::Centre,
        }
    }
}

fn lerp(a: Point2, b: Point2, t: f32) -> Point2 {
    Point2::new(a.x + t * (b.x - a.x), a.y + t * (b.y - a.y))
}

/// The polygon of `region` on a 68-point face, in the landmarks' pixels.
///
/// ```
/// use mex_core::{LandmarkScheme, Landmarks, Point2};
/// use mex_indicators::{region_polygon, Region};
/// // Any plausible 68-point face; here a synthetic one.
/// let pts: Vec<Point2> = (0..68).map(|i| Point2::new((i * 7 % 100) as f32, (i * 3) as f32)).collect();
/// let lm = Landmarks::new(LandmarkScheme::SixtyEight, pts).unwrap();
/// let poly = region_polygon(&lm, Region::MouthCornerLeft).unwrap();
/// assert_eq!(poly.len(), 4);
/// ```
pub fn region_polygon(lm: &Landmarks, region: Region) -> Result<Vec<Point2>> {
    check_68(lm, 0)?;
    Ok(polygon_unchecked(&lm.points, region))
}

pub(crate) fn polygon_unchecked(p: &[Point2], region: Region) -> Vec<Point2> {
    let f = FaceFrame::new(p);
    let off = |i: usize, a: f64, b: f64| f.offset(p[i], a, b);
    let brow = |idx: [usize; 5]| {
        let mut v: Vec<Point2> = idx.iter().map(|&i| off(i, 0.0, -0.2)).collect();
        v.extend(idx.iter().rev().map(|&i| off(i, 0.0, 0.1)));
        v
    };
    // Eye contour: corner, two upper points, corner, two lower points; `s` = -1 on the
    // image-left eye (its outer corner is first), +1 on the right eye.
    let eye = |i: usize, s: f64| {
        vec![
            off(i, 0.06 * s, 0.0),
            off(i + 1, 0.0, -0.1),
            off(i + 2, 0.0, -0.1),
            off(i + 3, -0.06 * s, 0.0),
            off(i + 4, 0.0, 0.06),
            off(i + 5, 0.0, 0.06),
        ]
    };
    let corner = |i: usize| {
        let h = 0.15;
        vec![off(i, -h, -h), off(i, h, -h), off(i, h, h), off(i, -h, h)]
    };
    match region {
        Region::BrowLeft => brow([17, 18, 19, 20, 21]),
        Region::BrowRight => brow([22, 23, 24, 25, 26]),
        Region::EyeLeft => eye(36, -1.0),
        Region::EyeRight => eye(42, 1.0),
        Region::CheekLeft => vec![
            off(41, 0.0, 0.15),
            off(40, 0.0, 0.15),
            p[31],
            off(48, 0.0, -0.15),
            lerp(p[3], p[41], 0.25),
            lerp(p[2], p[41], 0.25),
            lerp(p[1], p[36], 0.25),
        ],
        Region::CheekRight => vec![
            off(46, 0.0, 0.15),
            off(47, 0.0, 0.15),
            p[35],
            off(54, 0.0, -0.15),
            lerp(p[13], p[46], 0.25),
            lerp(p[14], p[46], 0.25),
            lerp(p[15], p[45], 0.25),
        ],
        Region::Nose => vec![off(27, -0.1, 0.0), off(27, 0.1, 0.0), p[35], p[34], p[33], p[32], p[31]],
        Region::MouthCornerLeft => corner(48),
        Region::MouthCornerRight => corner(54),
        Region::UpperLip => vec![p[31], p[32], p[33], p[34], p[35], p[53], p[52], p[51], p[50], p[49]],
        Region::Chin => vec![p[59], p[58], p[57], p[56], p[55], p[10], p[9], p[8], p[7], p[6]],
    }
}

/// Every region's polygon, in [`Region::ALL`] order.
pub fn region_polygons(lm: &Landmarks) -> Result<Vec<(Region, Vec<Point2>)>> {
    check_68(lm, 0)?;
    Ok(Region::ALL.iter().map(|&r| (r, polygon_unchecked(&lm.points, r))).collect())
}

/// Whether `(x, y)` lies inside `poly` (even-odd rule).
pub fn point_in_polygon(poly: &[Point2], x: f32, y: f32) -> bool {
    let mut inside = false;
    let n = poly.len();
    if n < 3 {
        return false;
    }
    let mut j = n - 1;
    for i in 0..n {
        let (a, b) = (poly[i], poly[j]);
        if (a.y > y) != (b.y > y) && x < (b.x - a.x) * (y - a.y) / (b.y - a.y) + a.x {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Pixel masks of every region on a `width x height` image (row-major, `true` inside), in
/// [`Region::ALL`] order. Pixels outside the image are dropped.
///
/// ```
/// use mex_core::{LandmarkScheme, Landmarks, Point2};
/// use mex_indicators::{region_masks, Region};
/// let pts: Vec<Point2> = (0..68).map(|i| Point2::new((i * 7 % 100) as f32, (i * 3) as f32)).collect();
/// let lm = Landmarks::new(LandmarkScheme::SixtyEight, pts).unwrap();
/// let m = region_masks(&lm, 128, 256).unwrap();
/// assert_eq!(m.masks.len(), 11);
/// assert!(m.masks[Region::Chin.index()].iter().any(|&b| b));
/// ```
pub fn region_masks(lm: &Landmarks, width: usize, height: usize) -> Result<RegionMasks> {
    check_68(lm, 0)?;
    let masks = Region::ALL
        .iter()
        .map(|&r| {
            let mut m = vec![false; width * height];
            for_each_pixel(&polygon_unchecked(&lm.points, r), width, height, |i| m[i] = true);
            m
        })
        .collect();
    Ok(RegionMasks { width, height, masks })
}

/// Calls `f(y * width + x)` for every pixel `(x, y)` of the image inside the polygon, in
/// row-major order, scanning the polygon's bounding box only.
fn for_each_pixel(poly: &[Point2], width: usize, height: usize, mut f: impl FnMut(usize)) {
    let (x0, x1) = poly.iter().fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p.x), b.max(p.x)));
    let (y0, y1) = poly.iter().fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p.y), b.max(p.y)));
    let xa = x0.floor().max(0.0) as usize;
    let ya = y0.floor().max(0.0) as usize;
    let xb = (x1.ceil().max(0.0) as usize + 1).min(width);
    let yb = (y1.ceil().max(0.0) as usize + 1).min(height);
    for y in ya..yb {
        for x in xa..xb {
            if point_in_polygon(poly, x as f32, y as f32) {
                f(y * width + x);
            }
        }
    }
}

/// [`RegionMasks::regional_means`] of the regions of `lm` without building the masks: each
/// region's polygon is rasterised over its bounding box and summed in the same pass (the same
/// values as `region_masks(lm, width, height)?.regional_means(plane)`, for per-frame use).
///
/// ```
/// use mex_core::{LandmarkScheme, Landmarks, Point2};
/// use mex_indicators::{region_masks, regional_means, Region};
/// let pts: Vec<Point2> = (0..68).map(|i| Point2::new((i * 7 % 100) as f32, (i * 3) as f32)).collect();
/// let lm = Landmarks::new(LandmarkScheme::SixtyEight, pts).unwrap();
/// let plane: Vec<f32> = (0..128 * 256).map(|i| (i % 97) as f32).collect();
/// let want = region_masks(&lm, 128, 256).unwrap().regional_means(&plane).unwrap();
/// assert_eq!(regional_means(&lm, &plane, 128, 256).unwrap(), want);
/// ```
pub fn regional_means(
    lm: &Landmarks,
    plane: &[f32],
    width: usize,
    height: usize,
) -> Result<[Option<f64>; N_REGIONS]> {
    check_68(lm, 0)?;
    if plane.len() != width * height {
        return Err(crate::Error::param("plane", plane.len(), "length must be width x height"));
    }
    let mut out = [None; N_REGIONS];
    for (o, &r) in out.iter_mut().zip(Region::ALL.iter()) {
        let (mut s, mut n) = (0.0f64, 0usize);
        for_each_pixel(&polygon_unchecked(&lm.points, r), width, height, |i| {
            s += plane[i] as f64;
            n += 1;
        });
        *o = (n > 0).then(|| s / n as f64);
    }
    Ok(out)
}

/// Rasterised region masks of one image size.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionMasks {
    /// Image width.
    pub width: usize,
    /// Image height.
    pub height: usize,
    /// One row-major mask per region, in [`Region::ALL`] order.
    pub masks: Vec<Vec<bool>>,
}

impl RegionMasks {
    /// Mean of a per-pixel quantity (e.g. a head-motion-compensated flow magnitude, pixels per
    /// frame) over each region; `None` for a region with no pixel in the image. Errors when the
    /// plane's size differs from the masks'.
    ///
    /// ```
    /// use mex_core::{LandmarkScheme, Landmarks, Point2};
    /// use mex_indicators::{region_masks, Region};
    /// let pts: Vec<Point2> = (0..68).map(|i| Point2::new((i * 7 % 100) as f32, (i * 3) as f32)).collect();
    /// let m = region_masks(&Landmarks::new(LandmarkScheme::SixtyEight, pts).unwrap(), 128, 256).unwrap();
    /// let flow_mag = vec![0.5f32; 128 * 256];
    /// let means = m.regional_means(&flow_mag).unwrap();
    /// assert_eq!(means[Region::Chin.index()], Some(0.5));
    /// ```
    pub fn regional_means(&self, plane: &[f32]) -> Result<[Option<f64>; N_REGIONS]> {
        if plane.len() != self.width * self.height {
            return Err(crate::Error::param(
                "plane",
                plane.len(),
                "length must be the masks' width x height",
            ));
        }
        let mut out = [None; N_REGIONS];
        for (o, m) in out.iter_mut().zip(&self.masks) {
            let (s, n) = m
                .iter()
                .zip(plane)
                .filter(|(b, _)| **b)
                .fold((0.0f64, 0usize), |(s, n), (_, v)| (s + *v as f64, n + 1));
            *o = (n > 0).then(|| s / n as f64);
        }
        Ok(out)
    }
}
