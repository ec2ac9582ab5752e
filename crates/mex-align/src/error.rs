use std::path::PathBuf;
use thiserror::Error;

/// Errors of mex-align. Variants carry the offending values.
#[derive(Debug, Error)]
pub enum Error {
    /// No face was found where one is required (alignment of an image without a face).
    #[error("no face found{}", context.as_deref().map(|c| format!(" in {c}")).unwrap_or_default())]
    NoFace {
        /// Where no face was found (a file name, a frame index), when known.
        context: Option<String>,
    },
    /// A parameter is outside its valid range.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParam {
        /// Parameter name.
        name: &'static str,
        /// The offending value, formatted.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// An image that is empty or otherwise unusable.
    #[error("bad image: {reason} (size {width}x{height})")]
    BadImage {
        /// Width of the image.
        width: u32,
        /// Height of the image.
        height: u32,
        /// What is wrong with it.
        reason: String,
    },
    /// Two inputs that must have the same size do not.
    #[error("size mismatch: {left:?} vs {right:?}")]
    SizeMismatch {
        /// Size of the first operand.
        left: (usize, usize),
        /// Size of the second operand.
        right: (usize, usize),
    },
    /// An image could not be decoded.
    #[error("{}{source}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Decode {
        /// The file, when the image came from one.
        path: Option<PathBuf>,
        /// The decoder's error (corrupt, truncated, or past the decoder limits).
        #[source]
        source: mex_core::CoreError,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A dlib model file is corrupt, truncated or of an unsupported version.
    #[error("bad dlib model{}: {reason} (at byte {offset})", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    DlibModel {
        /// The model file, when known.
        path: Option<PathBuf>,
        /// Byte offset where parsing failed.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// Error from the candle tensor library (network inference).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// Error from the shared types.
    #[error(transparent)]
    Core(#[from] mex_core::CoreError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::InvalidParam`].
    pub(crate) fn param(
        name: &'static str,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidParam { name, value: value.to_string(), reason: reason.into() }
    }
}
