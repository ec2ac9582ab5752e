//! Face detection, landmarks and alignment for the mex micro-expression crates.
//!
//! * [`mtcnn`]: MTCNN face detection, a faithful port of facenet-pytorch 2.6.0 with its weights
//!   vendored (no download); boxes and landmarks match facenet-pytorch's. The convolutions run on
//!   hand-written kernels, the dense layers on candle's matrix product.
//! * [`dlib`]: dlib's `shape_predictor` (68- or 5-point ensemble of regression trees) in pure Rust,
//!   reading dlib's own model files.
//! * [`align`]: Umeyama similarity to a canonical template ([`template`]), bilinear warp to a crop,
//!   clip alignment (onset transform or smoothed per-frame transforms).
//! * [`roi`]: landmark regions of interest and an eye mask; [`illum`]: histogram equalisation and CLAHE.
//! * [`batch`]: detection over many frames (rayon) and a tracker that re-detects only on motion.
//! * [`pipeline`]: detector + landmark model + aligner in one object, image loading.
//!
//! Everything runs on the CPU and never panics on data: bad input gives a typed [`Error`].
//!
//! ```no_run
//! use mex_align::{AlignConfig, FacePipeline, Mtcnn};
//! let pipeline = FacePipeline::new(Mtcnn::new()?, AlignConfig::default().build()?);
//! let img = mex_align::load_image("face.png")?;
//! let aligned = pipeline.align(&img)?; // Err(Error::NoFace { .. }) without a face
//! println!("{:?} {:?}", aligned.face.bbox, aligned.transform);
//! # Ok::<(), mex_align::Error>(())
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod align;
pub mod batch;
pub mod dlib;
mod error;
pub mod illum;
pub mod mtcnn;
pub mod pipeline;
pub mod roi;
pub mod template;
pub mod track;

pub use align::{AlignConfig, AlignedClip, Aligner, ClipMode};
pub use batch::{detect_batch, FaceTracker, TrackerConfig};
pub use dlib::{DlibRect, ShapePredictor};
pub use error::{Error, Result};
pub use mtcnn::{Mtcnn, MtcnnConfig};
pub use pipeline::{decode_image, load_image, AlignedFace, FacePipeline};
pub use track::{dlib_box_from_points, MultiFaceTracker, MultiTrackerConfig, TrackedFace};

use image::{GrayImage, RgbImage};
use mex_core::{BBox, Landmarks};
use serde::{Deserialize, Serialize};

/// A detected face: box, detector score and landmarks, all in input-image pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Face {
    /// The face box (may extend past the image border, as MTCNN's does).
    pub bbox: BBox,
    /// Detector confidence in `[0, 1]`.
    pub score: f32,
    /// The detector's landmarks (five for MTCNN).
    pub landmarks: Landmarks,
}

/// A face detector.
pub trait FaceDetector: Send + Sync {
    /// Detects the faces of an RGB image; an image without a face gives an empty list.
    fn detect(&self, img: &RgbImage) -> Result<Vec<Face>>;

    /// Re-fits the faces near known boxes (tracking between full detections): for each box, the
    /// face found there or `None`. The default runs [`Self::detect`] and takes, for each box, the
    /// detection of highest overlap (IoU above 0.3); detectors with a cheaper local step (MTCNN's
    /// O-Net) override it.
    fn refine(&self, img: &RgbImage, boxes: &[BBox]) -> Result<Vec<Option<Face>>> {
        let faces = self.detect(img)?;
        Ok(boxes
            .iter()
            .map(|b| {
                faces
                    .iter()
                    .map(|f| (f.bbox.iou(b), f))
                    .filter(|(o, _)| *o > 0.3)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, f)| f.clone())
            })
            .collect())
    }
}

/// A landmark model fitted inside a face box.
pub trait LandmarkModel: Send + Sync {
    /// Landmarks of the face in `bbox` of a gray image, in image pixels.
    fn fit(&self, img: &GrayImage, bbox: &BBox) -> Result<Landmarks>;
}
