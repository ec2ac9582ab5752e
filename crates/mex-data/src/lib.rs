//! Micro-expression datasets for the mex crates.
//!
//! * [`Sample`] and [`Dataset`]: one record type for every dataset, serialisable to CSV/JSON;
//! * [`split`]: LOSO, leave-one-dataset-out and seeded k-fold-by-subject splits;
//! * [`loaders`]: the published layouts of CASME II, SAMM, SMIC-HS, CAS(ME)², SAMM Long Videos and
//!   the STSTNet flow-image release, read from a user path as shipped;
//! * [`megc`]: the MEGC2019 composite (3-class) protocol as code;
//! * [`synth`]: a synthetic generator (a real, public-domain face animated with facial-action
//!   displacement fields) with exact ground-truth flow, intervals and labels;
//! * [`FrameSource`]: frames in memory from disk or from the generator, through one trait;
//! * [`video`]: whole recordings streamed frame by frame ([`FrameStream`]): video files (FFmpeg)
//!   and folders of frames, with presentation timestamps.
//!
//! Privacy: the library never writes face images unless the caller asks for them.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod error;
pub mod frames;
pub mod loaders;
pub mod manifest;
pub mod megc;
pub mod sample;
pub mod split;
pub mod synth;
pub mod table;
pub mod video;

pub use error::{Error, Result};
pub use frames::{DiskFrames, FrameSource};
pub use sample::{Dataset, Sample};
pub use split::{kfold_by_subject, leave_one_dataset_out, loso, Fold};
pub use video::{open_frames, Frame, FrameStream, StreamInfo};

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    mex_core::write_atomic_with(path, |tmp| std::fs::write(tmp, bytes).map_err(|e| Error::io(path, e)))
        .map_err(|e| e.into_error(Error::io))
}
