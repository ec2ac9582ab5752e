//! The error type of this crate.

use std::path::PathBuf;

/// Errors of mex-classify. Variants carry the offending values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A shared-type error from mex-core.
    #[error(transparent)]
    Core(#[from] mex_core::CoreError),
    /// An error raised by candle (tensor shapes, devices, dtypes).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An image file could not be decoded.
    #[error("{path}: cannot decode image: {reason}")]
    Image {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// An input image or tensor has the wrong size.
    #[error("{what}: expected shape {expected:?}, found {found:?}")]
    InputShape {
        /// Which input.
        what: String,
        /// Expected shape.
        expected: Vec<usize>,
        /// Found shape.
        found: Vec<usize>,
    },
    /// A checkpoint lacks a tensor the model needs.
    #[error("{path}: checkpoint has no tensor `{name}`")]
    MissingTensor {
        /// The checkpoint file.
        path: PathBuf,
        /// The PyTorch-style tensor name.
        name: String,
    },
    /// A checkpoint tensor has the wrong shape.
    #[error("{path}: tensor `{name}` has shape {found:?}, the model needs {expected:?}")]
    TensorShape {
        /// The checkpoint file.
        path: PathBuf,
        /// The PyTorch-style tensor name.
        name: String,
        /// Shape the model needs.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A checkpoint file is not valid safetensors.
    #[error("{path}: not a valid safetensors checkpoint: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A configuration value is invalid.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParam {
        /// Parameter name.
        name: &'static str,
        /// The offending value, formatted.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A dataset is malformed (empty, labels out of range, inconsistent sizes).
    #[error("dataset: {0}")]
    Dataset(String),
    /// A JSON fold file could not be parsed or written.
    #[error("{path}: {reason}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Training produced a non-finite loss.
    #[error("non-finite loss {loss} at epoch {epoch}")]
    NonFiniteLoss {
        /// Epoch (0-based).
        epoch: usize,
        /// The loss value.
        loss: f32,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An `Io` error for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
