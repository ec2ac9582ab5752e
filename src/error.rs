use std::path::PathBuf;
use thiserror::Error;

/// Errors of the composition layer. Stage-crate errors are wrapped with their context.
#[derive(Debug, Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An experiment or pipeline configuration is invalid; `field` names the offending key.
    #[error("{file}: invalid config at `{field}`: {reason}")]
    Config {
        /// The configuration file (or `<inline>`).
        file: String,
        /// Dotted path of the offending field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A JSON file could not be parsed or written.
    #[error("{path}: {reason}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Drawing a figure failed.
    #[error("plot: {0}")]
    Plot(String),
    /// A stage failed on a given item (sample, frame, fold).
    #[error("{stage} failed on {item}: {reason}")]
    Stage {
        /// The stage (`align`, `flow`, `classify`, `metrics`, `data`).
        stage: &'static str,
        /// The sample, frame or fold it failed on.
        item: String,
        /// The stage's error message.
        reason: String,
    },
    /// No face was found in any frame of a recording (`mex analyze`): there is nothing to
    /// analyse, and nothing is written.
    #[error("no face found in any of the {n_frames} frames")]
    NoFace {
        /// Frames read.
        n_frames: usize,
    },
    /// Invalid request (e.g. a fold index out of range).
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of the composition layer.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps a stage error with the item it failed on.
    pub fn stage(stage: &'static str, item: impl Into<String>, e: impl std::fmt::Display) -> Self {
        Error::Stage { stage, item: item.into(), reason: e.to_string() }
    }
}
