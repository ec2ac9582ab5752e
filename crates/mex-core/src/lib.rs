//! Shared vocabulary of the mex crates.
//!
//! Every stage crate (`mex-align`, `mex-flow`, `mex-classify`, `mex-metrics`, `mex-data`) depends on
//! this crate and on external crates only, never on each other. Keep it small:
//!
//! * frames: [`GrayF32`] (with the `image` feature, on by default) and conversions;
//! * motion: [`FlowField`] (two planes `u`, `v` of equal size) with magnitude and angle;
//! * geometry: [`Point2`], [`BBox`], [`Landmarks`], [`Similarity`];
//! * time: [`Interval`] (onset, apex, offset in frame indices);
//! * labels: [`ClassSet`] (named label sets such as the MEGC 3-class set);
//! * errors: [`CoreError`], whose variants carry the offending values;
//! * output files: [`write_atomic_with`] and [`PendingFile`] (temporary file in the same folder,
//!   then a rename);
//! * [`stats`]: quantiles (NumPy's linear rule), median and MAD;
//! * [`simd`]: the one run-time CPU-feature detection of the hand-written kernels (override:
//!   `MEX_SIMD`).
//!
//! ```
//! use mex_core::{FlowField, Interval, Point2, Similarity};
//! # fn main() -> mex_core::Result<()> {
//! // Umeyama least squares: the similarity that maps `src` onto `dst`
//! let t = Similarity::from_params(1.5, 0.3, 10.0, -4.0);
//! let src = [Point2 { x: 0.0, y: 0.0 }, Point2 { x: 10.0, y: 0.0 }, Point2 { x: 0.0, y: 8.0 }];
//! let dst: Vec<Point2> = src.iter().map(|&p| t.apply(p)).collect();
//! let est = Similarity::estimate(&src, &dst)?;
//! assert!((est.scale() - 1.5).abs() < 1e-4 && (est.angle() - 0.3).abs() < 1e-4);
//! // a flow field of two planes, and its end-point error against another
//! let a = FlowField::from_fn(4, 3, |x, _| (x as f32, 0.0));
//! let b = FlowField::zeros(4, 3);
//! assert_eq!(a.epe(&b)?, 1.5);
//! // onset, apex and offset frames
//! let iv = Interval::new(10, 14, 22)?;
//! assert_eq!(iv.len(), 13);
//! # Ok(()) }
//! ```

mod atomic;
mod error;
mod flow;
#[cfg(feature = "image")]
mod frame;
mod geometry;
mod interval;
mod labels;
pub mod simd;
pub mod stats;

pub use atomic::{write_atomic_with, AtomicWriteError, PendingFile};
pub use error::{CoreError, Result};

/// Largest table file (CSV) any mex reader accepts, bytes (256 MiB): tables are read whole or a
/// record at a time, and a file past this size, or a single giant field, would be read into memory.
pub const MAX_TABLE_BYTES: u64 = 256 << 20;

/// Errors with a message when the file at `path` is larger than [`MAX_TABLE_BYTES`]; missing
/// files pass (the reader reports them).
pub fn check_table_size(path: &std::path::Path) -> std::result::Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_TABLE_BYTES => Err(format!(
            "{}: {} bytes, more than the {} MiB a table may have",
            path.display(),
            m.len(),
            MAX_TABLE_BYTES >> 20
        )),
        _ => Ok(()),
    }
}
pub use flow::FlowField;
#[cfg(feature = "image")]
pub use frame::{
    decode_image_limited, gray_f32_from_dynamic, gray_f32_from_luma8, gray_f32_from_rgb8, gray_f32_to_luma8,
    GrayF32, MAX_IMAGE_ALLOC, MAX_IMAGE_SIDE,
};
pub use geometry::{
    five_from_68, BBox, LandmarkScheme, Landmarks, Point2, Similarity, MIRROR_68, OPENFACE_MEAN_FACE_68,
};
pub use interval::{frame_iou, Interval};
pub use labels::ClassSet;
