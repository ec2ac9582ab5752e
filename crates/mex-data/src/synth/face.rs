//! The face the generator animates: the vendored astronaut portrait and its measured landmarks,
//! or any image with its 5- or 68-point landmarks.

use crate::{Error, Result};
use mex_core::{gray_f32_from_dynamic, GrayF32, LandmarkScheme, Landmarks, Point2};
use serde::{Deserialize, Serialize};

/// A 200x200 grayscale crop (8-bit PNG, BT.601 luma) of the public-domain NASA portrait of
/// astronaut Eileen Collins (`astronaut.png` of scikit-image), columns 125..325 and rows 20..220
/// of the 512x512 original.
pub const ASTRONAUT_FACE_PNG: &[u8] = include_bytes!("../../assets/astronaut_face.png");

/// The astronaut crop's five landmarks (MTCNN order: image-left eye, image-right eye, nose tip,
/// image-left mouth corner, image-right mouth corner), in crop pixels. Measured once by hand on
/// a 6x enlargement (pupil centres, nose tip, mouth corners); about ±1 px.
pub const ASTRONAUT_LANDMARKS5: [(f32, f32); 5] =
    [(78.5, 81.0), (121.5, 83.5), (100.0, 106.0), (78.0, 120.0), (119.0, 122.5)];

/// Named facial anchor points that place the action units. Index 0 of a pair is the point on
/// the image-left side, index 1 the image-right side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceGeometry {
    /// Eye centres.
    pub eye: [Point2; 2],
    /// Inner (medial) brow ends.
    pub brow_inner: [Point2; 2],
    /// Brow middles.
    pub brow_mid: [Point2; 2],
    /// Outer (lateral) brow ends.
    pub brow_outer: [Point2; 2],
    /// Nose root (between the eyes).
    pub nose_root: Point2,
    /// Nose tip.
    pub nose_tip: Point2,
    /// Mouth corners.
    pub mouth_corner: [Point2; 2],
    /// Top of the upper lip (centre).
    pub upper_lip: Point2,
    /// Bottom of the lower lip (centre).
    pub lower_lip: Point2,
    /// Chin.
    pub chin: Point2,
}

fn p(x: f32, y: f32) -> Point2 {
    Point2::new(x, y)
}

fn add(a: Point2, b: (f32, f32), k: f32) -> Point2 {
    Point2::new(a.x + k * b.0, a.y + k * b.1)
}

fn mid(a: Point2, b: Point2) -> Point2 {
    Point2::new(0.5 * (a.x + b.x), 0.5 * (a.y + b.y))
}

fn mean(pts: &[Point2]) -> Point2 {
    let n = pts.len().max(1) as f32;
    Point2::new(pts.iter().map(|p| p.x).sum::<f32>() / n, pts.iter().map(|p| p.y).sum::<f32>() / n)
}

impl FaceGeometry {
    /// The astronaut crop's anchors, measured by hand (crop pixels, about ±1 px): brows from the
    /// visible brow hairs, lips at the vermilion borders, chin at the lowest jaw point.
    pub fn astronaut() -> Self {
        let l = ASTRONAUT_LANDMARKS5;
        FaceGeometry {
            eye: [p(l[0].0, l[0].1), p(l[1].0, l[1].1)],
            brow_inner: [p(90.0, 73.0), p(111.0, 74.0)],
            brow_mid: [p(77.0, 69.0), p(124.0, 73.0)],
            brow_outer: [p(66.0, 72.0), p(135.0, 78.0)],
            nose_root: p(100.0, 83.0),
            nose_tip: p(l[2].0, l[2].1),
            mouth_corner: [p(l[3].0, l[3].1), p(l[4].0, l[4].1)],
            upper_lip: p(99.0, 117.0),
            lower_lip: p(99.0, 132.0),
            chin: p(97.0, 158.0),
        }
    }

    /// Anchors from landmarks. With 68 points (iBUG order) the brows, nose, lips and chin are
    /// read directly; with 5 points they are placed by the proportions measured on the astronaut
    /// (in units of the inter-ocular distance along and across the eye axis).
    pub fn from_landmarks(lm: &Landmarks) -> Result<Self> {
        if lm.points.len() != lm.scheme.len() {
            return Err(Error::param("landmarks", lm.points.len(), "point count does not match the scheme"));
        }
        let q = &lm.points;
        let g = match lm.scheme {
            LandmarkScheme::SixtyEight => FaceGeometry {
                eye: [mean(&q[36..42]), mean(&q[42..48])],
                brow_inner: [q[21], q[22]],
                brow_mid: [q[19], q[24]],
                brow_outer: [q[17], q[26]],
                nose_root: q[27],
                nose_tip: q[30],
                mouth_corner: [q[48], q[54]],
                upper_lip: q[51],
                lower_lip: q[57],
                chin: q[8],
            },
            LandmarkScheme::Five => {
                let (le, re) = (q[0], q[1]);
                let d = le.distance(&re);
                if d.is_nan() || d <= 1.0 {
                    return Err(Error::param("landmarks", d, "eyes closer than 1 px"));
                }
                let e = ((re.x - le.x) / d, (re.y - le.y) / d);
                let n = (-e.1, e.0); // points down the face
                let at = |base: Point2, a: f32, b: f32| add(add(base, e, a * d), n, b * d);
                let mm = mid(q[3], q[4]);
                FaceGeometry {
                    eye: [le, re],
                    brow_inner: [at(le, 0.27, -0.19), at(re, -0.27, -0.19)],
                    brow_mid: [at(le, -0.03, -0.28), at(re, 0.06, -0.25)],
                    brow_outer: [at(le, -0.29, -0.18), at(re, 0.31, -0.18)],
                    nose_root: mid(le, re),
                    nose_tip: q[2],
                    mouth_corner: [q[3], q[4]],
                    upper_lip: at(mm, 0.0, -0.1),
                    lower_lip: at(mm, 0.0, 0.25),
                    chin: at(mm, 0.0, 0.86),
                }
            }
        };
        if !g.interocular().is_finite() || g.interocular() <= 1.0 {
            return Err(Error::param("landmarks", g.interocular(), "degenerate eye positions"));
        }
        Ok(g)
    }

    /// Distance between the eye centres.
    pub fn interocular(&self) -> f32 {
        self.eye[0].distance(&self.eye[1])
    }

    /// Unit vector along the eye axis (image-left to image-right eye).
    pub fn eye_axis(&self) -> (f32, f32) {
        let d = self.interocular().max(1e-6);
        ((self.eye[1].x - self.eye[0].x) / d, (self.eye[1].y - self.eye[0].y) / d)
    }

    /// Unit vector down the face (perpendicular to the eye axis).
    pub fn down_axis(&self) -> (f32, f32) {
        let e = self.eye_axis();
        (-e.1, e.0)
    }

    /// The face centre used for cropping: midway between the eye midpoint and the mouth midpoint.
    pub fn center(&self) -> Point2 {
        mid(mid(self.eye[0], self.eye[1]), mid(self.mouth_corner[0], self.mouth_corner[1]))
    }

    /// Every anchor mapped through `f`.
    pub fn map(&self, f: impl Fn(Point2) -> Point2) -> FaceGeometry {
        FaceGeometry {
            eye: self.eye.map(&f),
            brow_inner: self.brow_inner.map(&f),
            brow_mid: self.brow_mid.map(&f),
            brow_outer: self.brow_outer.map(&f),
            nose_root: f(self.nose_root),
            nose_tip: f(self.nose_tip),
            mouth_corner: self.mouth_corner.map(&f),
            upper_lip: f(self.upper_lip),
            lower_lip: f(self.lower_lip),
            chin: f(self.chin),
        }
    }

    /// The five MTCNN-order landmarks of this geometry.
    pub fn landmarks5(&self) -> Landmarks {
        Landmarks {
            scheme: LandmarkScheme::Five,
            points: vec![self.eye[0], self.eye[1], self.nose_tip, self.mouth_corner[0], self.mouth_corner[1]],
        }
    }
}

/// A face image with its anchors: the generator's input.
#[derive(Debug, Clone)]
pub struct FaceImage {
    /// Gray frame, 0..255.
    pub image: GrayF32,
    /// Anchors in the image's pixels.
    pub geometry: FaceGeometry,
}

impl FaceImage {
    /// The vendored astronaut crop with its hand-measured anchors.
    pub fn astronaut() -> Result<Self> {
        let img = image::load_from_memory(ASTRONAUT_FACE_PNG)
            .map_err(|e| Error::Image { path: "assets/astronaut_face.png".into(), message: e.to_string() })?;
        Ok(FaceImage { image: gray_f32_from_dynamic(&img)?, geometry: FaceGeometry::astronaut() })
    }

    /// Any face image with its landmarks (5 or 68 points).
    pub fn new(image: GrayF32, landmarks: &Landmarks) -> Result<Self> {
        if image.width() < 16 || image.height() < 16 {
            return Err(Error::param("image", format!("{}x{}", image.width(), image.height()), "too small"));
        }
        if image.as_raw().iter().any(|v| !v.is_finite()) {
            return Err(mex_core::CoreError::NonFinite { what: "face image" }.into());
        }
        Ok(FaceImage { image, geometry: FaceGeometry::from_landmarks(landmarks)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn astronaut_loads_and_five_point_proportions_match_measurement() {
        let f = FaceImage::astronaut().unwrap();
        assert_eq!(f.image.dimensions(), (200, 200));
        let a = FaceGeometry::astronaut();
        let from5 = FaceGeometry::from_landmarks(&a.landmarks5()).unwrap();
        // The 5-point proportions reproduce the hand-measured anchors to a few pixels.
        let pairs = [
            (a.brow_inner[0], from5.brow_inner[0]),
            (a.brow_mid[1], from5.brow_mid[1]),
            (a.lower_lip, from5.lower_lip),
            (a.chin, from5.chin),
        ];
        for (m, d) in pairs {
            assert!(m.distance(&d) < 4.0, "{m:?} vs {d:?}");
        }
        assert!((a.interocular() - 43.07).abs() < 0.1);
        let bad = Landmarks { scheme: LandmarkScheme::Five, points: vec![Point2::default(); 5] };
        assert!(FaceGeometry::from_landmarks(&bad).is_err());
    }

    #[test]
    fn sixty_eight_points_map_to_anchors() {
        let pts: Vec<Point2> = (0..68).map(|i| Point2::new(i as f32, 2.0 * i as f32)).collect();
        let lm = Landmarks::new(LandmarkScheme::SixtyEight, pts).unwrap();
        let g = FaceGeometry::from_landmarks(&lm).unwrap();
        assert_eq!(g.brow_inner[0], Point2::new(21.0, 42.0));
        assert_eq!(g.eye[0], Point2::new(38.5, 77.0));
        assert_eq!(g.chin, Point2::new(8.0, 16.0));
    }
}
