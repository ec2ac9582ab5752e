//! Micro-expression classifiers on [candle](https://github.com/huggingface/candle): STSTNet,
//! OFF-ApexNet and a configurable shallow CNN, with PyTorch-compatible safetensors checkpoints,
//! reproducible training (Adam / AdamW, seeded initialisation, dropout and shuffling) and a
//! leave-one-subject-out trainer whose model selection can only use training subjects.
//!
//! ```no_run
//! use mex_classify::{data, Model, ModelConfig, StstnetConfig};
//! # fn main() -> mex_classify::Result<()> {
//! let ds = data::load_ststnet_inputs("ststnet-composite/inputs".as_ref())?;
//! let cfg = ModelConfig::Ststnet(StstnetConfig::default());
//! let model = Model::load(&cfg, "ststnet-composite/weights/sub01.safetensors", &candle_core::Device::Cpu)?;
//! let idx = ds.indices_of("sub01");
//! let pred = model.predict(&ds.batch(&idx, &candle_core::Device::Cpu)?)?;
//! # let _ = pred; Ok(()) }
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod data;
mod error;
// Internals: the fused kernel and the custom ops behind the models (public for the examples,
// benches and tests of this crate, not part of the supported API).
#[doc(hidden)]
pub mod fused;
pub mod loso;
pub mod models;
#[doc(hidden)]
pub mod ops;
pub mod train;

pub use data::{Dataset, SampleInfo};
pub use error::{Error, Result};
pub use loso::{
    predict_with_fold_weights, predict_with_fold_weights_on, run_loso, FoldResult, LosoConfig, LosoResult,
    Prediction,
};
pub use models::{
    ConvBlock, Model, ModelConfig, OffApexNetConfig, OffApexNetVariant, ParamSpec, ShallowCnnConfig,
    StstnetConfig,
};
pub use train::{
    fit, fit_with, tune_allocator_for_training, EpochStats, Optimizer, OptimizerKind, SampleOrder, Selection,
    TrainConfig, TrainReport,
};
