//! Face alignment inside an experiment: MTCNN on the onset frame, the onset's similarity transform
//! applied to the onset and apex frames (clip mode "onset transform for all frames").

use crate::{Error, Result};
use mex_align::{AlignConfig, Aligner, Mtcnn};
use mex_core::{GrayF32, Similarity};

/// Detects the face of an onset frame and warps an (onset, apex) pair into the canonical crop.
#[derive(Debug)]
pub struct OnsetAligner {
    detector: Mtcnn,
    aligner: Aligner,
}

/// Replicates a gray f32 frame (0..255) into an 8-bit RGB image for the detector.
pub fn gray_to_rgb8(img: &GrayF32) -> image::RgbImage {
    let (w, h) = img.dimensions();
    image::RgbImage::from_fn(w, h, |x, y| {
        let v = img.get_pixel(x, y)[0].round().clamp(0.0, 255.0) as u8;
        image::Rgb([v, v, v])
    })
}

impl OnsetAligner {
    /// An aligner producing `size x size` crops with the default margin.
    pub fn new(size: u32) -> Result<Self> {
        let detector = Mtcnn::new().map_err(|e| Error::stage("align", "MTCNN", e))?;
        let aligner = AlignConfig { size, ..AlignConfig::default() }
            .build()
            .map_err(|e| Error::stage("align", "aligner", e))?;
        Ok(Self { detector, aligner })
    }

    /// The transform that aligns the most confident face of `frame` (`what` names the frame in
    /// errors).
    pub fn transform(&self, frame: &GrayF32, what: &str) -> Result<Similarity> {
        let faces =
            self.detector.detect_rgb(&gray_to_rgb8(frame)).map_err(|e| Error::stage("align", what, e))?;
        let face = faces
            .iter()
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .ok_or_else(|| Error::stage("align", what, "no face found"))?;
        self.aligner.transform(&face.landmarks).map_err(|e| Error::stage("align", what, e))
    }

    /// Aligns both frames with the transform of the onset's most confident face.
    pub fn align_pair(&self, onset: &GrayF32, apex: &GrayF32) -> Result<(GrayF32, GrayF32)> {
        let t = self.transform(onset, "onset")?;
        let a = self.aligner.warp_gray(onset, &t).map_err(|e| Error::stage("align", "onset", e))?;
        let b = self.aligner.warp_gray(apex, &t).map_err(|e| Error::stage("align", "apex", e))?;
        Ok((a, b))
    }
}
