//! Getting a sample's frames into memory, from disk or from the synthetic generator, through one
//! trait so that protocols do not care where the frames come from.

use crate::{Error, Result, Sample};
use mex_core::{gray_f32_from_dynamic, GrayF32};
use rayon::prelude::*;
use std::path::Path;

/// A provider of frames for samples.
pub trait FrameSource: Sync {
    /// Frame number `n` (the dataset's own numbering, as in `onset`/`apex`) of `sample`.
    fn frame(&self, sample: &Sample, n: usize) -> Result<GrayF32>;

    /// The clip's frames from onset to offset.
    fn clip_frames(&self, sample: &Sample) -> Result<Vec<GrayF32>> {
        let (on, off) = onset_offset(sample)?;
        (on..=off).into_par_iter().map(|n| self.frame(sample, n)).collect()
    }

    /// The onset frame and the apex frame (the middle frame when no apex is annotated).
    fn onset_apex(&self, sample: &Sample) -> Result<(GrayF32, GrayF32)> {
        let (on, _) = onset_offset(sample)?;
        let apex = sample.apex_or_middle().unwrap_or(on);
        Ok((self.frame(sample, on)?, self.frame(sample, apex)?))
    }
}

fn onset_offset(sample: &Sample) -> Result<(usize, usize)> {
    match (sample.onset, sample.offset) {
        (Some(a), Some(b)) if b >= a => Ok((a, b)),
        (a, b) => Err(Error::param(
            "sample.onset/offset",
            format!("{}/{}: {:?}..{:?}", sample.subject, sample.clip, a, b),
            "sample has no valid onset..offset",
        )),
    }
}

/// Frames read from the sample's folder (`path` + `frame_pattern`, or the folder's n-th image
/// counting from `onset` when there is no pattern), decoded to gray.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskFrames;

/// Reads one image file as a gray frame (0..255), with the decoder limits of
/// [`mex_core::decode_image_limited`] (a truncated JPEG or a decompression bomb is an error).
pub fn read_gray(path: &Path) -> Result<GrayF32> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    let img = mex_core::decode_image_limited(&bytes)
        .map_err(|e| Error::Image { path: path.to_path_buf(), message: e.to_string() })?;
    Ok(gray_f32_from_dynamic(&img)?)
}

impl FrameSource for DiskFrames {
    fn frame(&self, sample: &Sample, n: usize) -> Result<GrayF32> {
        let path = match sample.frame_path(n) {
            Some(p) => p,
            None => {
                let files = sample.frame_paths()?;
                let first = sample.onset.unwrap_or(0);
                let i = n.checked_sub(first).ok_or(Error::OutOfRange {
                    what: "frame",
                    index: n,
                    len: files.len(),
                })?;
                files.get(i).cloned().ok_or(Error::OutOfRange {
                    what: "frame",
                    index: n,
                    len: files.len(),
                })?
            }
        };
        if !path.is_file() {
            return Err(Error::BadFramePath {
                path: sample.provenance.clone().into(),
                row: 0,
                frame_path: path,
            });
        }
        read_gray(&path)
    }
}
