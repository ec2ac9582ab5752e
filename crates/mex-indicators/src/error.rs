use thiserror::Error;

/// Errors of mex-indicators. Every variant carries the offending values.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A landmark coordinate is NaN or infinite.
    #[error("non-finite landmark {index} ({x}, {y}) at frame {frame}")]
    NonFiniteLandmark {
        /// Frame index (0-based, counting every pushed frame).
        frame: usize,
        /// Landmark index.
        index: usize,
        /// Its x coordinate.
        x: f32,
        /// Its y coordinate.
        y: f32,
    },
    /// The landmarks do not follow the 68-point iBUG scheme, or their count does not match it.
    #[error("frame {frame}: landmarks must be 68-point iBUG ({scheme}, {n_points} points)")]
    WrongScheme {
        /// Frame index.
        frame: usize,
        /// The scheme given, as text.
        scheme: String,
        /// The number of points given.
        n_points: usize,
    },
    /// The eyes coincide (inter-ocular distance below 1e-6 pixels) or are too far apart to
    /// measure (not finite), or an eye has zero width: no scale to measure in.
    #[error("frame {frame}: degenerate landmarks (inter-ocular distance {interocular})")]
    DegenerateLandmarks {
        /// Frame index.
        frame: usize,
        /// The inter-ocular distance found.
        interocular: f64,
    },
    /// A timestamp is not finite or not after the previous one.
    #[error("frame {frame}: timestamp {time_s} s is not after the previous one ({previous_s} s)")]
    TimeNotIncreasing {
        /// Frame index.
        frame: usize,
        /// The timestamp given.
        time_s: f64,
        /// The previous frame's timestamp.
        previous_s: f64,
    },
    /// A regional motion magnitude is NaN, infinite or negative.
    #[error("frame {frame}: motion of region {region} is {value} (must be finite and >= 0)")]
    InvalidMotion {
        /// Frame index.
        frame: usize,
        /// Region name.
        region: &'static str,
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
    /// A movement interval lies outside the recording or is reversed.
    #[error("movement {onset}..={offset} is outside the recording's {n_frames} frames or reversed")]
    InvalidMovement {
        /// First frame.
        onset: usize,
        /// Last frame.
        offset: usize,
        /// Number of frames pushed.
        n_frames: usize,
    },
    /// The recording holds no frame with a face: there is nothing to summarise.
    #[error("no face in any of the {n_frames} frames")]
    NoFace {
        /// Number of frames pushed.
        n_frames: usize,
    },
    /// An error of a shared mex-core type.
    #[error(transparent)]
    Core(#[from] mex_core::CoreError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn param(name: &'static str, value: impl std::fmt::Display, reason: &'static str) -> Self {
        Error::InvalidParam { name, value: value.to_string(), reason }
    }
}
