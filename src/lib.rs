//! mex: facial micro-expression analysis.
//!
//! The root package re-exports the stage crates and composes them into pipelines and experiments:
//!
//! * [`core`], [`align`], [`flow`], [`classify`], [`metrics`], [`data`]: the stage crates;
//! * [`analyze`]: analysis of one's own clip (`mex analyze`);
//! * [`demo`]: the end-to-end demonstration behind `mex demo`;
//! * [`experiment`]: experiment files, the fold runner and reports;
//! * [`plots`]: report figures (SVG and PNG);
//! * [`indicator_plots`]: figures of the clinical indicators (EAR and blinks, regional activity, asymmetry);
//! * [`robustness`]: degradation curves under controlled perturbations;
//! * [`study`]: screening studies: group comparisons, AUC, ICC, grouped cross-validated classifier;
//! * [`io`]: atomic writes for reports and fold results.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod analyze;
pub use mex_align as align;
pub use mex_classify as classify;
pub use mex_core as core;
pub use mex_data as data;
pub use mex_flow as flow;
pub use mex_indicators as indicators;
pub use mex_metrics as metrics;

pub mod demo;
mod error;
pub mod experiment;
pub mod indicator_plots;
pub mod io;
pub mod plots;
pub mod robustness;
pub mod study;

pub use error::{Error, Result};
