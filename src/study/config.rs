//! The study file (`STUDY.toml`): the table, the groups, column renames and the settings.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Renames of the named columns: the header in the table for each role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ColumnNames {
    /// Recording: a video file, a frames folder, or an `analysis.json` written by `mex analyze`.
    pub recording: String,
    /// Subject (participant) identifier. Required in the table.
    pub subject: String,
    /// Group label (e.g. `patient`, `control`). Required in the table.
    pub group: String,
    /// Session (visit) label, for test-retest reliability.
    pub session: String,
    /// Clinical score (numeric), for the rank correlation.
    pub score: String,
    /// Age in years (numeric), for the age-band subgroups.
    pub age: String,
    /// Sex, for subgroups.
    pub sex: String,
    /// Recording site, for subgroups.
    pub site: String,
}

impl Default for ColumnNames {
    fn default() -> Self {
        Self {
            recording: "recording".into(),
            subject: "subject".into(),
            group: "group".into(),
            session: "session".into(),
            score: "score".into(),
            age: "age".into(),
            sex: "sex".into(),
            site: "site".into(),
        }
    }
}

impl ColumnNames {
    /// `(role, header)` pairs.
    pub fn roles(&self) -> [(&'static str, &str); 8] {
        [
            ("recording", &self.recording),
            ("subject", &self.subject),
            ("group", &self.group),
            ("session", &self.session),
            ("score", &self.score),
            ("age", &self.age),
            ("sex", &self.sex),
            ("site", &self.site),
        ]
    }
}

/// Most bootstrap resamples a study file may ask for (`bootstrap_resamples`), as experiments.
pub const MAX_RESAMPLES: usize = crate::experiment::config::MAX_RESAMPLES;
/// Most cross-validation folds (`n_folds`); fewer are used when a group has fewer subjects.
pub const MAX_STUDY_FOLDS: usize = 10_000;
/// Most age-band cut points (`age_bands`).
pub const MAX_AGE_CUTS: usize = 100;
/// Largest frame rate of frames-folder recordings (`analyze.fps`), as `mex analyze --fps`.
pub const MAX_FPS: f64 = crate::analyze::MAX_FPS;

/// Settings of the analysis of video / frames-folder recordings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StudyAnalyzeConfig {
    /// Frames per second of frames folders (videos carry their own); in (0, [`MAX_FPS`]].
    pub fps: f64,
}

impl Default for StudyAnalyzeConfig {
    fn default() -> Self {
        Self { fps: 30.0 }
    }
}

/// A study: the table of recordings, which group is positive, and the statistics' settings.
///
/// ```
/// let cfg = mex::study::StudyConfig::from_toml_str(r#"
///     table = "recordings.csv"
///     positive = "patient"
///     [columns]
///     subject = "participant"
/// "#, "study.toml".as_ref()).unwrap();
/// assert_eq!(cfg.columns.subject, "participant");
/// assert_eq!(cfg.columns.group, "group");
/// assert_eq!(cfg.n_folds, 5);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StudyConfig {
    /// Study name used in the report title.
    pub name: String,
    /// The table (CSV), relative to the study file.
    pub table: PathBuf,
    /// The positive group (e.g. `patient`): Hedges' g, AUC and the classifier are positive when
    /// this group has the higher values.
    pub positive: String,
    /// The negative (reference) group. Default: the one other group in the table (an error when
    /// there are more than two groups).
    pub negative: Option<String>,
    /// Header of each named column.
    pub columns: ColumnNames,
    /// Only these indicators (default: every indicator found).
    pub indicators: Option<Vec<String>>,
    /// Confidence level of every interval (default 0.95).
    pub confidence: f64,
    /// Bootstrap resamples of the AUC intervals (default 2000; 100 to [`MAX_RESAMPLES`]).
    pub bootstrap_resamples: usize,
    /// Seed of every random process (bootstrap, fold assignment).
    pub seed: u64,
    /// Folds of the cross-validated classifier, grouped by subject (default 5; 2 to
    /// [`MAX_STUDY_FOLDS`]).
    pub n_folds: usize,
    /// Inverse L2 strength `C` of the logistic regression (default 1.0, scikit-learn's).
    pub c: f64,
    /// Age-band cut points in years (default `[40, 60]`: `<40`, `40-59`, `>=60`; at most
    /// [`MAX_AGE_CUTS`]).
    pub age_bands: Vec<f64>,
    /// Analysis of video and frames-folder recordings.
    pub analyze: StudyAnalyzeConfig,
}

impl Default for StudyConfig {
    fn default() -> Self {
        Self {
            name: "study".into(),
            table: PathBuf::new(),
            positive: String::new(),
            negative: None,
            columns: ColumnNames::default(),
            indicators: None,
            confidence: 0.95,
            bootstrap_resamples: 2000,
            seed: 0,
            n_folds: 5,
            c: 1.0,
            age_bands: vec![40.0, 60.0],
            analyze: StudyAnalyzeConfig::default(),
        }
    }
}

impl StudyConfig {
    /// Reads a study file; the table path is resolved against the file's folder.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = crate::io::read_config_text(path)?;
        let mut cfg = Self::from_toml_str(&text, path)?;
        if cfg.table.is_relative() {
            let dir = path.parent().unwrap_or(Path::new("."));
            cfg.table = dir.join(&cfg.table);
        }
        Ok(cfg)
    }

    /// Parses and validates TOML (unknown keys are errors); `file` is used in messages.
    pub fn from_toml_str(text: &str, file: &Path) -> Result<Self> {
        let name = file.display().to_string();
        let cfg: StudyConfig = toml::from_str(text).map_err(|e| Error::Config {
            file: name.clone(),
            field: e
                .span()
                .map(|s| crate::experiment::config::describe_span(text, s))
                .unwrap_or_else(|| "<document>".into()),
            reason: e.message().to_string(),
        })?;
        cfg.validate(&name)?;
        Ok(cfg)
    }

    /// The defaults for a table given on the command line with `--positive GROUP`.
    pub fn for_table(table: &Path, positive: &str) -> Result<Self> {
        let cfg = Self { table: table.to_path_buf(), positive: positive.into(), ..Self::default() };
        cfg.validate("command line")?;
        Ok(cfg)
    }

    /// Checks ranges and that the renamed columns are distinct.
    pub fn validate(&self, file: &str) -> Result<()> {
        let bad =
            |field: &str, reason: String| Error::Config { file: file.into(), field: field.into(), reason };
        if self.table.as_os_str().is_empty() {
            return Err(bad("table", "the table (CSV) is required".into()));
        }
        if self.positive.trim().is_empty() {
            return Err(bad("positive", "name the positive group (e.g. positive = \"patient\")".into()));
        }
        if self.negative.as_deref() == Some(self.positive.as_str()) {
            return Err(bad("negative", "must differ from `positive`".into()));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(bad("confidence", format!("{} must lie in (0, 1)", self.confidence)));
        }
        if self.bootstrap_resamples < 100 {
            return Err(bad(
                "bootstrap_resamples",
                format!("{}: use at least 100", self.bootstrap_resamples),
            ));
        }
        if self.bootstrap_resamples > MAX_RESAMPLES {
            return Err(bad(
                "bootstrap_resamples",
                format!("{}: at most {MAX_RESAMPLES}", self.bootstrap_resamples),
            ));
        }
        if self.n_folds < 2 {
            return Err(bad("n_folds", format!("{}: need at least 2 folds", self.n_folds)));
        }
        if self.n_folds > MAX_STUDY_FOLDS {
            return Err(bad("n_folds", format!("{}: at most {MAX_STUDY_FOLDS}", self.n_folds)));
        }
        if !(self.c > 0.0 && self.c.is_finite()) {
            return Err(bad("c", format!("{} must be a positive number", self.c)));
        }
        if self.age_bands.iter().any(|a| !a.is_finite()) || self.age_bands.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad("age_bands", "cut points must be finite and increasing".into()));
        }
        if self.age_bands.len() > MAX_AGE_CUTS {
            return Err(bad(
                "age_bands",
                format!("{} cut points: at most {MAX_AGE_CUTS}", self.age_bands.len()),
            ));
        }
        if !(self.analyze.fps.is_finite() && self.analyze.fps > 0.0 && self.analyze.fps <= MAX_FPS) {
            return Err(bad("analyze.fps", format!("{} must be in (0, {MAX_FPS}]", self.analyze.fps)));
        }
        let roles = self.columns.roles();
        for (i, (role, header)) in roles.iter().enumerate() {
            if header.trim().is_empty() {
                return Err(bad(&format!("columns.{role}"), "must not be empty".into()));
            }
            if let Some((other, _)) = roles[..i].iter().find(|(_, h)| h == header) {
                return Err(bad(
                    &format!("columns.{role}"),
                    format!("`{header}` is also the {other} column"),
                ));
            }
        }
        Ok(())
    }
}
