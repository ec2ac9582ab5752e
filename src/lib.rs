//! mex: facial micro-expression analysis.
//!
//! The root package re-exports the stage crates and composes them into pipelines and experiments:
//!
//! * [`core`], [`align`], [`flow`], [`classify`], [`metrics`], [`data`]: the stage crates;
//! * [`plots`]: report figures (SVG and PNG);
//! * [`io`]: atomic writes for reports and fold results.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub use mex_align as align;
pub use mex_classify as classify;
pub use mex_core as core;
pub use mex_data as data;
pub use mex_flow as flow;
pub use mex_metrics as metrics;

mod error;
pub mod io;
pub mod plots;

pub use error::{Error, Result};
