//! mex: facial micro-expression analysis.
//!
//! The root package re-exports the stage crates and composes them into pipelines and experiments.

pub use mex_core as core;
pub use mex_metrics as metrics;
