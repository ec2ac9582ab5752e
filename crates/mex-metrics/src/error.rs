use thiserror::Error;

/// Errors of mex-metrics. Every variant carries the offending values.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// An input that must hold at least one element is empty.
    #[error("empty input: {what}")]
    Empty {
        /// What was empty.
        what: &'static str,
    },
    /// Two inputs that must be parallel have different lengths.
    #[error("length mismatch in {what}: {left} vs {right}")]
    LengthMismatch {
        /// Which inputs.
        what: &'static str,
        /// Length of the first input.
        left: usize,
        /// Length of the second input.
        right: usize,
    },
    /// A class label is not below the number of classes.
    #[error("label {label} out of range for {n_classes} classes (at index {index})")]
    LabelOutOfRange {
        /// The label.
        label: usize,
        /// The number of classes.
        n_classes: usize,
        /// Position of the label in its input.
        index: usize,
    },
    /// A score or probability is NaN or infinite.
    #[error("non-finite score {value} at index {index} in {what}")]
    NonFiniteScore {
        /// Which input.
        what: &'static str,
        /// Position of the value.
        index: usize,
        /// The value.
        value: f64,
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
    /// The metric is mathematically undefined on this input (e.g. ROC-AUC with one class only).
    #[error("{metric} is undefined: {reason}")]
    Undefined {
        /// The metric.
        metric: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// An error of a shared mex-core type.
    #[error(transparent)]
    Core(#[from] mex_core::CoreError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Whether the error says the metric is undefined or the (re)sample empty, rather than that
    /// the input is malformed. Resampling procedures skip such resamples and count them.
    pub fn is_undefined(&self) -> bool {
        matches!(self, Error::Undefined { .. } | Error::Empty { .. })
    }
}

pub(crate) fn check_len(what: &'static str, left: usize, right: usize) -> Result<()> {
    if left != right {
        return Err(Error::LengthMismatch { what, left, right });
    }
    Ok(())
}

pub(crate) fn check_finite(what: &'static str, xs: &[f64]) -> Result<()> {
    match xs.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFiniteScore { what, index, value: xs[index] }),
        None => Ok(()),
    }
}
