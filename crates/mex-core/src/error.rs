use thiserror::Error;

/// Errors of the shared types. Variants carry the offending values.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// Two things that must have the same size do not.
    #[error("size mismatch: {left:?} vs {right:?}")]
    SizeMismatch {
        /// Size of the first operand, `(width, height)` or `(len, 0)`.
        left: (usize, usize),
        /// Size of the second operand.
        right: (usize, usize),
    },
    /// A parameter is outside its valid range.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParam {
        /// Parameter name.
        name: &'static str,
        /// The offending value, formatted.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// An empty input where data is required (empty image, empty point set).
    #[error("empty input: {what}")]
    Empty {
        /// What was empty.
        what: &'static str,
    },
    /// An image could not be decoded: a corrupt or truncated file, or one past the decoder limits.
    #[error("cannot decode image: {reason}")]
    Decode {
        /// What went wrong.
        reason: String,
    },
    /// A value that must be finite is NaN or infinite.
    #[error("non-finite value in {what}")]
    NonFinite {
        /// Where the value was found.
        what: &'static str,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, CoreError>;
