//! The crate's error type.

use std::path::PathBuf;
use thiserror::Error;

/// Errors of `mex-data`. Every variant about a file names the file and, where it applies, the
/// row (1-based, as a spreadsheet program shows it) and the column.
#[derive(Debug, Error)]
pub enum Error {
    /// Reading or writing a file or folder failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A spreadsheet could not be opened or a sheet is missing.
    #[error("cannot read spreadsheet {path}: {message}")]
    Spreadsheet {
        /// The spreadsheet.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A CSV file could not be parsed or written.
    #[error("CSV error in {path} (line {line}): {message}")]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line number (0 when unknown).
        line: u64,
        /// What went wrong.
        message: String,
    },
    /// A JSON file could not be parsed or written.
    #[error("JSON error in {path}: {message}")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// No row of the table holds the expected header.
    #[error("no header row with columns {expected:?} in {path}")]
    NoHeader {
        /// The table file.
        path: PathBuf,
        /// The column names looked for.
        expected: Vec<String>,
    },
    /// A required column is missing from the header row.
    #[error("missing column `{column}` in {path} (header row {header_row})")]
    MissingColumn {
        /// The table file.
        path: PathBuf,
        /// The missing column's name.
        column: String,
        /// 1-based row of the header (0 for tables without a header).
        header_row: usize,
    },
    /// A cell holds a value that cannot be used.
    #[error("bad value {value:?} in {path}, row {row}, column `{column}`: {reason}")]
    BadCell {
        /// The table file.
        path: PathBuf,
        /// 1-based row.
        row: usize,
        /// Column name (or letter/index for headerless tables).
        column: String,
        /// The cell's content.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A frame file or folder named by a metadata row does not exist.
    #[error("frame path {frame_path} (from {path}, row {row}) does not exist")]
    BadFramePath {
        /// The metadata file (or dataset root for folder-layout datasets).
        path: PathBuf,
        /// 1-based row of the metadata file (0 for folder-layout datasets).
        row: usize,
        /// The missing frame file or folder.
        frame_path: PathBuf,
    },
    /// A folder that must hold frames, clips or subjects is empty.
    #[error("empty folder {path}: {what}")]
    EmptyFolder {
        /// The folder.
        path: PathBuf,
        /// What was expected in it.
        what: String,
    },
    /// A file or folder name does not follow the dataset's naming scheme.
    #[error("unexpected name {name:?} in {path}: {reason}")]
    BadName {
        /// The folder the name was found in.
        path: PathBuf,
        /// The offending name.
        name: String,
        /// What was expected.
        reason: String,
    },
    /// An image could not be decoded or encoded.
    #[error("image error on {path}: {message}")]
    Image {
        /// The image file (empty for in-memory images).
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A video could not be opened or decoded (FFmpeg's reason, cut to one line).
    #[error("video {path}: {reason}")]
    Video {
        /// The video file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The FFmpeg programs needed to read videos are not installed.
    #[error(
        "reading videos needs FFmpeg, and `{program}` was not found: install FFmpeg (Debian/Ubuntu: \
         apt-get install ffmpeg; macOS: brew install ffmpeg; or set MEX_FFMPEG and MEX_FFPROBE), \
         or give a folder of frames"
    )]
    FfmpegMissing {
        /// The program looked for.
        program: String,
    },
    /// A configuration value or argument is out of range.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParam {
        /// Parameter name.
        name: &'static str,
        /// The offending value, formatted.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A sample or frame index does not exist.
    #[error("index {index} out of range ({what}, {len} available)")]
    OutOfRange {
        /// What was indexed.
        what: &'static str,
        /// The index asked for.
        index: usize,
        /// How many there are.
        len: usize,
    },
    /// An error of the shared types.
    #[error(transparent)]
    Core(#[from] mex_core::CoreError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// An [`Error::InvalidParam`].
    pub fn param(name: &'static str, value: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Error::InvalidParam { name, value: value.to_string(), reason: reason.into() }
    }
}
