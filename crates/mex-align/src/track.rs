//! Tracking every face of a video with a stable identity ([`MultiFaceTracker`]), and starting a
//! dlib-format 68-point model from a box in the convention it was trained with
//! ([`dlib_box_from_points`]).
//!
//! # The tracker
//!
//! A full detection (the detector's whole pyramid) runs on the first frame, every
//! [`MultiTrackerConfig::detect_every`] frames, and whenever a tracked face is lost. In between,
//! each tracked face is re-fitted where it was ([`FaceDetector::refine`]: for MTCNN, O-Net alone
//! on the previous box), which both follows the face and verifies that it is still there: a face
//! whose re-fit fails is dropped in that frame, never carried over. Detections are matched to
//! tracks by box overlap (greedy, highest IoU first, IoU > [`MultiTrackerConfig::iou_match`]);
//! an unmatched detection starts a new track with the next `face_id` (0, 1, 2, ... in order of
//! appearance), up to [`MultiTrackerConfig::max_faces`] at once, highest scores first.
//!
//! ```
//! use mex_align::{Mtcnn, MultiFaceTracker, MultiTrackerConfig};
//! # fn main() -> mex_align::Result<()> {
//! let mut tracker = MultiFaceTracker::new(Mtcnn::new()?, MultiTrackerConfig::default())?;
//! let frame = image::RgbImage::new(64, 48); // no face in a black frame
//! assert!(tracker.track(&frame)?.is_empty());
//! # Ok(())
//! # }
//! ```

use image::RgbImage;
use mex_core::{BBox, Landmarks, Point2};
use serde::{Deserialize, Serialize};

use crate::{Error, Face, FaceDetector, Result};

/// Parameters of [`MultiFaceTracker`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultiTrackerConfig {
    /// Full detection every this many frames (1 = every frame), besides the first frame and
    /// frames where a face was lost. New faces appear with at most this delay.
    pub detect_every: usize,
    /// Most faces tracked at once (1..=64).
    pub max_faces: usize,
    /// Box overlap (IoU) above which a detection continues a track.
    pub iou_match: f32,
}

impl Default for MultiTrackerConfig {
    fn default() -> Self {
        Self { detect_every: 10, max_faces: 4, iou_match: 0.3 }
    }
}

impl MultiTrackerConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        if !(1..=10_000).contains(&self.detect_every) {
            return Err(Error::param("detect_every", self.detect_every, "must be in 1..=10000"));
        }
        if !(1..=64).contains(&self.max_faces) {
            return Err(Error::param("max_faces", self.max_faces, "must be in 1..=64"));
        }
        if !(self.iou_match.is_finite() && self.iou_match > 0.0 && self.iou_match < 1.0) {
            return Err(Error::param("iou_match", self.iou_match, "must be in (0, 1)"));
        }
        Ok(())
    }
}

/// A face in one frame with its track identity.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedFace {
    /// Stable identity: 0 for the first face that appeared, then 1, 2, ...
    pub face_id: usize,
    /// The face in this frame.
    pub face: Face,
    /// Whether this frame ran a full detection (false: re-fitted from the previous frame).
    pub detected: bool,
}

/// Tracks every face of a frame sequence (see the module docs).
#[derive(Debug)]
pub struct MultiFaceTracker<D: FaceDetector> {
    detector: D,
    config: MultiTrackerConfig,
    tracks: Vec<(usize, Face)>,
    next_id: usize,
    frame: usize,
    size: Option<(u32, u32)>,
    detections: usize,
}

impl<D: FaceDetector> MultiFaceTracker<D> {
    /// A tracker around a detector.
    pub fn new(detector: D, config: MultiTrackerConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { detector, config, tracks: Vec::new(), next_id: 0, frame: 0, size: None, detections: 0 })
    }

    /// Number of full detections run so far.
    pub fn detections(&self) -> usize {
        self.detections
    }

    /// The faces of the next frame, sorted by `face_id`.
    pub fn track(&mut self, img: &RgbImage) -> Result<Vec<TrackedFace>> {
        let t = self.frame;
        self.frame += 1;
        let resized = self.size.is_some_and(|s| s != img.dimensions());
        self.size = Some(img.dimensions());
        let scheduled = t.is_multiple_of(self.config.detect_every) || resized;
        let mut lost = false;
        if !scheduled && !self.tracks.is_empty() {
            let boxes: Vec<BBox> = self.tracks.iter().map(|(_, f)| f.bbox).collect();
            let refit = self.detector.refine(img, &boxes)?;
            let mut kept = Vec::with_capacity(self.tracks.len());
            for ((id, _), f) in self.tracks.drain(..).zip(refit) {
                match f {
                    Some(f) => kept.push((id, f)),
                    None => lost = true,
                }
            }
            self.tracks = kept;
            dedup(&mut self.tracks);
        }
        let detected = scheduled || lost;
        if detected {
            let faces = self.detector.detect(img)?;
            self.detections += 1;
            self.assign(faces);
        }
        let mut out: Vec<TrackedFace> = self
            .tracks
            .iter()
            .map(|(id, f)| TrackedFace { face_id: *id, face: f.clone(), detected })
            .collect();
        out.sort_by_key(|f| f.face_id);
        Ok(out)
    }

    /// Matches detections to tracks by IoU; the unmatched start new tracks.
    fn assign(&mut self, mut faces: Vec<Face>) {
        faces.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, (_, tf)) in self.tracks.iter().enumerate() {
            for (di, d) in faces.iter().enumerate() {
                let o = tf.bbox.iou(&d.bbox);
                if o > self.config.iou_match {
                    pairs.push((o, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_of_det: Vec<Option<usize>> = vec![None; faces.len()];
        let mut used_track = vec![false; self.tracks.len()];
        for (_, ti, di) in pairs {
            if !used_track[ti] && track_of_det[di].is_none() {
                used_track[ti] = true;
                track_of_det[di] = Some(ti);
            }
        }
        let mut next: Vec<(usize, Face)> = Vec::new();
        let mut fresh: Vec<Face> = Vec::new();
        for (di, d) in faces.into_iter().enumerate() {
            match track_of_det[di] {
                Some(ti) => next.push((self.tracks[ti].0, d)),
                None => fresh.push(d),
            }
        }
        // `fresh` keeps the score order: the most confident new faces first.
        for d in fresh {
            if next.len() >= self.config.max_faces {
                break;
            }
            next.push((self.next_id, d));
            self.next_id += 1;
        }
        next.sort_by_key(|(id, _)| *id);
        next.truncate(self.config.max_faces);
        self.tracks = next;
    }
}

/// Drops the younger of two tracks that converged onto the same face (IoU > 0.5).
fn dedup(tracks: &mut Vec<(usize, Face)>) {
    tracks.sort_by_key(|(id, _)| *id);
    let mut keep: Vec<(usize, Face)> = Vec::with_capacity(tracks.len());
    for (id, f) in tracks.drain(..) {
        if keep.iter().all(|(_, k)| k.bbox.iou(&f.bbox) <= 0.5) {
            keep.push((id, f));
        }
    }
    *tracks = keep;
}

/// The 68-point indices whose mean gives MTCNN's five points: eye centres (36-41, 42-47), nose
/// tip (30), mouth corners (48, 54).
const FIVE_FROM_68: [&[usize]; 5] =
    [&[36, 37, 38, 39, 40, 41], &[42, 43, 44, 45, 46, 47], &[30], &[48], &[54]];

/// The box, in the convention a dlib-format shape predictor was trained with, that places its
/// mean shape best onto `points`: `mean_shape` is the model's initial shape in box-normalised
/// coordinates (`ShapePredictor::initial_shape`, 68 `(x, y)` pairs in `[0, 1]`-ish units), and
/// `points` are either the face's five MTCNN points or 68 points (a previous frame's fit).
///
/// The fit is least squares over a square box `(x0, y0, side)`: `x0 + side * mx_i ≈ px_i`,
/// `y0 + side * my_i ≈ py_i`, closed form. For five points the model's mean shape is reduced to
/// the same five points (eye centres as the mean of each eye's six points). A dlib detector's box
/// is where the model's mean shape sits on an average face, so this starts the model from the box
/// it expects rather than from another detector's box convention.
pub fn dlib_box_from_points(mean_shape: &[f32], points: &Landmarks) -> Result<BBox> {
    if mean_shape.len() != 136 {
        return Err(Error::param("mean_shape", mean_shape.len(), "needs 68 (x, y) pairs"));
    }
    let m = |i: usize| Point2::new(mean_shape[2 * i], mean_shape[2 * i + 1]);
    let pairs: Vec<(Point2, Point2)> = match points.points.len() {
        5 => FIVE_FROM_68
            .iter()
            .zip(&points.points)
            .map(|(idx, p)| {
                let n = idx.len() as f32;
                let c = idx
                    .iter()
                    .fold(Point2::new(0.0, 0.0), |a, &i| Point2::new(a.x + m(i).x / n, a.y + m(i).y / n));
                (c, *p)
            })
            .collect(),
        68 => (0..68).map(|i| (m(i), points.points[i])).collect(),
        n => return Err(Error::param("points", n, "needs 5 (MTCNN) or 68 points")),
    };
    if pairs.iter().any(|(a, b)| !(a.x.is_finite() && a.y.is_finite() && b.x.is_finite() && b.y.is_finite()))
    {
        return Err(Error::param("points", "non-finite", "landmarks must be finite"));
    }
    // Minimise sum (x0 + s mx - px)^2 + (y0 + s my - py)^2 over (x0, y0, s).
    let n = pairs.len() as f64;
    let (mut smx, mut smy, mut spx, mut spy, mut smm, mut smp) = (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (a, b) in &pairs {
        let (mx, my, px, py) = (f64::from(a.x), f64::from(a.y), f64::from(b.x), f64::from(b.y));
        smx += mx;
        smy += my;
        spx += px;
        spy += py;
        smm += mx * mx + my * my;
        smp += mx * px + my * py;
    }
    let denom = smm - (smx * smx + smy * smy) / n;
    if !(denom > 1e-12) {
        return Err(Error::param("mean_shape", "degenerate", "the model's mean shape has no extent"));
    }
    let s = (smp - (smx * spx + smy * spy) / n) / denom;
    if !(s.is_finite() && s > 0.0) {
        return Err(Error::param("points", "degenerate", "the points do not form a face"));
    }
    let x0 = (spx - s * smx) / n;
    let y0 = (spy - s * smy) / n;
    Ok(BBox::new(x0 as f32, y0 as f32, (x0 + s) as f32, (y0 + s) as f32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mex_core::LandmarkScheme;

    struct Script(std::sync::Mutex<Vec<Vec<Face>>>);

    impl FaceDetector for Script {
        fn detect(&self, _: &RgbImage) -> Result<Vec<Face>> {
            let mut s = self.0.lock().unwrap();
            Ok(if s.len() > 1 { s.remove(0) } else { s[0].clone() })
        }
    }

    fn face(x: f32, score: f32) -> Face {
        let pts = (0..5).map(|i| Point2::new(x + i as f32, 10.0)).collect();
        Face {
            bbox: BBox::new(x, 0.0, x + 40.0, 40.0),
            score,
            landmarks: Landmarks::new(LandmarkScheme::Five, pts).unwrap(),
        }
    }

    #[test]
    fn identities_are_stable_and_lost_faces_are_not_carried() {
        // frame 0: faces at 0 and 100; frame 1: both moved a little, the order swapped;
        // frame 2: only the second; frame 3: a new face far away.
        let script = vec![
            vec![face(0.0, 0.99), face(100.0, 0.9)],
            vec![face(103.0, 0.95), face(2.0, 0.97)],
            vec![face(105.0, 0.95)],
            vec![face(105.0, 0.95), face(300.0, 0.9)],
        ];
        let cfg = MultiTrackerConfig { detect_every: 1, ..Default::default() };
        let mut t = MultiFaceTracker::new(Script(std::sync::Mutex::new(script)), cfg).unwrap();
        let img = RgbImage::new(8, 8);
        let ids = |v: Vec<TrackedFace>| v.iter().map(|f| (f.face_id, f.face.bbox.x0)).collect::<Vec<_>>();
        assert_eq!(ids(t.track(&img).unwrap()), vec![(0, 0.0), (1, 100.0)]);
        assert_eq!(ids(t.track(&img).unwrap()), vec![(0, 2.0), (1, 103.0)]);
        assert_eq!(ids(t.track(&img).unwrap()), vec![(1, 105.0)]);
        assert_eq!(ids(t.track(&img).unwrap()), vec![(1, 105.0), (2, 300.0)]);
    }

    #[test]
    fn max_faces_keeps_the_most_confident() {
        let script = vec![vec![face(0.0, 0.8), face(100.0, 0.99), face(200.0, 0.9)]];
        let cfg = MultiTrackerConfig { detect_every: 1, max_faces: 2, ..Default::default() };
        let mut t = MultiFaceTracker::new(Script(std::sync::Mutex::new(script)), cfg).unwrap();
        let got = t.track(&RgbImage::new(8, 8)).unwrap();
        let xs: Vec<f32> = got.iter().map(|f| f.face.bbox.x0).collect();
        assert_eq!(xs, vec![100.0, 200.0]);
        assert!(MultiTrackerConfig { max_faces: 0, ..Default::default() }.validate().is_err());
        assert!(MultiTrackerConfig { detect_every: 0, ..Default::default() }.validate().is_err());
    }

    #[test]
    fn box_fit_inverts_a_placed_mean_shape() {
        // A mean shape placed in the box (10, 20)-(110, 120) is mapped back to that box exactly,
        // from all 68 points and from the five derived points.
        let mean: Vec<f32> = (0..68)
            .flat_map(|i| [0.1 + 0.8 * (i % 9) as f32 / 8.0, 0.2 + 0.7 * (i / 9) as f32 / 7.0])
            .collect();
        let place = |p: Point2| Point2::new(10.0 + 100.0 * p.x, 20.0 + 100.0 * p.y);
        let pts68: Vec<Point2> = (0..68).map(|i| place(Point2::new(mean[2 * i], mean[2 * i + 1]))).collect();
        let b =
            dlib_box_from_points(&mean, &Landmarks::new(LandmarkScheme::SixtyEight, pts68.clone()).unwrap())
                .unwrap();
        for (got, want) in [b.x0, b.y0, b.x1, b.y1].iter().zip([10.0, 20.0, 110.0, 120.0]) {
            assert!((got - want).abs() < 1e-3, "{b:?}");
        }
        let five: Vec<Point2> = FIVE_FROM_68
            .iter()
            .map(|idx| {
                let n = idx.len() as f32;
                idx.iter().fold(Point2::new(0.0, 0.0), |a, &i| {
                    Point2::new(a.x + pts68[i].x / n, a.y + pts68[i].y / n)
                })
            })
            .collect();
        let b5 = dlib_box_from_points(&mean, &Landmarks::new(LandmarkScheme::Five, five).unwrap()).unwrap();
        for (got, want) in [b5.x0, b5.y0, b5.x1, b5.y1].iter().zip([10.0, 20.0, 110.0, 120.0]) {
            assert!((got - want).abs() < 1e-2, "{b5:?}");
        }
        assert!(dlib_box_from_points(
            &mean[..10],
            &Landmarks::new(LandmarkScheme::SixtyEight, pts68).unwrap()
        )
        .is_err());
    }
}
