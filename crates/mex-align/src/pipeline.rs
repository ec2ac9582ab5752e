//! Detection → landmarks → alignment in one object, plus image loading with typed errors.

use std::path::Path;

use image::{DynamicImage, GrayImage, RgbImage};
use mex_core::{gray_f32_from_dynamic, GrayF32, Landmarks, Similarity};

use crate::{Aligner, Error, Face, FaceDetector, LandmarkModel, Result};

/// Decodes an image from bytes (any format the `image` crate was built with), with the decoder
/// limits of [`mex_core::decode_image_limited`]; a truncated JPEG is an error.
pub fn decode_image(bytes: &[u8]) -> Result<DynamicImage> {
    mex_core::decode_image_limited(bytes).map_err(|source| Error::Decode { path: None, source })
}

/// Reads and decodes an image file.
pub fn load_image(path: impl AsRef<Path>) -> Result<DynamicImage> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    mex_core::decode_image_limited(&bytes)
        .map_err(|source| Error::Decode { path: Some(path.to_path_buf()), source })
}

/// One aligned face.
#[derive(Debug, Clone)]
pub struct AlignedFace {
    /// The detection.
    pub face: Face,
    /// The landmarks used for alignment (the detector's five, or a landmark model's 68), in image pixels.
    pub landmarks: Landmarks,
    /// Image → crop transform.
    pub transform: Similarity,
    /// The aligned gray crop.
    pub crop: GrayF32,
}

/// A face detector, an optional landmark model and an aligner.
pub struct FacePipeline<D: FaceDetector> {
    /// The detector.
    pub detector: D,
    /// Landmark model refining the detector's landmarks (e.g. a dlib shape predictor); `None` uses
    /// the detector's.
    pub landmark_model: Option<Box<dyn LandmarkModel>>,
    /// The aligner.
    pub aligner: Aligner,
}

impl<D: FaceDetector> std::fmt::Debug for FacePipeline<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacePipeline")
            .field("landmark_model", &self.landmark_model.is_some())
            .field("aligner", &self.aligner)
            .finish()
    }
}

impl<D: FaceDetector> FacePipeline<D> {
    /// A pipeline without a landmark model.
    pub fn new(detector: D, aligner: Aligner) -> Self {
        Self { detector, landmark_model: None, aligner }
    }

    /// Landmarks of a detected face: the landmark model's when there is one, else the detector's.
    pub fn landmarks(&self, gray: &GrayImage, face: &Face) -> Result<Landmarks> {
        match &self.landmark_model {
            Some(m) => m.fit(gray, &face.bbox),
            None => Ok(face.landmarks.clone()),
        }
    }

    /// Detects every face and its landmarks.
    pub fn detect(&self, img: &DynamicImage) -> Result<Vec<(Face, Landmarks)>> {
        let rgb: RgbImage = img.to_rgb8();
        let faces = self.detector.detect(&rgb)?;
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        let gray = img.to_luma8();
        faces
            .into_iter()
            .map(|f| {
                let l = self.landmarks(&gray, &f)?;
                Ok((f, l))
            })
            .collect()
    }

    /// Aligns the first face (largest, with the default detector configuration); errors with
    /// [`Error::NoFace`] when there is none.
    pub fn align(&self, img: &DynamicImage) -> Result<AlignedFace> {
        let (face, landmarks) =
            self.detect(img)?.into_iter().next().ok_or(Error::NoFace { context: None })?;
        let gray = gray_f32_from_dynamic(img)?;
        let (crop, transform) = self.aligner.align_gray(&gray, &landmarks)?;
        Ok(AlignedFace { face, landmarks, transform, crop })
    }
}
