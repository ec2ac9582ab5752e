use thiserror::Error;

/// Errors of `mex-flow`. Variants carry the offending values.
#[derive(Debug, Error)]
pub enum Error {
    /// An error of the shared types.
    #[error(transparent)]
    Core(#[from] mex_core::CoreError),
    /// Two frames (or a frame and a field) that must have equal sizes do not.
    #[error("size mismatch: {left:?} vs {right:?} (width, height)")]
    SizeMismatch {
        /// Size of the first operand.
        left: (usize, usize),
        /// Size of the second operand.
        right: (usize, usize),
    },
    /// An image smaller than the estimator can handle.
    #[error("image of {width}x{height} is too small: {what} needs at least {min}x{min}")]
    TooSmall {
        /// Width of the offending image.
        width: usize,
        /// Height of the offending image.
        height: usize,
        /// Minimum side length.
        min: usize,
        /// Who needs it.
        what: &'static str,
    },
    /// An empty input where data is required.
    #[error("empty input: {what}")]
    Empty {
        /// What was empty.
        what: &'static str,
    },
    /// A NaN or infinite value in an input.
    #[error("non-finite value in {what} at index {index}")]
    NonFinite {
        /// Where the value was found.
        what: &'static str,
        /// Flat index of the first offending value.
        index: usize,
    },
    /// A configuration parameter outside its valid range.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParam {
        /// Parameter name.
        name: &'static str,
        /// The offending value, formatted.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A Middlebury `.flo` stream that is corrupt or truncated.
    #[error("corrupt .flo data: {reason}")]
    FloFormat {
        /// What is wrong.
        reason: String,
    },
    /// An I/O error, with the path involved.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An image encoding / decoding error.
    #[error("image error on {path}: {source}")]
    Image {
        /// The path.
        path: String,
        /// The underlying error.
        source: image::ImageError,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn invalid(name: &'static str, value: impl std::fmt::Display, reason: &'static str) -> Error {
    Error::InvalidParam { name, value: value.to_string(), reason }
}
