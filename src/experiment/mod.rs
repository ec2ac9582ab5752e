//! Experiments: a dataset, a protocol and pipeline variants, run fold by fold (resumable, each fold
//! an independent job), merged into a report with confidence intervals and paired tests.
//!
//! ```no_run
//! # fn main() -> mex::Result<()> {
//! use mex::experiment::{run_experiment, ExperimentConfig, RunOptions};
//! let cfg = ExperimentConfig::from_file("examples/experiments/flow_methods.toml".as_ref())?;
//! run_experiment(&cfg, "out/flow_methods".as_ref(), &RunOptions { progress: true, ..Default::default() })?;
//! # Ok(())
//! # }
//! ```

pub mod align;
pub mod config;
pub mod corpus;
pub mod report;
pub mod run;
pub mod spotting;

pub use config::{
    AlignSpec, DatasetSpec, EvaluationConfig, ExperimentConfig, Protocol, SyntheticSpec, VariantConfig,
};
pub use corpus::{Corpus, ExpSample, FramePerturbation};
pub use report::{Comparison, GroupScores, Provenance, Report, VariantReport};
pub use run::{run_experiment, OutDir, RunOptions, RunOutcome};
pub use spotting::{SpotReport, SpottingTask, TaskSpec};
