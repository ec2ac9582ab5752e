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
//! * errors: [`CoreError`], whose variants carry the offending values.

mod error;
mod flow;
#[cfg(feature = "image")]
mod frame;
mod geometry;
mod interval;
mod labels;

pub use error::{CoreError, Result};
pub use flow::FlowField;
#[cfg(feature = "image")]
pub use frame::{
    decode_image_limited, gray_f32_from_dynamic, gray_f32_from_luma8, gray_f32_to_luma8, GrayF32,
    MAX_IMAGE_ALLOC, MAX_IMAGE_SIDE,
};
pub use geometry::{BBox, LandmarkScheme, Landmarks, Point2, Similarity};
pub use interval::Interval;
pub use labels::ClassSet;
