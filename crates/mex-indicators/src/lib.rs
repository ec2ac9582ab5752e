//! Clinical facial indicators from per-frame 68-point landmarks and regional motion.
//!
//! This stage crate takes what the earlier stages measured — the face's 68 iBUG landmarks per
//! frame (`None` when no face was found), the frame's timestamp and, optionally, the
//! head-motion-compensated flow magnitude in named facial regions — and computes interpretable
//! indicators with every formula written out (`docs/indicators.md` of the repository):
//!
//! * [`eyes`]: eye aspect ratio (EAR) per eye and frame; blinks by an adaptive detector and by
//!   OpenDBM's (SciPy `find_peaks` prominence, reimplemented in [`peaks`]); blink rate and
//!   inter-blink intervals;
//! * [`asymmetry`]: a per-frame landmark asymmetry index per region (brows, eyes, mouth), the
//!   signed motion asymmetry of a movement, Emotrics' percent asymmetry;
//! * [`regions`]: named facial regions as polygons and pixel masks, from landmarks or on an
//!   aligned crop;
//! * [`expressivity`]: regional activity in inter-ocular distances per second, noise floors,
//!   fraction of time active, a composite expressivity score;
//! * [`tracker`]: the streaming [`IndicatorTracker`] (`push` per frame, `finish` per
//!   recording) that produces per-frame columns and a flat per-recording [`Summary`].
//!
//! It depends on `mex-core` only: no decoder, no model.
//!
//! ```
//! use mex_core::{LandmarkScheme, Landmarks, Point2};
//! use mex_indicators::{FrameInput, IndicatorConfig};
//! let mut tracker = IndicatorConfig::default().build(30.0).unwrap();
//! let pts: Vec<Point2> = (0..68).map(|i| Point2::new((i * 7 % 100) as f32, (i * 3) as f32)).collect();
//! let face = Landmarks::new(LandmarkScheme::SixtyEight, pts).unwrap();
//! for i in 0..30 {
//!     let row = tracker.push(&FrameInput { time_s: i as f64 / 30.0, landmarks: Some(&face), motion: None }).unwrap();
//!     assert!(row.ear_mean.is_some());
//! }
//! let summary = tracker.finish(None).unwrap();
//! assert_eq!(summary.get("n_frames"), Some(30.0));
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod asymmetry;
mod error;
pub mod expressivity;
pub mod eyes;
mod geometry;
pub mod peaks;
pub mod regions;
mod stats;
pub mod tracker;

pub use asymmetry::{landmark_asymmetry, motion_asymmetry, percent_asymmetry, LandmarkAsymmetry, MIRROR_68};
pub use error::{Error, Result};
pub use expressivity::{expressivity_score, noise_floor, RegionMotion};
pub use eyes::{
    detect_blinks_adaptive, detect_blinks_opendbm, ear_68, ear_baseline, eye_aspect_ratio, Blink,
    BlinkConfig, EarSample,
};
pub use geometry::interocular_distance;
pub use peaks::{find_peaks_prominence, peak_prominences, Peak};
pub use regions::{
    point_in_polygon, region_masks, region_polygon, region_polygons, regional_means, Region, RegionMasks,
    Side, N_REGIONS,
};
pub use tracker::{
    FrameIndicators, FrameInput, IndicatorConfig, IndicatorTracker, MovementIndicators, Summary,
};
