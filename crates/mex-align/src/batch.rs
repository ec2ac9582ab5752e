//! Detection over many frames: in parallel ([`detect_batch`]) or with a tracker that re-detects
//! only when the face moved ([`FaceTracker`]).

use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Face, FaceDetector, Result};

/// Detects faces in every frame in parallel (rayon); the result keeps the frame order.
pub fn detect_batch<D: FaceDetector + ?Sized>(det: &D, frames: &[RgbImage]) -> Result<Vec<Vec<Face>>> {
    frames.par_iter().map(|f| det.detect(f)).collect()
}

/// Tracker parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrackerConfig {
    /// Re-detect when the mean absolute gray difference inside the face box (0..255 scale) between
    /// the current frame and the frame of the last detection exceeds this.
    pub motion_threshold: f32,
    /// Re-detect at least every this many frames (0 = never forced).
    pub max_gap: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self { motion_threshold: 6.0, max_gap: 0 }
    }
}

/// Re-runs the detector only when the face region changed (motion) or after `max_gap` frames;
/// otherwise reuses the last detection.
#[derive(Debug)]
pub struct FaceTracker<D: FaceDetector> {
    detector: D,
    config: TrackerConfig,
    last: Option<(RgbImage, Vec<Face>)>,
    since: usize,
    detections: usize,
}

impl<D: FaceDetector> FaceTracker<D> {
    /// A tracker around a detector.
    pub fn new(detector: D, config: TrackerConfig) -> Self {
        Self { detector, config, last: None, since: 0, detections: 0 }
    }

    /// Number of detector runs so far.
    pub fn detections(&self) -> usize {
        self.detections
    }

    /// Faces of the next frame.
    pub fn track(&mut self, frame: &RgbImage) -> Result<Vec<Face>> {
        let redetect = match &self.last {
            None => true,
            Some((img, faces)) => {
                img.dimensions() != frame.dimensions()
                    || faces.is_empty()
                    || (self.config.max_gap > 0 && self.since >= self.config.max_gap)
                    || faces.iter().any(|f| box_motion(img, frame, f) > self.config.motion_threshold)
            }
        };
        if redetect {
            let faces = self.detector.detect(frame)?;
            self.detections += 1;
            self.since = 0;
            self.last = Some((frame.clone(), faces.clone()));
            Ok(faces)
        } else {
            self.since += 1;
            Ok(self.last.as_ref().map(|(_, f)| f.clone()).unwrap_or_default())
        }
    }
}

/// Mean absolute difference of the luma inside the face box (clipped to the image).
fn box_motion(a: &RgbImage, b: &RgbImage, f: &Face) -> f32 {
    let (w, h) = a.dimensions();
    let x0 = f.bbox.x0.max(0.0) as u32;
    let y0 = f.bbox.y0.max(0.0) as u32;
    let x1 = (f.bbox.x1.max(0.0) as u32).min(w);
    let y1 = (f.bbox.y1.max(0.0) as u32).min(h);
    if x1 <= x0 || y1 <= y0 {
        return f32::INFINITY;
    }
    let luma =
        |p: &image::Rgb<u8>| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
    let mut sum = 0.0f64;
    for y in y0..y1 {
        for x in x0..x1 {
            sum += f64::from((luma(a.get_pixel(x, y)) - luma(b.get_pixel(x, y))).abs());
        }
    }
    (sum / f64::from((x1 - x0) * (y1 - y0))) as f32
}
